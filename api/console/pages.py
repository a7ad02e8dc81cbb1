"""The console's sign-in and its tenant pages: the list of tenants with their health, a tenant's
page (Tenant URL, health, notification addresses, connector, Secret Token rotation, enable and
disable) and creating a tenant.

Tenants are created, rotated, enabled, disabled and given notification addresses by the same
storage functions as the ``printsync tenant`` commands (``storage.tenants``). A Secret Token
appears in one response only: the one that answers the create or the rotation (never cached).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.auth import admin_token_matches
from api.console.access import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Throttle,
    Visit,
    close_session,
    enabled,
    not_found,
    open_session,
    read_form,
    set_sign_in_cookie,
    sign_in_csrf,
    sign_in_form_valid,
    signed_in,
)
from api.console.views import render
from api.dependencies import Services
from storage import (
    console_sessions,
    cycles,
    downstream,
    guard,
    health,
    notifications,
    outbox,
    tenants,
)
from storage.errors import TenantNotFound
from storage.health import Health
from storage.scim.errors import ScimError
from storage.tenants import Tenant

#: What the console offers for a rotated token's overlap, in seconds, and how it says it.
OVERLAPS: Final = {
    0: "stops working now",
    3600: "keeps working for 1 hour",
    86400: "keeps working for 24 hours",
}
#: Messages after an action, chosen by a key in the address (never text from the address).
DONE: Final = {
    "enabled": "The tenant is enabled: its Secret Token is accepted again.",
    "disabled": "The tenant is disabled: Entra's requests are refused (403) until it is enabled.",
    "notify": "The notification addresses are saved.",
    "test": "The connection test is asked for: a worker runs it in a moment; reload to see it.",
}
_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+$")
_MAX_ADDRESSES = 50

throttle = Throttle()


@dataclass(frozen=True, slots=True)
class TenantRow:
    """A tenant as the list shows it."""

    tenant: Tenant
    health: Health
    pending: int
    dead: int
    held: int


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


# Sign-in and sign-out -----------------------------------------------------------------------------


async def sign_in(request: Request) -> Response:
    services: Services = request.app.state.services
    admin_token = enabled(services)
    if admin_token is None:
        return not_found()
    csrf, fresh = sign_in_csrf(request)
    status, message = 200, ""
    if request.method == "POST":
        form = await read_form(request)
        client = _client(request)
        if not sign_in_form_valid(request, form):
            status, message = 403, "The sign-in form had expired. Please try again."
        elif throttle.blocked(client):
            status, message = 429, "Too many wrong tokens. Wait a few minutes, then try again."
        elif admin_token_matches(form.get("token", "").strip(), admin_token):
            signed = RedirectResponse("/console/", status_code=303, headers=SECURITY_HEADERS)
            await open_session(services, signed, admin_token)
            return signed
        else:
            throttle.failed(client)
            status, message = 401, "That is not the admin token."
    elif request.cookies.get(SESSION_COOKIE):
        session = await console_sessions.find(
            services.db, request.cookies[SESSION_COOKIE], admin_token
        )
        if session is not None:
            return RedirectResponse("/console/", status_code=303, headers=SECURITY_HEADERS)
    signed_out = request.query_params.get("signed-out") == "1"
    response = render(
        request,
        "sign_in.html",
        {
            "csrf": csrf,
            "message": message,
            "signed_out": signed_out and not message,
            "signed_in": False,
        },
        status=status,
    )
    if fresh:
        set_sign_in_cookie(response, csrf, services.settings.secure_cookies)
    return response


@signed_in
async def sign_out(request: Request, visit: Visit) -> Response:
    response = RedirectResponse("/console/sign-in?signed-out=1", status_code=303)
    await close_session(visit.services, response, visit.session.secret)
    return response


async def home(request: Request) -> Response:
    """``/`` and ``/console``: to the console when it is on."""
    services: Services = request.app.state.services
    if enabled(services) is None:
        return not_found()
    return RedirectResponse("/console/", status_code=303, headers=SECURITY_HEADERS)


# Tenants ------------------------------------------------------------------------------------------


async def _tenant_rows(services: Services) -> list[TenantRow]:
    db = services.db
    counts = await outbox.counts_by_tenant(db)
    rows = []
    for tenant in await tenants.list_all(db):
        state = await health.read(db, tenant, services.settings.health)
        mine = counts.get(tenant.id, {})
        rows.append(
            TenantRow(
                tenant,
                state,
                pending=mine.get(outbox.PENDING, 0),
                dead=mine.get(outbox.DEAD, 0),
                held=mine.get(outbox.HELD, 0),
            )
        )
    return rows


async def _tenants_page(
    request: Request,
    visit: Visit,
    *,
    status: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "tenants.html",
        {
            "csrf": visit.csrf,
            "rows": await _tenant_rows(visit.services),
            "can_create": visit.services.default_connector is not None,
            "connector": visit.services.default_connector,
            "error": error,
            "values": values or {},
        },
        status=status,
    )


@signed_in
async def tenant_list(request: Request, visit: Visit) -> Response:
    return await _tenants_page(request, visit)


def parse_addresses(text: str) -> tuple[str, ...]:
    """Notification addresses typed one per line (or separated by commas or semicolons);
    ValueError naming the first that is not an e-mail address."""
    found: list[str] = []
    for part in re.split(r"[\s,;]+", text):
        address = part.strip()
        if not address:
            continue
        if not _ADDRESS.match(address) or len(address) > 254:
            raise ValueError(f"{address[:80]} is not an e-mail address")
        if address not in found:
            found.append(address)
    if len(found) > _MAX_ADDRESSES:
        raise ValueError(f"at most {_MAX_ADDRESSES} notification addresses")
    return tuple(found)


@signed_in
async def tenant_create(request: Request, visit: Visit) -> Response:
    services = visit.services
    connector = services.default_connector
    name = visit.form.get("name", "").strip()
    values = {"name": name, "notify": visit.form.get("notify", "")}
    if connector is None:
        return await _tenants_page(
            request, visit, status=400, error="Tenants are created with the CLI.", values=values
        )
    try:
        notify = parse_addresses(values["notify"])
        created, token = await tenants.create(services.db, name, connector=connector, notify=notify)
    except ValueError as error:
        return await _tenants_page(request, visit, status=400, error=str(error), values=values)
    except ScimError as error:
        return await _tenants_page(
            request, visit, status=error.status, error=error.detail, values=values
        )
    return await _tenant_page(request, visit, created, token=token, status=201)


# One tenant ---------------------------------------------------------------------------------------


async def _tenant_page(
    request: Request,
    visit: Visit,
    tenant: Tenant,
    *,
    token: str | None = None,
    status: int = 200,
    error: str = "",
    notify_text: str | None = None,
) -> Response:
    services = visit.services
    state = await health.read(services.db, tenant, services.settings.health)
    mails = await notifications.recent(services.db, tenant.id, 5)
    counts = (await outbox.counts_by_tenant(services.db)).get(tenant.id, {})
    recent = await cycles.recent(services.db, tenant.id)
    done = DONE.get(request.query_params.get("done", ""), "")
    context: dict[str, Any] = {
        "csrf": visit.csrf,
        "tenant": tenant,
        "tenant_url": services.settings.tenant_url(tenant.name),
        "health": state,
        "pending": counts.get(outbox.PENDING, 0),
        "dead": counts.get(outbox.DEAD, 0),
        "held": counts.get(outbox.HELD, 0),
        "cycle": cycles.view(recent, services.settings.cycles.gap_seconds),
        "guard": await guard.status(services.db, tenant.id, services.settings.guard),
        "mails": mails,
        "token": token,
        "overlaps": OVERLAPS,
        "done": done,
        "error": error,
        "notify_text": "\n".join(tenant.notify) if notify_text is None else notify_text,
        "papercut_url": tenant.connector_config.get("url")
        if tenant.connector == "papercut"
        else None,
        "check": await downstream.check_of(services.db, tenant.id),
    }
    return render(request, "tenant.html", context, status=status)


async def tenant_of(visit: Visit, request: Request) -> Tenant | None:
    try:
        return await tenants.get(visit.services.db, request.path_params["name"])
    except TenantNotFound:
        return None


def missing(request: Request, visit: Visit) -> Response:
    return render(
        request,
        "message.html",
        {
            "csrf": visit.csrf,
            "title": "No such tenant",
            "message": "There is no tenant of that name.",
        },
        status=404,
    )


TenantPage = Callable[[Request, Visit, Tenant], Awaitable[Response]]


def of_tenant(page: TenantPage) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page of the tenant named in the path (``{name}``); 404 without one."""

    @signed_in
    async def endpoint(request: Request, visit: Visit) -> Response:
        tenant = await tenant_of(visit, request)
        if tenant is None:
            return missing(request, visit)
        return await page(request, visit, tenant)

    return endpoint


