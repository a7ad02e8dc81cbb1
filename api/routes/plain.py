"""SCIM routes registered as plain Starlette routes.

The SCIM handlers take the ``Request`` and read everything themselves (path parameters, the
bearer token, the body, the query string), so FastAPI's per-request dependency solving and
parameter validation would do nothing but cost time on every call. These routes sit on the same
application, behind the same middleware and exception handlers, and answer exactly the methods
they declare (Starlette would otherwise add ``HEAD`` to every ``GET`` route; FastAPI does not).

Each route tells the request's context (``api.context``) what the request is about before its
handler runs: the SCIM resource, the operation (the route's method) and the target id from the
path, which the provisioning log records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import request_context

Endpoint = Callable[[Request], Awaitable[Response]]


def plain_routes(
    table: Iterable[tuple[str, str, Endpoint]], *, resource: str, target: str
) -> list[Route]:
    """One ``Route`` per path of the table (in the order the paths first appear), answering the
    methods given for it, each handling ``resource``; the path parameter ``target``, in the
    paths that have it, is the target id.

    One route per path, not per method: the router tries its routes in order, and a ``DELETE``
    of a resource would otherwise be matched against every route of the resource before it
    (7 regular expressions instead of 2)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for method, path, endpoint in table:
        by_path.setdefault(path, {})[method] = endpoint
    routes: list[Route] = []
    for path, endpoints in by_path.items():
        route = _PathRoute(path, next(iter(endpoints.values())), methods=list(endpoints))
        route.methods = set(endpoints)
        has_target = target in route.param_convertors
        apps = {method: request_response(endpoint) for method, endpoint in endpoints.items()}
        route.app = _handling(apps, resource, target if has_target else None)
        routes.append(route)
    return routes


class _PathRoute(Route):
    """A route of several methods whose 405 names them in a stable order."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.methods or set()
        if scope["method"] not in methods:
            raise HTTPException(status_code=405, headers={"Allow": ", ".join(sorted(methods))})
        await self.app(scope, receive, send)


def _handling(apps: dict[str, ASGIApp], resource: str, target: str | None) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        target_id = scope["path_params"][target] if target is not None else None
        operation = scope["method"]
        request_context(scope).handles(resource, operation, target_id)
        await apps[operation](scope, receive, send)

    return handle
