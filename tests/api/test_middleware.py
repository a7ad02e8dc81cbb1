"""The request middleware on the real app: request ids, the typed request context and its
provisioning-log entry, the body limit while a body is received, and the last-resort 500."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.context import RequestContext, request_context
from storage import provisioning_log, resources, tenants
from storage.changes import Changes
from storage.database import open_database
from storage.provisioning_log import Entry, LogQuery
from storage.settings import DatabaseSettings
from tests.api.test_users import entra_user
from tests.conftest import TenantClient, count_rows, create_tenant, make_app_settings

MAX_BODY = 4096
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@dataclass
class Running:
    """The app behind a spy that keeps each HTTP request's context once it is answered."""

    http: TestClient
    asgi: Any
    acme: TenantClient
    contexts: list[RequestContext]

    def post_raw(self, headers: list[tuple[bytes, bytes]], receive: Receive) -> dict[str, Any]:
        """POST /Users straight to the app on its event loop, the body as ``receive`` hands it
        over; what was answered: ``status`` (None if nothing) and ``body``."""
        path = "/scim/v2/acme/Users"
        answer: dict[str, Any] = {"status": None, "body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }

        async def call() -> None:
            await self.asgi(scope, receive, send)

        assert self.http.portal is not None
        self.http.portal.call(call)
        return answer


@contextmanager
def running(database_url: str) -> Iterator[Running]:
    app = create_app(
        make_app_settings(max_body_bytes=MAX_BODY), DatabaseSettings(database_url=database_url)
    )
    contexts: list[RequestContext] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            contexts.append(request_context(scope))

    token = create_tenant(database_url, "acme")
    with TestClient(spy, raise_server_exceptions=False) as http:
        yield Running(http, spy, TenantClient(http, "acme", token), contexts)


def log_entries(database_url: str) -> tuple[int, list[Entry]]:
    """acme's id and its provisioning-log entries, oldest first (read once the app stopped)."""

    async def read() -> tuple[int, list[Entry]]:
        db = await open_database(database_url, pool_size=1)
        try:
            tenant = await tenants.get(db, "acme")
            entries = await provisioning_log.search(db, LogQuery(tenant_id=tenant.id))
        finally:
            await db.close()
        return tenant.id, entries[::-1]

    return asyncio.run(read())


def scim_requests(resource: str, method: str, status: str, tenant: str = "acme") -> float:
    labels = {"resource": resource, "method": method, "status": status, "tenant": tenant}
    return REGISTRY.get_sample_value("printsync_scim_requests_total", labels) or 0.0


# Request ids -------------------------------------------------------------------------------------


def test_request_with_sane_request_id_echoes_it_and_keeps_it_in_context(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        response = service.acme.get("/Users", headers={"X-Request-ID": "entra-7f3a.01"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "entra-7f3a.01"
    assert service.contexts[-1].request_id == "entra-7f3a.01"


def test_request_without_request_id_gets_a_new_one_each_time(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        first = service.acme.get("/Users")
        second = service.acme.get("/Nothing")  # no route: a 404 gets an id too

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch("[0-9a-f]{32}", request_id) for request_id in ids)
    assert ids[0] != ids[1]
    assert [context.request_id for context in service.contexts] == ids


# The typed context and the provisioning log ------------------------------------------------------


def test_scim_requests_fill_context_and_log_what_they_were_about(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        created = service.acme.post("/Users", json=entra_user("ada@acme.example"))
        user_id = created.json()["id"]
        read = service.acme.get(f"/Users/{user_id}")
        missing = service.acme.get("/Users/no-such-id")
        service.acme.post("/Groups/.search", json={"schemas": [SEARCH]})
        refused = service.acme.get("/Users", headers={"Authorization": "Bearer wrong"})
    tenant_id, entries = log_entries(sqlite_url)

    assert (created.status_code, read.status_code, missing.status_code) == (201, 200, 404)
    assert refused.status_code == 401
    create, get, not_found, search, unauthenticated = service.contexts
    assert create == RequestContext(
        request_id=created.headers["x-request-id"],
        tenant_id=tenant_id,
        tenant_name="acme",
        resource="Users",
        operation="POST",
        target_id=user_id,
        target_name="ada@acme.example",
        changes=Changes(name="ada@acme.example", created=True),
    )
    assert (get.resource, get.operation, get.target_id, get.error) == (
        "Users",
        "GET",
        user_id,
        None,
    )
    assert (not_found.target_id, not_found.error) == ("no-such-id", "User not found")
    assert (search.resource, search.operation, search.target_id) == ("Groups", "POST", None)
    assert unauthenticated.tenant_id is None
    assert [
        (e.operation, e.target_id, e.target_name, e.status, e.result, e.error) for e in entries
    ] == [
        ("POST /Users", user_id, "ada@acme.example", 201, "success", None),
        ("GET /Users", user_id, None, 200, "success", None),
        ("GET /Users", "no-such-id", None, 404, "client_error", "User not found"),
        ("POST /Groups", None, None, 200, "success", None),
    ]


def test_discovery_request_logs_its_endpoint_and_target(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        response = service.acme.get("/ResourceTypes/User")
    _, entries = log_entries(sqlite_url)

    assert response.status_code == 200
    assert [(e.operation, e.target_id, e.status) for e in entries] == [
        ("GET /ResourceTypes", "User", 200)
    ]


# Body limit --------------------------------------------------------------------------------------


def call_with_body(
    service: Running, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, bytes, int]:
    """POST /Users with ``chunks``, one per receive, on the app's event loop; the status, the
    body and how many chunks were taken."""
    pending = list(chunks)
    taken = 0

    async def receive() -> Message:
        nonlocal taken
        if not pending:
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}
        taken += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    answer = service.post_raw(headers, receive)
    return answer["status"], answer["body"], taken


def test_chunked_body_without_length_over_limit_is_413_before_handler_sees_it(
    sqlite_url: str,
) -> None:
    chunk = 1024
    body = orjson.dumps(entra_user("big@acme.example", title="x" * (MAX_BODY * 2)))
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    with running(sqlite_url) as service:
        headers = [
            (b"authorization", f"Bearer {service.acme.token}".encode()),
            (b"content-type", b"application/scim+json"),
            (b"transfer-encoding", b"chunked"),
        ]
        status, answer, taken = call_with_body(service, headers, chunks)

    assert status == 413
    error = orjson.loads(answer)
    assert error["status"] == "413"
    assert str(MAX_BODY) in error["detail"]
    # The chunk that went over the limit was the last one taken, and never reached the handler.
    assert taken == MAX_BODY // chunk + 1 < len(chunks)
    assert count_rows(sqlite_url, "users") == 0
    assert service.contexts[-1].error == f"the body exceeds maxPayloadSize ({MAX_BODY} bytes)"


def test_declared_length_over_limit_is_413_without_reading_the_body(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        headers = [
            (b"authorization", f"Bearer {service.acme.token}".encode()),
            (b"content-type", b"application/scim+json"),
            (b"content-length", str(MAX_BODY + 1).encode()),
        ]
        status, _, taken = call_with_body(service, headers, [b"x" * (MAX_BODY + 1)])

    assert (status, taken) == (413, 0)


def test_over_size_body_of_unauthenticated_request_is_401_first(sqlite_url: str) -> None:
    with running(sqlite_url) as service:
        headers = [(b"content-length", str(MAX_BODY + 1).encode())]
        status, _, taken = call_with_body(service, headers, [b"x" * (MAX_BODY + 1)])

    assert (status, taken) == (401, 0)


# The last-resort error ---------------------------------------------------------------------------


@pytest.mark.server_error
def test_route_raises_bare_500_counted_once_and_logged(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(resources, "get", broken)
    before = scim_requests("Users", "GET", "500")
    with running(sqlite_url) as service:
        response = service.acme.get("/Users/some-id")
    _, entries = log_entries(sqlite_url)

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "500",
        "detail": "internal server error",
    }
    assert re.fullmatch("[0-9a-f]{32}", response.headers["x-request-id"])
    assert scim_requests("Users", "GET", "500") == before + 1
    assert [(e.operation, e.target_id, e.status, e.error) for e in entries] == [
        ("GET /Users", "some-id", 500, "internal error: RuntimeError")
    ]
