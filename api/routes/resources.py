"""The SCIM routes of one resource type: create, read, list, search, replace, patch and delete.

``resource_routes`` builds them once per resource over its storage spec (``storage.resources``);
what a resource answers differently is a hook of its ``Endpoints``: a group reads its members only
when the projection shows them, and answers a PATCH with 204 and no body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.context import request_context
from api.dependencies import Context, context
from api.requests import json_body, list_query, search_query
from api.routes.plain import plain_routes
from api.shaping import Shape
from storage import resources
from storage.documents import etag
from storage.paging import ListQuery
from storage.resources import Edit, Spec, Stored

Editing = Callable[[Spec, object], Edit]


def _never(_shape: Shape) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One resource type's routes: its storage spec and the hooks of its answers."""

    spec: Spec
    shows_members: Callable[[Shape], bool] = _never
    """Whether a projection shows the members, which are then read from the membership rows. A
    resource with members is read back after a create or replace, so the answer shows them."""
    patched: Callable[[Stored], Response] | None = None
    """The answer to a PATCH when it is not the patched resource."""


def resource_routes(endpoints: Endpoints) -> list[Route]:
    """The plain routes of ``/{Resource}`` and ``/{Resource}/{id}`` for one resource type."""
    spec = endpoints.spec
    kind = spec.type
    read_back = spec.members is not None

    async def answer(
        request: Request, ctx: Context, stored: Stored, *, created: bool = False
    ) -> Response:
        """The written resource, projected as the query string asks."""
        shape = Shape.of(dict(request.query_params))
        if read_back:
            stored = await resources.get(
                ctx.services.db,
                spec,
                ctx.tenant.id,
                stored.id,
                members=endpoints.shows_members(shape),
            )
        return responses.resource(
            shape.apply(kind, stored.doc),
            version=stored.version,
            status=201 if created else 200,
            location=spec.location(ctx.base, stored.id) if created else None,
        )

    async def create(request: Request) -> Response:
        ctx = await context(request, request.path_params["tenant_name"])
        body = await json_body(request)
        name = body.get(spec.name_attribute) if isinstance(body, dict) else None
        if isinstance(name, str):  # a refused create is logged under the name it asked for
            request_context(request).target_name = name
        stored = await resources.create(ctx.services.db, spec, ctx.tenant.id, body, base=ctx.base)
        request_context(request).created(stored.id, stored.changes)
        return await answer(request, ctx, stored, created=True)

    async def get(request: Request) -> Response:
        ctx = await context(request, request.path_params["tenant_name"])
        shape = Shape.of(dict(request.query_params))
        stored = await resources.get(
            ctx.services.db,
            spec,
            ctx.tenant.id,
            request.path_params["resource_id"],
            members=endpoints.shows_members(shape),
        )
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag(stored.version) in if_none_match:
            return responses.empty(304, stored.version)
        return responses.resource(shape.apply(kind, stored.doc), version=stored.version)

    async def listing(ctx: Context, query: ListQuery, shape: Shape) -> Response:
        page = await resources.list_(
            ctx.services.db, spec, ctx.tenant.id, query, members=endpoints.shows_members(shape)
        )
        docs = shape.apply_all(kind, page.docs)
        return responses.listing(page.total, page.start_index, docs)

    async def list_(request: Request) -> Response:
        ctx = await context(request, request.path_params["tenant_name"])
        params = dict(request.query_params)
        return await listing(ctx, list_query(params), Shape.of(params))

    async def search(request: Request) -> Response:
        ctx = await context(request, request.path_params["tenant_name"])
        body = await json_body(request)
        query, attributes, excluded = search_query(body)
        return await listing(ctx, query, Shape(attributes, excluded))

    async def rewrite(request: Request, edit: Editing) -> tuple[Context, Stored]:
        """PUT and PATCH: the body applied to the stored resource."""
        ctx = await context(request, request.path_params["tenant_name"])
        body = await json_body(request)
        stored = await resources.rewrite(
            ctx.services.db,
            spec,
            ctx.tenant.id,
            request.path_params["resource_id"],
            edit(spec, body),
            base=ctx.base,
            if_match=request.headers.get("if-match"),
        )
        request_context(request).wrote(stored.changes)
        return ctx, stored

    async def replace(request: Request) -> Response:
        ctx, stored = await rewrite(request, resources.replacing)
        return await answer(request, ctx, stored)

    async def patch(request: Request) -> Response:
        ctx, stored = await rewrite(request, resources.patching)
        if endpoints.patched is not None:
            return endpoints.patched(stored)
        return await answer(request, ctx, stored)

    async def delete(request: Request) -> Response:
        ctx = await context(request, request.path_params["tenant_name"])
        changes = await resources.delete(
            ctx.services.db,
            spec,
            ctx.tenant.id,
            request.path_params["resource_id"],
            if_match=request.headers.get("if-match"),
        )
        request_context(request).wrote(changes)
        return responses.empty(204)

    collection = f"/scim/v2/{{tenant_name}}{kind.endpoint}"
    item = f"{collection}/{{resource_id}}"
    return plain_routes(
        [
            ("POST", collection, create),
            ("GET", item, get),
            ("GET", collection, list_),
            ("POST", f"{collection}/.search", search),
            ("PUT", item, replace),
            ("PATCH", item, patch),
            ("DELETE", item, delete),
        ],
        resource=kind.endpoint.lstrip("/"),
        target="resource_id",
    )
