"""/Users: create, read, list, search, replace, patch and delete."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from api import responses
from api.dependencies import context
from api.requests import json_body, list_query, search_query
from api.shaping import Shape
from storage import users
from storage.documents import etag
from storage.scim.schema import USER_TYPE

router = APIRouter()


@router.post("/scim/v2/{tenant_name}/Users")
async def create_user(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await users.create(ctx.services.db, ctx.tenant.id, body, base=ctx.base)
    request.state.audit_target_id = stored.id
    if isinstance(body, dict):
        request.state.audit_target_name = body.get("userName")
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version,
                              status=201, location=f"{ctx.base}/Users/{stored.id}")


@router.get("/scim/v2/{tenant_name}/Users/{user_id}")
async def get_user(request: Request, tenant_name: str, user_id: str) -> Response:
    ctx = await context(request, tenant_name)
    stored = await users.get(ctx.services.db, ctx.tenant.id, user_id)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag(stored.version) in if_none_match:
        return responses.empty(304, stored.version)
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version)


@router.get("/scim/v2/{tenant_name}/Users")
async def list_users(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    params = dict(request.query_params)
    page = await users.list_(ctx.services.db, ctx.tenant.id, list_query(params))
    shape = Shape.of(params)
    docs = page.docs if shape.plain else [shape.apply(USER_TYPE, doc) for doc in page.docs]
    return responses.listing(page.total, page.start_index, docs)


@router.post("/scim/v2/{tenant_name}/Users/.search")
async def search_users(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    query, attributes, excluded = search_query(body)
    page = await users.list_(ctx.services.db, ctx.tenant.id, query)
    shape = Shape(attributes, excluded)
    docs = page.docs if shape.plain else [shape.apply(USER_TYPE, doc) for doc in page.docs]
    return responses.listing(page.total, page.start_index, docs)


@router.put("/scim/v2/{tenant_name}/Users/{user_id}")
async def replace_user(request: Request, tenant_name: str, user_id: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await users.replace(ctx.services.db, ctx.tenant.id, user_id, body, base=ctx.base,
                                 if_match=request.headers.get("if-match"))
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version)


@router.patch("/scim/v2/{tenant_name}/Users/{user_id}")
async def patch_user(request: Request, tenant_name: str, user_id: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await users.patch(ctx.services.db, ctx.tenant.id, user_id, body, base=ctx.base,
                               if_match=request.headers.get("if-match"))
    shape = Shape.of(dict(request.query_params))
    return responses.resource(shape.apply(USER_TYPE, stored.doc), version=stored.version)


@router.delete("/scim/v2/{tenant_name}/Users/{user_id}")
async def delete_user(request: Request, tenant_name: str, user_id: str) -> Response:
    ctx = await context(request, tenant_name)
    await users.delete(ctx.services.db, ctx.tenant.id, user_id,
                       if_match=request.headers.get("if-match"))
    return responses.empty(204)
