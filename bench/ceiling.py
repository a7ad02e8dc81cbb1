"""The framework ceiling: a bare FastAPI app answering every benchmark route with a fixed body.

It does no authentication, parsing, validation or storage, so its figures are the most a
FastAPI app can do under the same uvicorn, on the same core, for the same requests. Run it
with ``uvicorn bench.ceiling:app``; the SCIM base URL is ``http://HOST:PORT/scim/v2``.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Response

BASE_PATH = "/scim/v2"
SCIM_JSON = "application/scim+json"
USER_ID = "2819c223-7f76-453a-919d-413861904646"
GROUP_ID = "e9e30dba-f08f-4109-8486-d5c6a331660a"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _user(index: int) -> dict[str, Any]:
    user_id = USER_ID if index == 0 else f"{USER_ID[:-6]}{index:06d}"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_SCHEMA],
        "id": user_id,
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": f"user{index:06d}@contoso.example",
        "active": True,
        "displayName": f"Bench User {index}",
        "name": {"givenName": "Bench", "familyName": f"User{index}"},
        "emails": [{"primary": True, "type": "work", "value": f"user{index:06d}@contoso.example"}],
        ENTERPRISE_SCHEMA: {"department": "Printing", "employeeNumber": str(index)},
        "meta": {
            "resourceType": "User",
            "created": "2025-01-01T00:00:00Z",
            "lastModified": "2025-01-01T00:00:00Z",
            "location": f"http://127.0.0.1{BASE_PATH}/Users/{user_id}",
            "version": 'W/"1"',
        },
    }


def _list(resources: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(resources),
            "startIndex": 1,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


GROUP: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": GROUP_ID,
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "Bench Group",
    "meta": {"resourceType": "Group", "location": f"http://127.0.0.1{BASE_PATH}/Groups/{GROUP_ID}"},
}
USER_BODY = orjson.dumps(_user(0))
ONE_USER_LIST = _list([_user(0)])
USER_PAGE = _list([_user(i) for i in range(100)])
GROUP_BODY = orjson.dumps(GROUP)
GROUP_LIST = _list([GROUP])
SERVICE_PROVIDER_CONFIG = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 100},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [],
    }
)

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get(f"{BASE_PATH}/ServiceProviderConfig")
async def service_provider_config() -> Response:
    return Response(SERVICE_PROVIDER_CONFIG, media_type=SCIM_JSON)


@app.get(f"{BASE_PATH}/Users")
async def list_users(count: int | None = None) -> Response:
    body = USER_PAGE if count is not None and count > 1 else ONE_USER_LIST
    return Response(body, media_type=SCIM_JSON)


@app.post(f"{BASE_PATH}/Users")
async def create_user() -> Response:
    return Response(USER_BODY, status_code=201, media_type=SCIM_JSON)


@app.get(f"{BASE_PATH}/Users/{{user_id}}")
async def get_user(user_id: str) -> Response:
    return Response(USER_BODY, media_type=SCIM_JSON)


@app.patch(f"{BASE_PATH}/Users/{{user_id}}")
async def patch_user(user_id: str) -> Response:
    return Response(USER_BODY, media_type=SCIM_JSON)


@app.delete(f"{BASE_PATH}/Users/{{user_id}}")
async def delete_user(user_id: str) -> Response:
    return Response(status_code=204)


@app.get(f"{BASE_PATH}/Groups")
async def list_groups() -> Response:
    return Response(GROUP_LIST, media_type=SCIM_JSON)


@app.post(f"{BASE_PATH}/Groups")
async def create_group() -> Response:
    return Response(GROUP_BODY, status_code=201, media_type=SCIM_JSON)


@app.get(f"{BASE_PATH}/Groups/{{group_id}}")
async def get_group(group_id: str) -> Response:
    return Response(GROUP_BODY, media_type=SCIM_JSON)


@app.patch(f"{BASE_PATH}/Groups/{{group_id}}")
async def patch_group(group_id: str) -> Response:
    return Response(status_code=204)


@app.delete(f"{BASE_PATH}/Groups/{{group_id}}")
async def delete_group(group_id: str) -> Response:
    return Response(status_code=204)
