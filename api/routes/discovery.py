"""/ServiceProviderConfig, /ResourceTypes and /Schemas: what this server accepts.

Each route says what it handles (``api.context``) before it authenticates, so that a refused
request's provisioning-log entry names it too.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from api import responses
from api.context import request_context
from api.dependencies import context
from storage import cursors
from storage.errors import ResourceNotFound
from storage.paging import MAX_PAGE_SIZE
from storage.resources import DEFAULT_PAGE_SIZE
from storage.scim.bulk import MAX_OPERATIONS
from storage.scim.schema import RESOURCE_TYPES, SCHEMAS, SERVICE_PROVIDER_CONFIG

router = APIRouter()


def service_provider_config(base: str, max_body_bytes: int) -> dict[str, Any]:
    """What the server supports. ``pagination`` is RFC 9865 §4's: both methods, index by
    default (what Entra ID uses), a cursor valid for ``cursorTimeout`` seconds at least."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": MAX_OPERATIONS,
            "maxPayloadSize": max_body_bytes,
        },
        "filter": {"supported": True, "maxResults": MAX_PAGE_SIZE},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_PAGE_SIZE,
            "maxPageSize": MAX_PAGE_SIZE,
            "cursorTimeout": cursors.TIMEOUT_SECONDS,
        },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The tenant's Secret Token in an Authorization: Bearer header.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def _list(resources: list[dict[str, Any]]) -> Response:
    return responses.listing(len(resources), 1, [orjson.dumps(item).decode() for item in resources])


@router.get("/scim/v2/{tenant_name}/ServiceProviderConfig")
async def get_service_provider_config(request: Request, tenant_name: str) -> Response:
    request_context(request).handles("ServiceProviderConfig", "GET")
    ctx = await context(request, tenant_name)
    body = service_provider_config(ctx.base, ctx.services.settings.max_body_bytes)
    return responses.resource(orjson.dumps(body))


@router.get("/scim/v2/{tenant_name}/ResourceTypes")
async def list_resource_types(request: Request, tenant_name: str) -> Response:
    request_context(request).handles("ResourceTypes", "GET")
    ctx = await context(request, tenant_name)
    return _list(
        [rt.document(f"{ctx.base}/ResourceTypes/{rt.name}") for rt in RESOURCE_TYPES.values()]
    )


@router.get("/scim/v2/{tenant_name}/ResourceTypes/{name}")
async def get_resource_type(request: Request, tenant_name: str, name: str) -> Response:
    request_context(request).handles("ResourceTypes", "GET", name)
    ctx = await context(request, tenant_name)
    for rt in RESOURCE_TYPES.values():
        if rt.name == name:
            return responses.resource(
                orjson.dumps(rt.document(f"{ctx.base}/ResourceTypes/{rt.name}"))
            )
    raise ResourceNotFound("ResourceType", name)


@router.get("/scim/v2/{tenant_name}/Schemas")
async def list_schemas(request: Request, tenant_name: str) -> Response:
    request_context(request).handles("Schemas", "GET")
    ctx = await context(request, tenant_name)
    return _list([schema.document(f"{ctx.base}/Schemas/{schema.id}") for schema in SCHEMAS])


@router.get("/scim/v2/{tenant_name}/Schemas/{schema_id}")
async def get_schema(request: Request, tenant_name: str, schema_id: str) -> Response:
    request_context(request).handles("Schemas", "GET", schema_id)
    ctx = await context(request, tenant_name)
    for schema in SCHEMAS:
        if schema.id == schema_id:
            return responses.resource(
                orjson.dumps(schema.document(f"{ctx.base}/Schemas/{schema.id}"))
            )
    raise ResourceNotFound("Schema", schema_id)
