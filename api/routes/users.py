"""/Users: create, read, list, search, replace, patch and delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.dependencies import context
from api.requests import json_body, list_query, search_query
from api.routes.plain import plain_routes
from api.shaping import Shape
from storage import resources, users
from storage.documents import etag
from storage.scim.schema import USER_TYPE

Rewrite = Callable[..., Awaitable[resources.Stored]]


async def create_user(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await resources.create(ctx.services.db, users.SPEC, ctx.tenant.id, body, base=ctx.base)
    request.state.audit_target_id = stored.id
    if isinstance(body, dict):
        request.state.audit_target_name = body.get("userName")
    shape = Shape.of(dict(request.query_params))
    return responses.resource(
        shape.apply(USER_TYPE, stored.doc),
        version=stored.version,
        status=201,
        location=f"{ctx.base}/Users/{stored.id}",
    )


async def get_user(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    user_id: str = request.path_params["user_id"]
    ctx = await context(request, tenant_name)
    stored = await resources.get(ctx.services.db, users.SPEC, ctx.tenant.id, user_id)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag(stored.version) in if_none_match:
        return responses.empty(304, stored.version)
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version)


async def list_users(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    params = dict(request.query_params)
    page = await resources.list_(ctx.services.db, users.SPEC, ctx.tenant.id, list_query(params))
    shape = Shape.of(params)
    docs = shape.apply_all(USER_TYPE, page.docs)
    return responses.listing(page.total, page.start_index, docs)


async def search_users(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    query, attributes, excluded = search_query(body)
    page = await resources.list_(ctx.services.db, users.SPEC, ctx.tenant.id, query)
    shape = Shape(attributes, excluded)
    docs = shape.apply_all(USER_TYPE, page.docs)
    return responses.listing(page.total, page.start_index, docs)


async def replace_user(request: Request) -> Response:
    return await _rewrite(request, resources.replace)


async def patch_user(request: Request) -> Response:
    return await _rewrite(request, resources.patch)


async def _rewrite(request: Request, change: Rewrite) -> Response:
    """PUT and PATCH: the body applied to the stored user, answered with the result."""
    tenant_name: str = request.path_params["tenant_name"]
    user_id: str = request.path_params["user_id"]
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await change(
        ctx.services.db,
        users.SPEC,
        ctx.tenant.id,
        user_id,
        body,
        base=ctx.base,
        if_match=request.headers.get("if-match"),
    )
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version)


async def delete_user(request: Request) -> Response:
    tenant_name: str = request.path_params["tenant_name"]
    user_id: str = request.path_params["user_id"]
    ctx = await context(request, tenant_name)
    await resources.delete(
        ctx.services.db,
        users.SPEC,
        ctx.tenant.id,
        user_id,
        if_match=request.headers.get("if-match"),
    )
    return responses.empty(204)


routes: list[Route] = plain_routes(
    [
        ("POST", "/scim/v2/{tenant_name}/Users", create_user),
        ("GET", "/scim/v2/{tenant_name}/Users/{user_id}", get_user),
        ("GET", "/scim/v2/{tenant_name}/Users", list_users),
        ("POST", "/scim/v2/{tenant_name}/Users/.search", search_users),
        ("PUT", "/scim/v2/{tenant_name}/Users/{user_id}", replace_user),
        ("PATCH", "/scim/v2/{tenant_name}/Users/{user_id}", patch_user),
        ("DELETE", "/scim/v2/{tenant_name}/Users/{user_id}", delete_user),
    ]
)
