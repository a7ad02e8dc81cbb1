"""Per-tenant rate limiting: one token bucket per tenant, kept in this process.

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
untouched, and a refused request costs a dictionary look-up and a little arithmetic: it reads no
body and runs no query of its own (with its token cached, it opens no connection at all).
Unauthenticated requests never reach a bucket, so a flood with a wrong token cannot use up a
tenant's budget.

Buckets live in memory: each API process limits on its own, so N processes admit up to N times
the configured rate. There is one bucket per tenant that has made a request, and tenants are few.
A check never awaits, so on one event loop it is atomic without a lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import Counter

from api.errors import TooManyRequests
from api.settings import ApiSettings
from metrics import catalog

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
        if wait <= 0.0:
            return
        retry_after = max(1, math.ceil(wait))
        self._counter.labels(tenant).inc()
        raise TooManyRequests(
            f"too many requests for this tenant; retry after {retry_after} seconds",
            headers={"Retry-After": str(retry_after)},
        )
