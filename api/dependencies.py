"""What each request handler needs: the tenant it acts for and the process's services."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from api.auth import Authenticator
from api.ratelimit import RateLimiter, SharedRateLimiter
from api.settings import ApiSettings
from storage.database import Database
from storage.tenants import Tenant


@dataclass(slots=True)
class Services:
    """Built once by ``create_app``'s lifespan and kept on ``app.state.services``.

    ``limiter`` is built from ``settings`` with the services, so each app (and each test's app)
    starts with full buckets; ``shared_limiter`` too, when the buckets are kept in Redis, and
    then it is the one that counts (:meth:`close` closes its client).
    """

    settings: ApiSettings
    db: Database
    auth: Authenticator
    #: The connector of the tenants the admin console creates (None: it creates none).
    default_connector: str | None = None
    limiter: RateLimiter = field(init=False)
    shared_limiter: SharedRateLimiter | None = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter.from_settings(self.settings)
        self.shared_limiter = SharedRateLimiter.from_settings(self.settings)

    async def admit(self, tenant: str) -> None:
        """Take one token from the tenant's rate limit (shared when it is kept in Redis), or
        raise TooManyRequests (429)."""
        if self.shared_limiter is None:
            self.limiter.admit(tenant)
        else:
            await self.shared_limiter.admit(tenant)

    async def charge(self, tenant: str, tokens: int) -> None:
        """Take ``tokens`` more from the tenant's rate limit, into debt if need be (the other
        operations of an admitted Bulk request)."""
        if self.shared_limiter is None:
            self.limiter.charge(tenant, tokens)
        else:
            await self.shared_limiter.charge(tenant, tokens)

    async def close(self) -> None:
        if self.shared_limiter is not None:
            await self.shared_limiter.close()


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    tenant: Tenant
    base: str  # the tenant's SCIM base URL, used for meta.location and $ref


async def context(request: Request, tenant_name: str) -> Context:
    """Authenticate the request for ``tenant_name``, then take one token from the tenant's rate
    limit (401/403, then 429, before any body is read or any resource is touched)."""
    services: Services = request.app.state.services
    tenant = await services.auth.tenant(request, tenant_name)
    await services.admit(tenant.name)
    return Context(services, tenant, services.settings.tenant_url(tenant.name))
