"""The console's "Test connection": the page records a request (the API never calls the print
system), a worker runs the ``connector.test`` effect, and the page shows what it found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import downstream, outbox, tenants
from storage.blocking import BlockingDatabase
from tests.console.conftest import Console
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from workers.connectors.registry import ConnectorRegistry
from workers.effects import Effects
from workers.settings import WorkerSettings

TOKEN_ENV = "TEST_CONSOLE_PAPERCUT_TOKEN"


@pytest.fixture
def store(signed_in: Console) -> Iterator[BlockingDatabase]:
    found = BlockingDatabase(signed_in.service.database_url)
    yield found
    found.close()


def run_tests(store: BlockingDatabase, tenant_id: int, token: str) -> list[outbox.Effect]:
    """What a worker with ``token`` in its environment does with the pending tests."""
    settings = WorkerSettings()
    effects = Effects(store, ConnectorRegistry(store, settings, {TOKEN_ENV: token}), settings)
    pending = store.run(outbox.list_effects, tenant_id, state="pending")
    for effect in pending:
        effects.run(effect.id)
    return pending


def test_test_connection_is_run_by_a_worker_and_shown_on_the_tenant_page(
    signed_in: Console, store: BlockingDatabase, papercut_server: FakePaperCutServer
) -> None:
    signed_in.service.tenant(
        "acme",
        connector="papercut",
        connector_config={"url": papercut_server.base_url, "token_env": TOKEN_ENV},
    )
    tenant = store.run(tenants.get, "acme")
    page = "/console/tenants/acme"

    asked = signed_in.post(f"{page}/test-connection", page=page)
    waiting = signed_in.http.get(page).text
    calls_before_worker = sum(papercut_server.calls.values())
    [refused] = run_tests(store, tenant.id, "a-wrong-token")
    failed = signed_in.http.get(page).text
    signed_in.post(f"{page}/test-connection", page=page)
    [passed] = run_tests(store, tenant.id, DEFAULT_TOKEN)
    ok = signed_in.http.get(page).text

    assert asked.status_code == 303
    assert "waiting for a worker" in waiting
    assert calls_before_worker == 0, "the API never calls the print system"
    assert (refused.kind, passed.kind) == (outbox.CONNECTOR_TEST, outbox.CONNECTOR_TEST)
    assert "Failed" in failed and "PaperCut refused the auth token" in failed
    assert "a-wrong-token" not in failed
    assert "OK" in ok and "answered with the auth token" in ok
    assert [e.state for e in store.run(outbox.list_effects, tenant.id)] == ["done", "done"]


def test_passing_test_resumes_a_paused_tenant(signed_in: Console, store: BlockingDatabase) -> None:
    signed_in.service.tenant("books")
    tenant = store.run(tenants.get, "books")
    store.run(downstream.pause, tenant.id, "refused", retry_seconds=3600)

    signed_in.post("/console/tenants/books/test-connection", page="/console/tenants/books")
    run_tests(store, tenant.id, DEFAULT_TOKEN)

    assert store.run(downstream.pause_of, tenant.id) is None
    check = store.run(downstream.check_of, tenant.id)
    assert check is not None and check.ok is True
    assert check.message == "the built-in ledger answered (0 print accounts)"
