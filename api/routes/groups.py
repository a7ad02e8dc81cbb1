"""/Groups: create, read, list, search, replace, patch and delete.

Members are read from membership rows only when the projection asks for them, so Entra's
``excludedAttributes=members`` reads never touch a large group's membership.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from api import responses
from api.dependencies import context
from api.requests import json_body, list_query, search_query
from api.shaping import Shape
from storage import groups
from storage.documents import etag
from storage.scim.schema import GROUP_TYPE

router = APIRouter()


@router.post("/scim/v2/{tenant_name}/Groups")
async def create_group(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    created = await groups.create(ctx.services.db, ctx.tenant.id, body, base=ctx.base)
    request.state.audit_target_id = created.id
    if isinstance(body, dict):
        request.state.audit_target_name = body.get("displayName")
    shape = Shape.of(dict(request.query_params))
    stored = await groups.get(ctx.services.db, ctx.tenant.id, created.id,
                              members=shape.wants_members())
    return responses.resource(shape.apply(GROUP_TYPE, stored.doc), version=stored.version,
                              status=201, location=f"{ctx.base}/Groups/{stored.id}")


@router.get("/scim/v2/{tenant_name}/Groups/{group_id}")
async def get_group(request: Request, tenant_name: str, group_id: str) -> Response:
    ctx = await context(request, tenant_name)
    shape = Shape.of(dict(request.query_params))
    stored = await groups.get(ctx.services.db, ctx.tenant.id, group_id,
                              members=shape.wants_members())
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag(stored.version) in if_none_match:
        return responses.empty(304, stored.version)
    return responses.resource(shape.apply(GROUP_TYPE, stored.doc), version=stored.version)


@router.get("/scim/v2/{tenant_name}/Groups")
async def list_groups(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    params = dict(request.query_params)
    shape = Shape.of(params)
    page = await groups.list_(ctx.services.db, ctx.tenant.id, list_query(params),
                              members=shape.wants_members())
    docs = page.docs if shape.plain else [shape.apply(GROUP_TYPE, doc) for doc in page.docs]
    return responses.listing(page.total, page.start_index, docs)


@router.post("/scim/v2/{tenant_name}/Groups/.search")
async def search_groups(request: Request, tenant_name: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    query, attributes, excluded = search_query(body)
    shape = Shape(attributes, excluded)
    page = await groups.list_(ctx.services.db, ctx.tenant.id, query,
                              members=shape.wants_members())
    docs = page.docs if shape.plain else [shape.apply(GROUP_TYPE, doc) for doc in page.docs]
    return responses.listing(page.total, page.start_index, docs)


@router.put("/scim/v2/{tenant_name}/Groups/{group_id}")
async def replace_group(request: Request, tenant_name: str, group_id: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    await groups.replace(ctx.services.db, ctx.tenant.id, group_id, body, base=ctx.base,
                         if_match=request.headers.get("if-match"))
    shape = Shape.of(dict(request.query_params))
    stored = await groups.get(ctx.services.db, ctx.tenant.id, group_id,
                              members=shape.wants_members())
    return responses.resource(shape.apply(GROUP_TYPE, stored.doc), version=stored.version)


@router.patch("/scim/v2/{tenant_name}/Groups/{group_id}")
async def patch_group(request: Request, tenant_name: str, group_id: str) -> Response:
    ctx = await context(request, tenant_name)
    body = await json_body(request, ctx.services.settings.max_body_bytes)
    stored = await groups.patch(ctx.services.db, ctx.tenant.id, group_id, body, base=ctx.base,
                                if_match=request.headers.get("if-match"))
    return responses.empty(204, stored.version)


@router.delete("/scim/v2/{tenant_name}/Groups/{group_id}")
async def delete_group(request: Request, tenant_name: str, group_id: str) -> Response:
    ctx = await context(request, tenant_name)
    await groups.delete(ctx.services.db, ctx.tenant.id, group_id,
                        if_match=request.headers.get("if-match"))
    return responses.empty(204)
