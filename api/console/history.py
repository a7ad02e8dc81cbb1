"""The console's provisioning log and effects pages.

- ``/console/tenants/{name}/log``: the tenant's provisioning log, newest first, in plain words
  (``storage.provisioning_log.describe``), paged; ``?q=`` searches a user or group by userName,
  e-mail or id, and then tells that user's story, with the group changes that touched the user.
- ``/console/tenants/{name}/effects``: effects held by the deprovisioning guard
  (``storage.guard``), each with an approve button and one that approves them all; dead effects
  with their user and reason, each with a retry button, and a button that retries them all.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.console.access import Visit
from api.console.pages import of_tenant
from api.console.views import render
from storage import guard, outbox, provisioning_log
from storage.database import Database
from storage.outbox import Effect
from storage.provisioning_log import Entry, LogQuery
from storage.tenants import Tenant

#: Entries on one page of the log.
PAGE_SIZE: Final = 50
#: Dead effects the effects page lists.
EFFECTS_SHOWN: Final = 200
_RESULTS: Final = {
    provisioning_log.SUCCESS: "OK",
    provisioning_log.CLIENT_ERROR: "Refused",
    provisioning_log.SERVER_ERROR: "Failed",
    provisioning_log.FAILED: "Failed",
    provisioning_log.DEAD: "Gave up",
    provisioning_log.RETRIED: "Will retry",
}


def _mark(text: str) -> tuple[str, int] | None:
    """The ``before`` of a page link (``{time}~{id}``); None when it is not one."""
    moment, _, key = text.partition("~")
    if len(moment) != 27 or not key.isdigit():
        return None
    return moment, int(key)


def story_row(entry: Entry) -> dict[str, Any]:
    """One entry as the log's table shows it."""
    event = provisioning_log.describe(entry)
    result = _RESULTS.get(entry.result, entry.result)
    return {
        "time": entry.time,
        "who": entry.target_name or entry.target_id or "",
        "who_id": entry.target_id or "",
        "what": event.what,
        "detail": event.detail,
        "tone": event.tone,
        "result": f"{result} ({entry.status})" if entry.status is not None else result,
        "source": entry.source,
    }


@of_tenant
async def log_page(request: Request, visit: Visit, tenant: Tenant) -> Response:
    search = request.query_params.get("q", "").strip()[:256]
    before = _mark(request.query_params.get("before", ""))
    db = visit.services.db
    query = LogQuery(tenant_id=tenant.id, target=search or None, limit=PAGE_SIZE + 1, before=before)
    found = await provisioning_log.search(db, query)
    more = len(found) > PAGE_SIZE
    page = await provisioning_log.named(db, found[:PAGE_SIZE])
    older = None
    if more:
        moment, key = provisioning_log.page_mark(page[-1])
        older = f"{moment}~{key}"
    return render(
        request,
        "log.html",
        {
            "csrf": visit.csrf,
            "tenant": tenant,
            "search": search,
            "rows": [story_row(entry) for entry in page],
            "older": older,
            "paged": before is not None,
        },
    )


async def _rows(
    db: Database, tenant: Tenant, found: list[Effect], words: dict[str, str]
) -> list[dict[str, Any]]:
    """Effects as the page's tables show them: with their user's or group's name."""
    names = await provisioning_log.names_of(db, tenant.id, sorted({e.subject_id for e in found}))
    return [
        {
            "effect": effect,
            "who": outbox.subject_label(effect.payload, names.get(effect.subject_id))
            or effect.subject_id,
            "what": words.get(effect.kind, effect.kind),
        }
        for effect in found
    ]


def _count(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else None


@of_tenant
async def effects_page(request: Request, visit: Visit, tenant: Tenant) -> Response:
    db = visit.services.db
    dead = await outbox.list_effects(db, tenant.id, state=outbox.DEAD, limit=EFFECTS_SHOWN)
    held = await outbox.list_effects(db, tenant.id, state=outbox.HELD, limit=EFFECTS_SHOWN)
    status = await guard.status(db, tenant.id, visit.services.settings.guard)
    return render(
        request,
        "effects.html",
        {
            "csrf": visit.csrf,
            "tenant": tenant,
            "rows": await _rows(db, tenant, dead, _EFFECT_WORDS),
            "total": await outbox.count_dead(db, tenant.id),
            "held_rows": await _rows(db, tenant, held, _HELD_WORDS),
            "held_total": status.held,
            "retried": _count(request, "retried"),
            "approved": _count(request, "approved"),
        },
    )


_EFFECT_WORDS: Final = {
    outbox.ACCOUNT_SYNC: "bring the print account in line",
    outbox.ACCOUNT_DELETE: "revoke access of a deleted user",
    outbox.ACCOUNT_PURGE: "delete and redact the print account",
    outbox.GROUP_SYNC: "bring the print group in line",
    outbox.GROUP_DELETE: "delete the print group",
    outbox.TENANT_RECONCILE: "compare the print system with the records",
    outbox.ACCOUNT_REPAIR: "repair a print account that drifted",
}


_HELD_WORDS: Final = {
    outbox.ACCOUNT_SYNC: "revoke print access (disabled)",
    outbox.ACCOUNT_DELETE: "revoke print access (deleted)",
}


def _effects(tenant_name: str, count: int, done: str = "retried") -> Response:
    return RedirectResponse(
        f"/console/tenants/{tenant_name}/effects?{done}={count}", status_code=303
    )


@of_tenant
async def effect_retry(request: Request, visit: Visit, tenant: Tenant) -> Response:
    raw = request.path_params["effect_id"]
    retried = await outbox.retry(visit.services.db, tenant.id, int(raw)) if raw.isdigit() else False
    return _effects(tenant.name, int(retried))


@of_tenant
async def effects_retry_dead(request: Request, visit: Visit, tenant: Tenant) -> Response:
    count = await outbox.retry_dead(visit.services.db, tenant.id)
    return _effects(tenant.name, count)


@of_tenant
async def effect_approve(request: Request, visit: Visit, tenant: Tenant) -> Response:
    raw = request.path_params["effect_id"]
    valid = raw.isdigit() and len(raw) <= 9
    approved = await guard.approve(visit.services.db, tenant.id, [int(raw)]) if valid else 0
    return _effects(tenant.name, approved, "approved")


@of_tenant
async def effects_approve_held(request: Request, visit: Visit, tenant: Tenant) -> Response:
    approved = await guard.approve(visit.services.db, tenant.id)
    return _effects(tenant.name, approved, "approved")


__all__ = [
    "effect_approve",
    "effect_retry",
    "effects_approve_held",
    "effects_page",
    "effects_retry_dead",
    "log_page",
    "story_row",
]
