"""/Groups: create, read, list, search, replace, patch and delete.

Members are read from membership rows only when the projection asks for them, so Entra's
``excludedAttributes=members`` reads never touch a large group's membership.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.dependencies import context
from api.requests import json_body, list_query, search_query
from api.routes.plain import plain_routes
from api.shaping import Shape
from storage import groups, resources
from storage.documents import etag
from storage.scim.schema import GROUP_TYPE


async def create_group(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    created = await resources.create(
        ctx.services.db, groups.SPEC, ctx.tenant.id, body, base=ctx.base
    )
    request.state.audit_target_id = created.id
    if isinstance(body, dict):
        request.state.audit_target_name = body.get("displayName")
    shape = Shape.of(dict(request.query_params))
    stored = await resources.get(
        ctx.services.db, groups.SPEC, ctx.tenant.id, created.id, members=shape.wants_members()
    )
    return responses.resource(
        shape.apply(GROUP_TYPE, stored.doc),
        version=stored.version,
        status=201,
        location=f"{ctx.base}/Groups/{stored.id}",
    )


async def get_group(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    group_id: str = request.path_params["group_id"]
    ctx = await context(request, tenant_name)
    shape = Shape.of(dict(request.query_params))
    stored = await resources.get(
        ctx.services.db, groups.SPEC, ctx.tenant.id, group_id, members=shape.wants_members()
    )
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag(stored.version) in if_none_match:
        return responses.empty(304, stored.version)
    return responses.resource(shape.apply(GROUP_TYPE, stored.doc), version=stored.version)


async def list_groups(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    params = dict(request.query_params)
    shape = Shape.of(params)
    page = await resources.list_(
        ctx.services.db,
        groups.SPEC,
        ctx.tenant.id,
        list_query(params),
        members=shape.wants_members(),
    )
    docs = shape.apply_all(GROUP_TYPE, page.docs)
    return responses.listing(page.total, page.start_index, docs)


async def search_groups(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    query, attributes, excluded = search_query(body)
    shape = Shape(attributes, excluded)
    page = await resources.list_(
        ctx.services.db, groups.SPEC, ctx.tenant.id, query, members=shape.wants_members()
    )
    docs = shape.apply_all(GROUP_TYPE, page.docs)
    return responses.listing(page.total, page.start_index, docs)


async def replace_group(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    group_id: str = request.path_params["group_id"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    await resources.replace(
        ctx.services.db,
        groups.SPEC,
        ctx.tenant.id,
        group_id,
        body,
        base=ctx.base,
        if_match=request.headers.get("if-match"),
    )
    shape = Shape.of(dict(request.query_params))
    stored = await resources.get(
        ctx.services.db, groups.SPEC, ctx.tenant.id, group_id, members=shape.wants_members()
    )
    return responses.resource(shape.apply(GROUP_TYPE, stored.doc), version=stored.version)


async def patch_group(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    group_id: str = request.path_params["group_id"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await resources.patch(
        ctx.services.db,
        groups.SPEC,
        ctx.tenant.id,
        group_id,
        body,
        base=ctx.base,
        if_match=request.headers.get("if-match"),
    )
    return responses.empty(204, stored.version)


async def delete_group(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    group_id: str = request.path_params["group_id"]
    ctx = await context(request, tenant_name)
    await resources.delete(
        ctx.services.db,
        groups.SPEC,
        ctx.tenant.id,
        group_id,
        if_match=request.headers.get("if-match"),
    )
    return responses.empty(204)


routes: list[Route] = plain_routes(
    [
        ("POST", "/scim/v2/{tenant_name}/Groups", create_group),
        ("GET", "/scim/v2/{tenant_name}/Groups/{group_id}", get_group),
        ("GET", "/scim/v2/{tenant_name}/Groups", list_groups),
        ("POST", "/scim/v2/{tenant_name}/Groups/.search", search_groups),
        ("PUT", "/scim/v2/{tenant_name}/Groups/{group_id}", replace_group),
        ("PATCH", "/scim/v2/{tenant_name}/Groups/{group_id}", patch_group),
        ("DELETE", "/scim/v2/{tenant_name}/Groups/{group_id}", delete_group),
    ]
)
