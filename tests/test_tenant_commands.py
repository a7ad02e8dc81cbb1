"""``printsync tenant create --papercut-username``, ``tenant update`` and ``tenant test``, through
the ``printsync`` command against a database and the fake PaperCut server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from printsync.cli import cli
from storage import downstream, migrate, tenants
from storage.blocking import BlockingDatabase
from tests.builders import papercut_tenant
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)

TOKEN_ENV = "TEST_TENANT_COMMANDS_PAPERCUT_TOKEN"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingDatabase]:
    url = f"sqlite:///{tmp_path / 'printsync.sqlite3'}"
    migrate.upgrade(url)
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", url)
    monkeypatch.setenv("PRINTSYNC_PAPERCUT_TIMEOUT_SECONDS", "0.5")
    store = BlockingDatabase(url)
    yield store
    store.close()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def create_papercut(url: str, *extra: str) -> Result:
    return invoke(*papercut_tenant("acme", url, TOKEN_ENV, *extra))


@pytest.fixture
def papercut_acme(
    database: BlockingDatabase,
    papercut_server: FakePaperCutServer,
    monkeypatch: pytest.MonkeyPatch,
) -> FakePaperCutServer:
    """The fake PaperCut server, with the tenant acme on it and the right token in its
    variable."""
    create_papercut(papercut_server.base_url)
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)
    return papercut_server


def test_tenant_create_papercut_username_is_stored_and_update_changes_it(
    database: BlockingDatabase,
) -> None:
    created = create_papercut("http://pc:9191", "--papercut-username", "upn")
    updated = invoke("tenant", "update", "acme", "--papercut-username", "local-part")
    stored = database.run(tenants.get, "acme")
    refused = invoke("tenant", "update", "acme", "--papercut-username", "email")
    nothing = invoke("tenant", "update", "acme")
    missing = invoke("tenant", "update", "nobody", "--papercut-username", "upn")

    assert created.exit_code == 0, created.output
    assert updated.exit_code == 0, updated.output
    assert stored.connector_config == {
        "url": "http://pc:9191",
        "token_env": TOKEN_ENV,
        "username": "local-part",
    }
    assert refused.exit_code == 2
    assert "'email' is not one of 'local-part', 'upn'" in refused.output
    assert nothing.exit_code == 2 and "give at least one setting to change" in nothing.output
    assert missing.exit_code == 1 and missing.output.strip() == "Error: no tenant named nobody"


def test_tenant_update_bad_url_prints_one_line_and_keeps_the_configuration(
    database: BlockingDatabase,
) -> None:
    create_papercut("http://pc:9191")

    result = invoke("tenant", "update", "acme", "--papercut-url", "ftp://pc")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: invalid papercut configuration: --papercut-url: "
        "the PaperCut URL must be an http:// or https:// URL with a host"
    ]
    assert database.run(tenants.get, "acme").connector_config["url"] == "http://pc:9191"


def test_tenant_test_right_token_passes_and_wrong_token_names_the_token(
    papercut_acme: FakePaperCutServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    passed = invoke("tenant", "test", "acme")
    monkeypatch.setenv(TOKEN_ENV, "a-wrong-token")
    refused = invoke("tenant", "test", "acme")
    as_json = invoke("tenant", "test", "acme", "--json")

    assert passed.exit_code == 0, passed.output
    assert passed.output.startswith("ok: PaperCut at http://127.0.0.1:")
    assert refused.exit_code == 1
    [line] = refused.output.splitlines()
    assert line.startswith("failed: PaperCut refused the auth token")
    assert "a-wrong-token" not in refused.output
    assert orjson.loads(as_json.output)["ok"] is False


def test_tenant_test_nothing_listening_names_the_url(
    database: BlockingDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    create_papercut(f"http://127.0.0.1:{port}")
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)

    result = invoke("tenant", "test", "acme")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"failed: connection refused at http://127.0.0.1:{port}/rpc/api/xmlrpc"
    ]


def test_tenant_test_slow_server_names_the_timeout(papercut_acme: FakePaperCutServer) -> None:
    papercut_acme.set_hang(2)

    result = invoke("tenant", "test", "acme")

    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.endswith("timed out after 0.5 s")


def test_tenant_test_ledger_is_ok_and_a_missing_token_variable_is_one_line(
    database: BlockingDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("tenant", "create", "books")
    create_papercut("http://127.0.0.1:9")
    monkeypatch.delenv(TOKEN_ENV, raising=False)

    ledger = invoke("tenant", "test", "books")
    unset = invoke("tenant", "test", "acme")

    assert ledger.exit_code == 0
    assert ledger.output.strip() == "ok: the built-in ledger answered (0 print accounts)"
    assert unset.exit_code == 1
    assert unset.output.splitlines() == [
        f"failed: the PaperCut token variable {TOKEN_ENV} is not set"
    ]


def test_tenant_update_resumes_a_paused_tenant(database: BlockingDatabase) -> None:
    create_papercut("http://pc:9191")
    tenant = database.run(tenants.get, "acme")
    database.run(downstream.pause, tenant.id, "refused", retry_seconds=3600)

    result = invoke("tenant", "update", "acme", "--papercut-url", "http://pc2:9191")

    assert result.exit_code == 0, result.output
    assert database.run(downstream.pause_of, tenant.id) is None


def test_tenant_update_managed_group_prefix_keeps_the_other_options(
    database: BlockingDatabase,
) -> None:
    create_papercut("http://pc:9191", "--papercut-username", "upn")

    result = invoke("tenant", "update", "acme", "--papercut-managed-group-prefix", "Print-")

    assert result.exit_code == 0, result.output
    assert database.run(tenants.get, "acme").connector_config == {
        "url": "http://pc:9191",
        "token_env": TOKEN_ENV,
        "username": "upn",
        "managed_group_prefix": "Print-",
    }
