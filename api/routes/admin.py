"""Operator endpoints: tenant sync health and the provisioning log, as JSON.

Every route needs the admin token (``PRINTSYNC_ADMIN_TOKEN``) as its bearer token; a tenant's
Secret Token is refused like any wrong token (401), and with no admin token configured the routes
refuse everyone.

- ``GET /admin/tenants``: the health of every tenant.
- ``GET /admin/tenants/{name}``: one tenant's health with its numbers, settings and latest
  notification mails.
- ``GET /admin/log?tenant=&target=&result=&since=&until=&limit=``: provisioning-log entries,
  newest first. ``target`` is a user or group id, or a userName/displayName (any case);
  ``since``/``until`` are ISO 8601 times or durations back from now (``15m``, ``2h``, ``7d``).
  Each entry carries ``changes``: what the write changed or the effect did (docs/operations.md).

The admin console (``api.console``) signs in with the same token, checked by the same function
(``api.auth.admin_token_matches``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from api.auth import check_admin
from api.dependencies import Services
from api.errors import error_response
from storage import health, notifications, provisioning_log, tenants
from storage.errors import TenantNotFound
from storage.provisioning_log import LogQuery

router = APIRouter()

MEDIA_TYPE = "application/json"


def _authorize(request: Request) -> Services:
    services: Services = request.app.state.services
    token = services.settings.admin_token
    check_admin(request, token.get_secret_value() if token is not None else None)
    return services


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=MEDIA_TYPE)


@router.get("/admin/tenants")
async def list_tenant_health(request: Request) -> Response:
    services = _authorize(request)
    healths = await health.read_all(services.db, services.settings.health)
    return _json({"tenants": [item.as_dict() for item in healths]})


@router.get("/admin/tenants/{name}")
async def tenant_health(request: Request, name: str) -> Response:
    services = _authorize(request)
    try:
        tenant = await tenants.get(services.db, name)
    except TenantNotFound:
        return error_response(404, f"no tenant named {name}")
    state = await health.read(services.db, tenant, services.settings.health)
    mails = await notifications.recent(services.db, tenant.id)
    return _json(
        {
            **state.as_dict(),
            "settings": tenant.summary(),
            "notifications": [mail.summary() for mail in mails],
        }
    )


@router.get("/admin/log")
async def provisioning_log_entries(request: Request) -> Response:
    services = _authorize(request)
    params = request.query_params
    known = {tenant.id: tenant.name for tenant in await tenants.list_all(services.db)}
    tenant_id: int | None = None
    tenant_name = params.get("tenant")
    if tenant_name:
        matches = [key for key, value in known.items() if value == tenant_name]
        if not matches:
            return error_response(404, f"no tenant named {tenant_name}")
        tenant_id = matches[0]
    try:
        raw_limit = params.get("limit") or str(provisioning_log.DEFAULT_LIMIT)
        if not raw_limit.isdigit():
            raise ValueError("limit must be a positive integer")
        limit = int(raw_limit)
        since, until = params.get("since"), params.get("until")
        query = LogQuery(
            tenant_id=tenant_id,
            target=params.get("target") or None,
            result=params.get("result") or None,
            since=provisioning_log.parse_time(since) if since else None,
            until=provisioning_log.parse_time(until) if until else None,
            limit=limit,
        )
    except ValueError as error:
        return error_response(400, str(error), "invalidValue")
    entries = await provisioning_log.search(services.db, query)
    return _json(
        {
            "count": len(entries),
            "entries": [
                {**entry.as_dict(), "tenant": known.get(entry.tenant_id)} for entry in entries
            ],
        }
    )
