"""What each request handler needs: the tenant it acts for and the process's services."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.auth import Authenticator
from api.settings import ApiSettings
from storage.database import Database
from storage.tenants import Tenant


@dataclass(slots=True)
class Services:
    """Built once by ``create_app``'s lifespan and kept on ``app.state.services``."""

    settings: ApiSettings
    db: Database
    auth: Authenticator


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    tenant: Tenant
    base: str  # the tenant's SCIM base URL, used for meta.location and $ref


async def context(request: Request, tenant_name: str) -> Context:
    services: Services = request.app.state.services
    tenant = await services.auth.tenant(request, tenant_name)
    return Context(services, tenant, services.settings.tenant_url(tenant.name))