def _back(tenant: Tenant, done: str) -> Response:
    return RedirectResponse(f"/console/tenants/{tenant.name}?done={done}", status_code=303)


#: The tenant's page as it stands.
tenant_page = of_tenant(_tenant_page)


@of_tenant
async def tenant_rotate(request: Request, visit: Visit, tenant: Tenant) -> Response:
    overlap = visit.form.get("overlap", "0")
    if not overlap.isdigit() or int(overlap) not in OVERLAPS:
        return await _tenant_page(
            request, visit, tenant, status=400, error="Choose how long the old token keeps working."
        )
    token = await tenants.rotate_token(visit.services.db, tenant.name, overlap_seconds=int(overlap))
    visit.services.auth.forget()
    return await _tenant_page(request, visit, tenant, token=token)


async def _set_disabled(visit: Visit, tenant: Tenant, disabled: bool) -> Response:
    await tenants.set_disabled(visit.services.db, tenant.name, disabled)
    visit.services.auth.forget()
    return _back(tenant, "disabled" if disabled else "enabled")


@of_tenant
async def tenant_disable(request: Request, visit: Visit, tenant: Tenant) -> Response:
    return await _set_disabled(visit, tenant, True)


@of_tenant
async def tenant_enable(request: Request, visit: Visit, tenant: Tenant) -> Response:
    return await _set_disabled(visit, tenant, False)


