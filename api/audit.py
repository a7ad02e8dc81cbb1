"""The provisioning log's SCIM side: every authenticated SCIM request becomes one log entry.

A pure ASGI middleware reads what the request left in its state (the tenant, set once the token
is verified; the created resource's id and name; an error's detail) and appends one entry to the
process's ``LogBuffer``, which writes entries in batches. Appending is O(1) and does no I/O.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESOURCE_SEGMENT = 4  # /scim/v2/{tenant}/{Resource}/{id}


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/scim/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            tenant_id = state.get("audit_tenant")
            if tenant_id is not None:
                _append(scope, state, tenant_id, status)


def _append(scope: Scope, state: dict[str, Any], tenant_id: int, status: int) -> None:
    log = getattr(scope["app"].state, "provisioning_log", None)
    if log is None:
        return
    parts = scope["path"].split("/")
    resource = parts[RESOURCE_SEGMENT] if len(parts) > RESOURCE_SEGMENT else ""
    target_id = state.get("audit_target_id")
    if target_id is None and len(parts) > RESOURCE_SEGMENT + 1:
        candidate = parts[RESOURCE_SEGMENT + 1]
        if candidate and candidate != ".search":
            target_id = candidate
    log.append(
        tenant_id,
        f"{scope['method']} /{resource}",
        status,
        target_id=target_id,
        target_name=state.get("audit_target_name"),
        error=state.get("audit_error"),
    )
