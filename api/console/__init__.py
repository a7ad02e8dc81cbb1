"""The admin console: server-rendered pages under ``/console/`` for the people who run printsync.

Served by every API process (``printsync serve`` and each replica) when ``PRINTSYNC_ADMIN_TOKEN``
is set, and signed in to with that token (``api.console.access``). Its pages show each tenant's
health, a tenant's Tenant URL and settings, its provisioning log in plain words and its dead
effects (``api.console.pages``, ``api.console.history``); they are Jinja2 templates
(``templates/``) with one stylesheet and one small script (``static/``) shipped in the package:
nothing is loaded from another host, so the console works offline.

The console reads and changes only what the database holds, through the same storage functions
as the ``printsync`` commands; it never imports the workers.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.console import history, pages
from api.console.access import enabled, not_found

STATIC = Path(__file__).parent / "static"


class _Static:
    """The console's static files, while the console is on (404 otherwise)."""

    def __init__(self) -> None:
        self._files = StaticFiles(directory=STATIC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if enabled(request.app.state.services) is None:
            response: Response = not_found()
            await response(scope, receive, send)
            return
        await self._files(scope, receive, send)


def routes() -> list[BaseRoute]:
    """The console's routes, to add to the app (``/``, ``/console`` and ``/console/…``)."""
    tenant = "/tenants/{name}"
    console = [
        Route("/", pages.tenant_list, methods=["GET"]),
        Route("/sign-in", pages.sign_in, methods=["GET", "POST"]),
        Route("/sign-out", pages.sign_out, methods=["POST"]),
        Route("/tenants", pages.tenant_create, methods=["POST"]),
        Route(tenant, pages.tenant_page, methods=["GET"]),
        Route(f"{tenant}/rotate", pages.tenant_rotate, methods=["POST"]),
        Route(f"{tenant}/disable", pages.tenant_disable, methods=["POST"]),
        Route(f"{tenant}/enable", pages.tenant_enable, methods=["POST"]),
        Route(f"{tenant}/notify", pages.tenant_notify, methods=["POST"]),
        Route(f"{tenant}/log", history.log_page, methods=["GET"]),
        Route(f"{tenant}/effects", history.effects_page, methods=["GET"]),
        Route(f"{tenant}/effects/retry-dead", history.effects_retry_dead, methods=["POST"]),
        Route(f"{tenant}/effects/{{effect_id}}/retry", history.effect_retry, methods=["POST"]),
        Route(f"{tenant}/effects/approve-held", history.effects_approve_held, methods=["POST"]),
        Route(f"{tenant}/effects/{{effect_id}}/approve", history.effect_approve, methods=["POST"]),
        Mount("/static", app=_Static(), name="console-static"),
        Route("/{rest:path}", pages.page_not_found, methods=["GET"]),
    ]
    return [
        Route("/", pages.home, methods=["GET"]),
        Route("/console", pages.home, methods=["GET"]),
        Mount("/console", routes=console),
    ]


__all__ = ["routes"]
