"""Per-tenant rate limiting: one token bucket per tenant.

Each tenant's bucket holds up to ``PRINTSYNC_RATE_LIMIT_BURST`` tokens and refills continuously
at ``PRINTSYNC_RATE_LIMIT_PER_SECOND``; every SCIM request of the tenant takes one token once its
bearer token is verified. A request that finds the bucket empty gets a 429 SCIM error whose
``Retry-After`` is the whole number of seconds until the next token is due, and is counted in
``printsync_scim_rate_limited_total{tenant}``. A value of 0 in either setting turns the limit off.

A Bulk request of N operations counts as N requests: it is admitted like any other (one token),
then its other N - 1 operations are charged to the bucket, which may go into debt; the tenant's
next requests wait until it has refilled. So a tenant's operations keep to the rate whether
they come one by one or in bulk, and a Bulk request is never refused for its size alone (the
size is bounded by ``bulk.maxOperations``).

The defaults (100 per second, bursts of 200) sit well above Entra ID's floor of 25 requests per
second per tenant. Tenants have separate buckets, so one tenant's flood leaves the others' budgets
untouched. Unauthenticated requests never reach a bucket, so a flood with a wrong token cannot use
up a tenant's budget.

Where the buckets live:

- :class:`RateLimiter`, in this process's memory: a refused request costs a dictionary look-up
  and a little arithmetic (no I/O; a check never awaits, so on one event loop it is atomic
  without a lock). Each API process limits on its own, so N processes admit up to N times the
  configured rate.
- :class:`SharedRateLimiter`, in Redis (``PRINTSYNC_RATE_LIMIT_REDIS_URL``, or the broker's
  Redis), so that all API processes share each tenant's bucket: one round trip per request, a
  Lua script that refills and takes atomically on Redis's clock. If Redis cannot be reached
  within ``PRINTSYNC_RATE_LIMIT_REDIS_TIMEOUT_SECONDS`` the limit fails open: the request is
  admitted, counted in ``printsync_scim_rate_limit_unchecked_total`` and, once per outage,
  logged; Redis is tried again after :data:`RETRY_SECONDS`, and requests in between are admitted
  unchecked without waiting for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter

from api.errors import TooManyRequests
from api.settings import ApiSettings
from metrics import catalog

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

Clock = Callable[[], float]
_EPSILON = 1e-9  # refills summed from float clock readings may fall short of 1.0 by a hair


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets keyed by tenant name; ``per_second`` or ``burst`` of 0 disables them."""

    __slots__ = ("_buckets", "_burst", "_clock", "_counter", "_rate")

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        counter: Counter = catalog.SCIM_RATE_LIMITED,
    ) -> None:
        if not math.isfinite(per_second) or per_second < 0 or burst < 0:
            raise ValueError("the rate and the burst must be finite and not negative")
        self._rate = float(per_second)
        self._burst = float(burst)
        self._clock = clock
        self._counter = counter
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> RateLimiter:
        return cls(settings.rate_limit_per_second, settings.rate_limit_burst)

    @property
    def enabled(self) -> bool:
        return self._rate > 0 and self._burst > 0

    def _refilled(self, tenant: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(self._burst, now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.stamp = now
        return bucket

    def take(self, tenant: str) -> float:
        """Take one token from the tenant's bucket: 0.0 when admitted, else the seconds until
        a token is due (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(tenant)
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def charge(self, tenant: str, tokens: int) -> None:
        """Take ``tokens`` more from the bucket of a tenant whose request was admitted (the
        other operations of a Bulk request), into debt if need be."""
        if not self.enabled or tokens <= 0:
            return
        self._refilled(tenant).tokens -= tokens

    def admit(self, tenant: str) -> None:
        """Let one request of ``tenant`` through, or raise TooManyRequests (429) with
        Retry-After and count the refusal."""
        wait = self.take(tenant)
        if wait > 0.0:
            refuse(tenant, wait, self._counter)


def refuse(tenant: str, wait: float, counter: Counter) -> None:
    """Count the refusal of a request of ``tenant`` and raise the 429 that tells the client to
    come back in ``wait`` seconds (rounded up, at least 1)."""
    retry_after = max(1, math.ceil(wait))
    counter.labels(tenant).inc()
    raise TooManyRequests(
        f"too many requests for this tenant; retry after {retry_after} seconds",
        headers={"Retry-After": str(retry_after)},
    )


#: How long the shared limit stays unchecked after Redis failed, before it is tried again.
RETRY_SECONDS: Final = 2.0
KEY_PREFIX: Final = "printsync:ratelimit:"

#: The bucket in KEYS[1] (a hash of tokens and the stamp of the last refill) refilled to now, at
#: ARGV[1] tokens a second up to ARGV[2] (the burst). Redis's own clock serves every process.
_REFILL: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
end
"""

#: The bucket written back; it expires once it would be full again anyway.
_STORE: Final = """
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
"""

#: Refill and take one token atomically. Returns the seconds until a token is due, as text
#: ("0" when one was taken).
_TAKE: Final = (
    _REFILL
    + """
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = (1 - tokens) / rate
end
"""
    + _STORE
    + "return tostring(wait)\n"
)

#: Refill, then take ARGV[3] more tokens, into debt if need be (the other operations of an
#: admitted Bulk request). Returns the tokens left, as text.
_CHARGE: Final = (
    _REFILL + "tokens = tokens - tonumber(ARGV[3])\n" + _STORE + "return tostring(tokens)\n"
)

_log = logging.getLogger("printsync.api")


class SharedRateLimiter:
    """Token buckets kept in Redis and shared by every API process (see the module docstring).
    Built in the app's lifespan (the client belongs to its event loop); :meth:`close` at the
    end."""

    def __init__(
        self,
        url: str,
        per_second: float,
        burst: int,
        *,
        timeout: float,
        clock: Clock = time.monotonic,
        counter: Counter = catalog.SCIM_RATE_LIMITED,
        unchecked: Counter = catalog.SCIM_RATE_LIMIT_UNCHECKED,
    ) -> None:
        # The Redis client is loaded here, not with the module: an API process without a shared
        # limit never holds it (several MiB of resident memory).
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._unreachable = (RedisError, OSError, TimeoutError)
        self._args = (repr(float(per_second)), str(burst))
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._take = self._client.register_script(_TAKE)
        self._charge = self._client.register_script(_CHARGE)
        self._clock = clock
        self._counter = counter
        self._unchecked = unchecked
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> SharedRateLimiter | None:
        """The shared limiter of ``settings``, or None without a Redis URL or a limit."""
        url = settings.rate_limit_redis_url
        limiter = RateLimiter.from_settings(settings)
        if url is None or not limiter.enabled:
            return None
        return cls(
            url.get_secret_value(),
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            timeout=settings.rate_limit_redis_timeout_seconds,
        )

    async def take(self, tenant: str) -> float:
        """Take one token from the tenant's shared bucket: 0.0 when admitted (or when Redis
        cannot say), else the seconds until a token is due."""
        answer = await self._run(self._take, tenant)
        return 0.0 if answer is None else float(answer)

    async def charge(self, tenant: str, tokens: int) -> None:
        """Take ``tokens`` more from the shared bucket of a tenant whose request was admitted,
        into debt if need be (unchecked while Redis cannot be reached)."""
        if tokens > 0:
            await self._run(self._charge, tenant, str(tokens))

    async def _run(self, script: AsyncScript, tenant: str, *extra: str) -> Any:
        """Run one of the bucket scripts; None (and the request counted as unchecked) while its
        Redis cannot be reached."""
        if self._clock() < self._down_until:
            self._unchecked.inc()
            return None
        try:
            answer = await script(keys=[KEY_PREFIX + tenant], args=[*self._args, *extra])
        except self._unreachable as error:
            if self._down_until == 0.0:
                _log.warning(
                    "rate limit unchecked: its Redis cannot be reached (%s); requests are "
                    "admitted until it answers again",
                    type(error).__name__,
                )
            self._down_until = self._clock() + RETRY_SECONDS
            self._unchecked.inc()
            return None
        if self._down_until:
            _log.warning("rate limit checked again: its Redis answers")
            self._down_until = 0.0
        return answer

    async def admit(self, tenant: str) -> None:
        """Let one request of ``tenant`` through, or raise TooManyRequests (429)."""
        wait = await self.take(tenant)
        if wait > 0.0:
            refuse(tenant, wait, self._counter)

    async def close(self) -> None:
        await self._client.aclose()