@of_tenant
async def tenant_notify(request: Request, visit: Visit, tenant: Tenant) -> Response:
    text = visit.form.get("notify", "")
    try:
        addresses = parse_addresses(text)
    except ValueError as error:
        return await _tenant_page(
            request, visit, tenant, status=400, error=str(error), notify_text=text
        )
    await tenants.set_notify(visit.services.db, tenant.name, addresses)
    return _back(tenant, "notify")


@of_tenant
async def tenant_test_connection(request: Request, visit: Visit, tenant: Tenant) -> Response:
    """Ask a worker to test the connection to the tenant's print system (the API never calls
    it: the request is an effect, and the page shows what the worker found)."""
    await downstream.request_check(visit.services.db, tenant.id)
    return _back(tenant, "test")


@signed_in
async def page_not_found(request: Request, visit: Visit) -> Response:
    return render(
        request,
        "message.html",
        {"csrf": visit.csrf, "title": "Not found", "message": "The console has no such page."},
        status=404,
    )


__all__ = [
    "OVERLAPS",
    "home",
    "missing",
    "of_tenant",
    "page_not_found",
    "parse_addresses",
    "sign_in",
    "sign_out",
    "tenant_create",
    "tenant_disable",
    "tenant_enable",
    "tenant_list",
    "tenant_notify",
    "tenant_of",
    "tenant_page",
    "tenant_rotate",
    "tenant_test_connection",
]
