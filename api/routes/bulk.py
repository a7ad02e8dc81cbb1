"""``POST /Bulk`` (RFC 7644 §3.7): many operations in one request, each run as its single
request would be.

The request is checked whole first (``storage.scim.bulk``): a message that is no BulkRequest is
refused (400), and one with more than ``bulk.maxOperations`` operations (or a body over
``bulk.maxPayloadSize``, which ``api.middleware`` enforces) gets 413 naming the limit. Then each
operation goes through the resource engine exactly as its single request does: the same
validation, its own transaction with the effects it implies, the same errors. Its result holds
the status the single request would have answered (as a string), and the resource's
``location`` and new ``version``, or the SCIM Error. ``bulkId`` references are replaced by the
ids their POSTs created (``storage.scim.bulk`` orders the operations); ``failOnErrors`` stops
the request once that many operations failed. The answer is 200 with the results, in request
order, of the operations that ran.

A Bulk request of N operations counts as N against the tenant's rate limit
(``api.ratelimit``), leaves one provisioning-log entry per operation (``api.context``), and is
one request to the request metrics.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.context import Operation, request_context
from api.dependencies import Context, context
from api.errors import PayloadTooLarge, describe, error_document
from api.requests import json_body
from api.routes import groups, users
from api.routes.plain import plain_routes
from api.routes.resources import Endpoints
from storage import resources
from storage.changes import Changes
from storage.documents import etag
from storage.scim import bulk
from storage.scim.schema import BULK_RESPONSE

ENDPOINTS: dict[str, Endpoints] = {"User": users.ENDPOINTS, "Group": groups.ENDPOINTS}


async def run_bulk(request: Request) -> Response:
    ctx = await context(request, request.path_params["tenant_name"])
    envelope = bulk.envelope(await json_body(request))
    count = len(envelope.operations)
    if count > bulk.MAX_OPERATIONS:
        raise PayloadTooLarge(
            f"the request holds {count} operations, over maxOperations ({bulk.MAX_OPERATIONS})"
        )
    await ctx.services.charge(ctx.tenant.name, count - 1)
    logged = request_context(request).operations
    created = bulk.Created()
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    for operation in bulk.plan(envelope.operations):
        result, entry = await _run(ctx, operation, created)
        results[operation.index] = result
        logged.append(entry)
        if entry.status >= 400:
            errors += 1
            if envelope.fail_on_errors is not None and errors >= envelope.fail_on_errors:
                break
    document = {
        "schemas": [BULK_RESPONSE],
        "Operations": [results[index] for index in sorted(results)],
    }
    return responses.resource(orjson.dumps(document))


async def _run(
    ctx: Context, operation: bulk.Operation, created: bulk.Created
) -> tuple[dict[str, Any], Operation]:
    """Run one operation; its result and its provisioning-log entry."""
    result: dict[str, Any] = {"method": operation.method}
    if operation.bulk_id is not None:
        result["bulkId"] = operation.bulk_id
    endpoint = operation.resource.endpoint if operation.resource is not None else "/Bulk"
    label = f"{operation.method or 'POST'} {endpoint}"
    resource_id = operation.resource_id
    try:
        if operation.error is not None:
            raise operation.error
        assert operation.resource is not None
        endpoints = ENDPOINTS[operation.resource.name]
        resource_id = created.resolve(resource_id)
        status, stored, changes = await _apply(ctx, endpoints, operation, created, resource_id)
    except Exception as error:
        described = describe(error)
        if described is None:
            raise
        if operation.method != "POST" and operation.path is not None:
            result["location"] = _location(ctx, operation, resource_id)
        result["status"] = str(described.status)
        result["response"] = error_document(described.status, described.detail, described.scim_type)
        return result, Operation(label, described.status, resource_id, error=described.note)
    if stored is not None:
        resource_id = stored.id
        result["version"] = etag(stored.version)
    result["location"] = endpoints.spec.location(ctx.base, str(resource_id))
    result["status"] = str(status)
    return result, Operation(label, status, resource_id, changes.name, changes=changes)


async def _apply(
    ctx: Context,
    endpoints: Endpoints,
    operation: bulk.Operation,
    created: bulk.Created,
    resource_id: str | None,
) -> tuple[int, resources.Stored | None, Changes]:
    """The operation through the resource engine: its status, the resource as stored (none
    after a DELETE) and what it changed."""
    spec = endpoints.spec
    db, tenant_id = ctx.services.db, ctx.tenant.id
    data = created.resolve(operation.data)
    if operation.method == "POST":
        stored = await resources.create(db, spec, tenant_id, data, base=ctx.base)
        assert operation.bulk_id is not None
        created.ids[operation.bulk_id] = stored.id
        return 201, stored, stored.changes
    assert resource_id is not None
    if operation.method == "DELETE":
        changes = await resources.delete(
            db, spec, tenant_id, resource_id, if_match=operation.version
        )
        return 204, None, changes
    edit = resources.replacing if operation.method == "PUT" else resources.patching
    stored = await resources.rewrite(
        db,
        spec,
        tenant_id,
        resource_id,
        edit(spec, data),
        base=ctx.base,
        if_match=operation.version,
    )
    return (200 if operation.method == "PUT" else endpoints.patch_status), stored, stored.changes


def _location(ctx: Context, operation: bulk.Operation, resource_id: str | None) -> str:
    resource = operation.resource
    if resource is not None and resource_id is not None and not resource_id.startswith(bulk.PREFIX):
        return ENDPOINTS[resource.name].spec.location(ctx.base, resource_id)
    return f"{ctx.base}/{(operation.path or '').strip('/')}"


routes: list[Route] = plain_routes(
    [("POST", "/scim/v2/{tenant_name}/Bulk", run_bulk)], resource="Bulk", target="resource_id"
)
