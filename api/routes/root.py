"""The tenant's SCIM root: queries across resource types, and ``/Me``.

``POST /.search`` (RFC 7644 §3.4.3) and ``GET`` on the root itself (§3.4.2.1) list the tenant's
Users and Groups as one collection, with the same filter, sort, paging (by index or cursor),
``attributes`` and ``excludedAttributes`` as ``/Users`` and ``/Groups``, through the same
engine (``storage.resources.search``). An attribute a type does not define has no value there
(a filter on it is false, a sort puts the type's resources with the missing values); one that
no type defines is refused. Without ``sortBy`` the users come first, then the groups, each in
the order they were made. Each resource is projected as its own type; a group shows its members
and a user its ``groups`` as ``/Groups`` and ``/Users`` lists would.

``/Me`` (RFC 7644 §3.11) stands for the authenticated subject, but a tenant's token authenticates
a provisioning client, not a user: every method answers 501, after authentication.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.dependencies import Context, context
from api.errors import NotImplementedHere
from api.requests import json_body, list_query, search_query
from api.routes.plain import plain_routes
from api.shaping import Shape
from storage import groups, resources, users
from storage.paging import ListQuery

SEARCHED = (users.SPEC, groups.SPEC)
_TYPES = tuple(spec.type for spec in SEARCHED)


async def _search(ctx: Context, query: ListQuery, shape: Shape) -> Response:
    computed = [shape.shows(spec.type, spec.computed, listing=True) for spec in SEARCHED]
    page = await resources.search(
        ctx.services.db, SEARCHED, ctx.tenant.id, query, computed=computed
    )
    return responses.page(page, shape.apply_page(page, _TYPES))


async def search_everything(request: Request) -> Response:
    ctx = await context(request, request.path_params["tenant_name"])
    query, attributes, excluded = search_query(await json_body(request))
    return await _search(ctx, query, Shape(attributes, excluded))


async def query_everything(request: Request) -> Response:
    ctx = await context(request, request.path_params["tenant_name"])
    params = dict(request.query_params)
    return await _search(ctx, list_query(params), Shape.of(params))


async def me(request: Request) -> Response:
    await context(request, request.path_params["tenant_name"])
    raise NotImplementedHere(
        "/Me is not supported: the bearer token authenticates a provisioning client, not a user"
    )


_ROOT = "/scim/v2/{tenant_name}"
routes: list[Route] = [
    *plain_routes(
        [("POST", f"{_ROOT}/.search", search_everything), ("GET", _ROOT, query_everything)],
        resource=".search",
        target="resource_id",
    ),
    *plain_routes(
        [(method, f"{_ROOT}/Me", me) for method in ("GET", "POST", "PUT", "PATCH", "DELETE")],
        resource="Me",
        target="resource_id",
    ),
]
