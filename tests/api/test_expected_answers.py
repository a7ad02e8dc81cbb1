"""Health counts what Entra would count as a failure of the target: a 404 for an id that is
gone (Entra reads a user after deleting it), a stale If-Match's 412 and a client that went away
mid-upload (recorded as 499, not 500) leave a tenant healthy and are no server error."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Message

from storage import health, tenants
from storage.database import open_database
from tests.api.test_middleware import Running, log_entries, running, scim_requests
from tests.api.test_users import entra_user


def acme_health(database_url: str) -> health.Health:
    async def read() -> health.Health:
        db = await open_database(database_url, pool_size=1)
        try:
            return await health.read(db, await tenants.get(db, "acme"))
        finally:
            await db.close()

    return asyncio.run(read())


def test_reads_and_deletes_of_a_deleted_user_leave_the_tenant_healthy(database_url: str) -> None:
    with running(database_url) as service:
        client = service.acme
        for number in range(25):
            created = client.post("/Users", json=entra_user(f"user{number}@acme.example"))
            assert created.status_code == 201
        user = created.json()["id"]
        assert client.delete(f"/Users/{user}").status_code == 204
        # Entra reads the user after deleting it, and may delete or update it again.
        assert client.get(f"/Users/{user}").status_code == 404
        assert client.delete(f"/Users/{user}").status_code == 404
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        assert client.patch(f"/Users/{user}", json=patch).status_code == 404
        # A real refusal still counts.
        assert client.post("/Users", json=entra_user("user0@acme.example")).status_code == 409
    state = acme_health(database_url)
    numbers = state.numbers
    assert (numbers.scim_requests, numbers.scim_expected, numbers.scim_client_errors) == (30, 3, 1)
    assert state.state == health.HEALTHY, state.reason


def upload_then_hang_up(service: Running, declared: int, sent: bytes) -> dict[str, Any]:
    """POST /Users declaring ``declared`` bytes, send ``sent``, then close the connection."""
    messages: list[Message] = [
        {"type": "http.request", "body": sent, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    headers = [
        (b"authorization", f"Bearer {service.acme.token}".encode()),
        (b"content-type", b"application/scim+json"),
        (b"content-length", str(declared).encode()),
    ]
    return service.post_raw(headers, receive)


def test_client_gone_mid_upload_is_499_not_a_server_error(database_url: str) -> None:
    body = orjson.dumps(entra_user("half@acme.example"))
    server_errors = scim_requests("Users", "POST", "500")
    closed = scim_requests("Users", "POST", "499")
    with running(database_url) as service:
        answer = upload_then_hang_up(service, len(body), body[: len(body) // 2])
    assert answer["status"] is None  # nobody left to answer
    assert scim_requests("Users", "POST", "500") == server_errors
    assert scim_requests("Users", "POST", "499") == closed + 1
    _, entries = log_entries(database_url)
    assert [(entry.operation, entry.status, entry.result) for entry in entries] == [
        ("POST /Users", 499, "client_error")
    ]
    assert entries[0].error is not None and "closed the connection" in entries[0].error
    numbers = acme_health(database_url).numbers
    assert (numbers.scim_server_errors, numbers.scim_client_errors, numbers.scim_expected) == (
        0,
        0,
        1,
    )
