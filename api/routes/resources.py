"""The SCIM routes of one resource type: create, read, list, search, replace, patch and delete.

``resource_routes`` builds them once per resource over its storage spec (``storage.resources``),
whose computed attribute (a group's ``members``, a user's ``groups``) is read only when the
projection shows it; a list shows a user's ``groups`` only when ``attributes`` names them, so
lists and filters keep answering stored bytes. What a resource answers differently is in its
``Endpoints``: a group answers a PATCH with 204 and no body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One resource type's routes: its storage spec and how its answers differ."""

    spec: Spec
    patch_status: Literal[200, 204] = 200
    """A PATCH answers 200 with the resource, or 204 with its ETag and no body."""


def resource_routes(endpoints: Endpoints) -> list[Route]:
    """The plain routes of ``/{Resource}`` and ``/{Resource}/{id}`` for one resource type."""
    spec = endpoints.spec
    kind = spec.type
    computed = spec.computed

    async def answer(
        request: Request, ctx: Context, stored: Stored, *, created: bool = False
    ) -> Response:
        """The written resource, projected as the query string asks."""
        shape = Shape.of(dict(request.query_params))
        if (
            computed is not None
            and (computed.at_create or not created)
            and shape.shows(kind, computed, listing=False)
        ):
            stored = await resources.with_computed(ctx.services.db, spec, ctx.tenant.id, stored)
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
            computed=shape.shows(kind, computed, listing=False),
        )
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag(stored.version) in if_none_match:
            return responses.empty(304, stored.version)
        return responses.resource(shape.apply(kind, stored.doc), version=stored.version)

    async def listing(ctx: Context, query: ListQuery, shape: Shape) -> Response:
        page = await resources.list_(
            ctx.services.db,
            spec,
            ctx.tenant.id,
            query,
            computed=shape.shows(kind, computed, listing=True),
        )
        return responses.page(page, shape.apply_page(page, (kind,)))

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
        if endpoints.patch_status == 204:
            return responses.empty(204, stored.version)
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
