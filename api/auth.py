"""Bearer-token authentication: a token opens its own tenant only.

Missing, malformed or wrong tokens, and tokens of another tenant, all get the same 401, so a
caller learns nothing about which tenants exist. A disabled tenant's own token gets 403.
Successful lookups are cached briefly (``PRINTSYNC_AUTH_CACHE_SECONDS``) by token hash; failed
ones are not, so a flood of wrong tokens cannot grow the cache.
"""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request

from api.context import request_context
from api.errors import Forbidden, Unauthorized
from storage import tenants
from storage.database import Database
from storage.tenants import Tenant

MAX_CACHED = 10_000


class Authenticator:
    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[Tenant, float]] = {}

    async def tenant(self, request: Request, tenant_name: str) -> Tenant:
        header = request.headers.get("authorization")
        if not header or len(header) < 8 or header[:7].lower() != "bearer ":
            raise Unauthorized("a valid bearer token is required")
        token = header[7:].strip()
        digest = tenants.hash_token(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            tenant = cached[0]
        else:
            found = await tenants.authenticate(self._db, token)
            if found is None:
                raise Unauthorized("a valid bearer token is required")
            tenant = found
            if self._ttl > 0:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[digest] = (tenant, now + self._ttl)
        if not hmac.compare_digest(tenant.name.encode(), tenant_name.encode()):
            raise Unauthorized("a valid bearer token is required")
        context = request_context(request)
        context.tenant_id = tenant.id  # the provisioning log records this request
        context.tenant_name = tenant.name  # a configured tenant: a bounded metric label
        if tenant.disabled:
            raise Forbidden("this tenant is disabled")
        return tenant

    def forget(self) -> None:
        self._cache.clear()


def admin_token_matches(presented: str, admin_token: str | None) -> bool:
    """Whether ``presented`` is the admin token (compared in constant time). With no admin token
    configured, or an empty one, nothing matches: the admin API and the console are closed."""
    if not admin_token:
        return False
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), admin_token.encode("utf-8", "surrogatepass")
    )


def check_admin(request: Request, admin_token: str | None) -> None:
    """Admin endpoints: their own token, never a tenant's (no token, or an empty one: closed)."""
    header = request.headers.get("authorization") or ""
    presented = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not admin_token_matches(presented, admin_token):
        raise Unauthorized("a valid admin token is required")
