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

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import request_context

Endpoint = Callable[[Request], Awaitable[Response]]


def plain_routes(
    table: Iterable[tuple[str, str, Endpoint]], *, resource: str, target: str
) -> list[Route]:
    """One ``Route`` per (method, path, endpoint), in the order given, each handling
    ``resource``; the path parameter ``target``, in the paths that have it, is the target id."""
    routes: list[Route] = []
    for method, path, endpoint in table:
        route = Route(path, endpoint, methods=[method])
        route.methods = {method}
        has_target = target in route.param_convertors
        route.app = _handling(route.app, resource, method, target if has_target else None)
        routes.append(route)
    return routes


def _handling(app: ASGIApp, resource: str, operation: str, target: str | None) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        target_id = scope["path_params"][target] if target is not None else None
        request_context(scope).handles(resource, operation, target_id)
        await app(scope, receive, send)

    return handle
