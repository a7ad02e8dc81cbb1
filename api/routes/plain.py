"""SCIM routes registered as plain Starlette routes.

The SCIM handlers take the ``Request`` and read everything themselves (path parameters, the
bearer token, the body, the query string), so FastAPI's per-request dependency solving and
parameter validation would do nothing but cost time on every call. These routes sit on the same
application, behind the same middleware and exception handlers, and answer exactly the methods
they declare (Starlette would otherwise add ``HEAD`` to every ``GET`` route; FastAPI does not).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]


def plain_routes(table: Iterable[tuple[str, str, Endpoint]]) -> list[Route]:
    """One ``Route`` per (method, path, endpoint), in the order given."""
    routes: list[Route] = []
    for method, path, endpoint in table:
        route = Route(path, endpoint, methods=[method])
        route.methods = {method}
        routes.append(route)
    return routes
