"""The whole effects pipeline through SCIM requests: API commit -> outbox -> relay -> broker ->
actor -> ledger or (fake) PaperCut.

The embedded broker runs in this process; the Redis tests run a real ``printsync worker``
subprocess (Redis is required: skipped locally without it, failing in CI).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from click.testing import CliRunner
from starlette.testclient import TestClient

from api.app import create_app
from storage import clock, ledger, outbox, tenants
from storage.accounts import UserState, user_by_id
from storage.blocking import BlockingDatabase
from storage.scim.schema import PRINTSYNC_USER
from storage.settings import DatabaseSettings
from tests.builders import patch_body, print_user, replace
from tests.conftest import REDIS_URL, TenantClient, make_app_settings, reachable, require
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from tests.fakes.smtp import free_port
from tests.harness import Process, Start, eventually, scim_client, start_api
from tests.harness import processes as processes
from workers.pipeline import Pipeline
from workers.settings import PaperCutSettings, WorkerSettings

TOKEN_ENV = "TEST_PIPELINE_PAPERCUT_TOKEN"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
RABBITMQ_URL = os.environ.get("PRINTSYNC_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
FAST = {
    "lease_seconds": 2.0,
    "sweep_interval_seconds": 0.2,
    "min_backoff_ms": 100,
    "max_backoff_ms": 300,
    "max_retries": 6,
    "worker_threads": 4,
    "embedded_worker_threads": 4,
    "papercut": PaperCutSettings(
        timeout_seconds=3.0, retry_initial_wait_seconds=0.01, retry_budget_seconds=0.3
    ),
}


def settings(**overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {**FAST, "broker_url": None}
    values.update(overrides)
    return WorkerSettings(**values)


def set_active(active: bool) -> dict[str, Any]:
    return patch_body(replace("active", active))


def set_card(card: str) -> dict[str, Any]:
    return patch_body(replace(f"{PRINTSYNC_USER}:cardNumber", card))


@dataclass
class Probe:
    """Reads the database from the test's own thread."""

    url: str
    store: BlockingDatabase = field(init=False)

    def __post_init__(self) -> None:
        self.store = BlockingDatabase(self.url, pool_size=1)

    def create_tenant(self, connector: str = "ledger", **options: Any) -> tuple[int, str, str]:
        name = f"t-{uuid.uuid4().hex[:10]}"
        tenant, token = self.store.run(tenants.create, name, connector=connector, **options)
        return tenant.id, name, token

    def accounts(self, tenant_id: int) -> dict[str, ledger.Account]:
        found = self.store.run(ledger.list_accounts, tenant_id)
        return {account.username: account for account in found}

    def effects(self, tenant_id: int, state: str | None = None) -> list[outbox.Effect]:
        return self.store.run(outbox.list_effects, tenant_id, state=state, limit=10_000)

    def settled(self, tenant_id: int) -> bool:
        """No effect of the tenant is due and unfinished (scheduled purges are not due)."""
        return not [e for e in self.effects(tenant_id, "pending") if e.created_at <= outbox_now()]

    def describe(self, tenant_id: int) -> str:
        return repr(
            [(e.id, e.kind, e.state, e.attempts, e.last_error) for e in self.effects(tenant_id)]
        )

    def user(self, tenant_id: int, user_id: str) -> UserState | None:
        return self.store.run(user_by_id, tenant_id, user_id)

    def close(self) -> None:
        self.store.close()


def outbox_now() -> str:
    return clock.stamp()


@dataclass
class Site:
    """An API app on one database, optionally with an in-process pipeline."""

    url: str
    http: TestClient
    probe: Probe
    pipeline: Pipeline | None

    def tenant(self, **options: Any) -> tuple[TenantClient, int]:
        tenant_id, name, token = self.probe.create_tenant(**options)
        return TenantClient(self.http, name, token), tenant_id

    def wait_settled(self, tenant_id: int, timeout: float = 20.0) -> None:
        eventually(
            lambda: self.probe.settled(tenant_id),
            timeout,
            describe=lambda: self.probe.describe(tenant_id),
        )


@pytest.fixture
def probe(database_url: str) -> Iterator[Probe]:
    found = Probe(database_url)
    yield found
    found.close()


@pytest.fixture
def make_site(database_url: str, probe: Probe) -> Iterator[Callable[..., Site]]:
    """Start the API, with a pipeline built from ``settings`` (None: the API alone, like a
    process whose relay never ran)."""
    stack: list[tuple[TestClient, Pipeline | None]] = []

    def make(
        pipeline_settings: WorkerSettings | None = None, *, worker: bool | None = None
    ) -> Site:
        pipeline = None
        if pipeline_settings is not None:
            pipeline = Pipeline(pipeline_settings, database_url, environ=os.environ, worker=worker)
        app = create_app(
            make_app_settings(),
            DatabaseSettings(database_url=database_url),
            on_start=None if pipeline is None else pipeline.attach,
        )
        http = TestClient(app, raise_server_exceptions=False)
        http.__enter__()
        if pipeline is not None:
            pipeline.start()
        stack.append((http, pipeline))
        return Site(database_url, http, probe, pipeline)

    yield make
    for http, pipeline in reversed(stack):
        http.__exit__(None, None, None)
        if pipeline is not None:
            pipeline.stop()


def papercut_config(server: FakePaperCutServer) -> dict[str, Any]:
    return {
        "connector": "papercut",
        "connector_config": {"url": server.base_url, "token_env": TOKEN_ENV},
    }


@pytest.fixture
def papercut_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)


# Embedded broker --------------------------------------------------------------------------------


def test_scim_lifecycle_embedded_reaches_ledger(make_site: Callable[..., Site]) -> None:
    site = make_site(settings())
    client, tenant_id = site.tenant()

    user_id = client.post("/Users", json=print_user()).json()["id"]
    group = client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Staff", "members": [{"value": user_id}]},
    )
    assert group.status_code == 201
    created = eventually(lambda: site.probe.accounts(tenant_id).get("jdoe@example.com"))
    assert created is not None
    eventually(lambda: site.probe.accounts(tenant_id)["jdoe@example.com"].groups == ("Staff",))

    assert client.patch(f"/Users/{user_id}", json=set_card("555")).status_code == 200
    eventually(lambda: site.probe.accounts(tenant_id)["jdoe@example.com"].card_number == "555")
    assert client.patch(f"/Users/{user_id}", json=set_active(False)).status_code == 200
    disabled = eventually(
        lambda: [a for a in site.probe.accounts(tenant_id).values() if not a.enabled]
    )[0]
    assert client.delete(f"/Users/{user_id}").status_code == 204
    site.wait_settled(tenant_id)

    assert (created.enabled, created.card_number, created.office) == (True, "100200", "Berlin")
    assert (disabled.card_number, disabled.groups) == ("", ())
    kinds = {(e.kind, e.state) for e in site.probe.effects(tenant_id)}
    assert (outbox.ACCOUNT_DELETE, "done") in kinds
    assert (outbox.ACCOUNT_PURGE, "pending") in kinds


def test_scim_lifecycle_embedded_reaches_papercut(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings(retention_days=0.00002))  # purge about 2 s after deletion
    client, tenant_id = site.tenant(**papercut_config(papercut_server))

    user_id = client.post("/Users", json=print_user()).json()["id"]
    eventually(lambda: "jdoe" in papercut_server.users)
    client.patch(f"/Users/{user_id}", json=set_card("555"))
    eventually(lambda: papercut_server.users["jdoe"]["primary-card-number"] == "555")
    client.patch(f"/Users/{user_id}", json=set_active(False))
    # A revocation blocks printing in a call of its own, then clears the cards and the PIN.
    eventually(
        lambda: (
            (
                papercut_server.users["jdoe"]["disabled-print"],
                papercut_server.users["jdoe"]["primary-card-number"],
                papercut_server.users["jdoe"]["card-pin"],
            )
            == ("true", "", "")
        )
    )
    client.delete(f"/Users/{user_id}")
    eventually(lambda: papercut_server.deleted, timeout=15)

    assert papercut_server.deleted == [("jdoe", True)]
    site.wait_settled(tenant_id)
    assert site.probe.effects(tenant_id, "dead") == []


def test_crash_window_committed_never_dispatched_is_recovered_by_sweeper(
    make_site: Callable[..., Site],
) -> None:
    crashed = make_site(None)  # the API alone: its process "dies" before any relay runs
    client, tenant_id = crashed.tenant()
    for index in range(5):
        assert client.post("/Users", json=print_user(f"u{index}@example.com")).status_code == 201
    pending = crashed.probe.effects(tenant_id, "pending")
    assert len(pending) == 5 and all(e.dispatched_at is None for e in pending)
    assert crashed.probe.accounts(tenant_id) == {}

    make_site(settings())  # the next process: its relay sweeps what the first one left

    eventually(lambda: len(crashed.probe.accounts(tenant_id)) == 5)
    crashed.wait_settled(tenant_id)


def test_redelivered_message_creates_no_duplicate_account(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    assert site.pipeline is not None
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    papercut_server.set_hang(0.05)  # slow enough for the copies to overlap

    client.post("/Users", json=print_user())
    [effect] = eventually(
        lambda: site.probe.effects(tenant_id, "pending") or site.probe.effects(tenant_id, "done")
    )
    for _ in range(3):  # redeliveries while the first delivery is still running
        site.pipeline.actors.send(effect.kind, effect.id)
    site.wait_settled(tenant_id)
    papercut_server.set_hang(0)
    calls_after = papercut_server.calls["api.addNewInternalUser"]
    site.pipeline.actors.send(effect.kind, effect.id)  # a late redelivery
    stub: Any = site.pipeline.broker
    stub.join(site.pipeline.settings.queue_name, timeout=10_000, fail_fast=False)

    assert list(papercut_server.users) == ["jdoe"]
    assert papercut_server.calls["api.addNewInternalUser"] == calls_after
    assert [e.state for e in site.probe.effects(tenant_id)] == ["done"]


def test_papercut_outage_then_recovery_converges(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    papercut_server.set_outage(503)

    for index in range(3):
        client.post("/Users", json=print_user(f"u{index}@example.com", card=f"c{index}"))
    eventually(
        lambda: (
            all(e.attempts >= 1 for e in site.probe.effects(tenant_id, "pending"))
            and len(site.probe.effects(tenant_id)) == 3
        )
    )
    assert papercut_server.users == {}
    papercut_server.set_outage(None)
    site.wait_settled(tenant_id)

    assert {
        name: props["primary-card-number"] for name, props in papercut_server.users.items()
    } == {f"u{i}": f"c{i}" for i in range(3)}
    assert {e.state for e in site.probe.effects(tenant_id)} == {"done"}


@pytest.mark.parametrize("connector", ["ledger", "papercut"])
def test_concurrent_changes_of_one_user_end_in_final_state(
    make_site: Callable[..., Site],
    papercut_server: FakePaperCutServer,
    papercut_token: None,
    connector: str,
) -> None:
    site = make_site(settings(worker_threads=8))
    options = papercut_config(papercut_server) if connector == "papercut" else {}
    client, tenant_id = site.tenant(**options)
    papercut_server.set_hang(0.003)
    user_id = client.post("/Users", json=print_user()).json()["id"]

    def change(worker: int) -> None:
        for step in range(6):
            client.patch(f"/Users/{user_id}", json=set_card(f"{worker}-{step}"))
            client.patch(f"/Users/{user_id}", json=set_active(step % 2 == 1))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(change, range(4)))
    site.wait_settled(tenant_id, timeout=40)

    final = site.probe.user(tenant_id, user_id)
    assert final is not None
    if connector == "ledger":
        account = site.probe.accounts(tenant_id)["jdoe@example.com"]
        seen = (account.enabled, account.card_number)
    else:
        props = papercut_server.users["jdoe"]
        seen = (props["disabled-print"] == "false", props["primary-card-number"])
    assert seen == (final.active, final.card_number if final.active else "")
    assert site.probe.effects(tenant_id, "dead") == []


def test_cli_lists_accounts_and_effects_and_retries_dead(
    make_site: Callable[..., Site],
    papercut_server: FakePaperCutServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from printsync.cli import cli

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    site = make_site(settings())
    ledger_client, ledger_id = site.tenant()
    papercut_client, papercut_id = site.tenant(**papercut_config(papercut_server))
    ledger_client.post("/Users", json=print_user())
    papercut_client.post("/Users", json=print_user())
    [dead] = eventually(lambda: site.probe.effects(papercut_id, "dead"))
    site.wait_settled(ledger_id)
    runner = CliRunner()
    listed = runner.invoke(cli, ["accounts", "list", "--tenant", ledger_client.name, "--json"])
    dead_listed = runner.invoke(
        cli, ["effects", "list", "--tenant", papercut_client.name, "--state", "dead", "--json"]
    )
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)
    retried = runner.invoke(
        cli, ["effects", "retry", str(dead.id), "--tenant", papercut_client.name]
    )
    eventually(lambda: "jdoe" in papercut_server.users)
    none_dead = runner.invoke(cli, ["effects", "retry", "--dead", "--tenant", papercut_client.name])
    usage = runner.invoke(cli, ["effects", "retry", "--tenant", papercut_client.name])

    assert listed.exit_code == 0, listed.output
    [row] = orjson.loads(listed.stdout)
    assert (row["userName"], row["enabled"], row["cardNumber"], row["groups"]) == (
        "jdoe@example.com",
        True,
        "100200",
        [],
    )
    assert dead_listed.exit_code == 0, dead_listed.output
    [effect] = orjson.loads(dead_listed.stdout)
    assert (effect["id"], effect["state"], effect["kind"]) == (dead.id, "dead", "account.sync")
    assert TOKEN_ENV in effect["last_error"]
    assert retried.exit_code == 0 and "1 effect pending again" in retried.output
    assert none_dead.exit_code == 0 and "has no dead effects" in none_dead.output
    assert usage.exit_code == 2


# Real processes ---------------------------------------------------------------------------------


def process_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRINTSYNC_")}
    env.update(
        {
            "PRINTSYNC_DATABASE_URL": database_url,
            "PRINTSYNC_LEASE_SECONDS": "2",
            "PRINTSYNC_SWEEP_INTERVAL_SECONDS": "0.2",
            "PRINTSYNC_MIN_BACKOFF_MS": "100",
            "PRINTSYNC_MAX_BACKOFF_MS": "300",
            "PRINTSYNC_WORKER_PROCESSES": "1",
            "PRINTSYNC_WORKER_THREADS": "4",
            "PRINTSYNC_PAPERCUT_TIMEOUT_SECONDS": "3",
            "PRINTSYNC_PAPERCUT_RETRY_INITIAL_WAIT_SECONDS": "0.01",
            "PRINTSYNC_PAPERCUT_RETRY_BUDGET_SECONDS": "0.3",
            TOKEN_ENV: DEFAULT_TOKEN,
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def redis_queue() -> Iterator[str]:
    """A Redis queue name of this test's own; its keys are removed afterwards."""
    url = redis.Redis.from_url(REDIS_URL).connection_pool.connection_kwargs
    require("Redis", reachable(str(url.get("host", "127.0.0.1")), int(url.get("port", 6379))))
    queue = f"test-{uuid.uuid4().hex[:12]}"
    yield queue
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def serve(processes: Start, database_url: str, **extra: str) -> tuple[Process, str]:
    return start_api(processes, process_env(database_url, **extra))


@pytest.mark.slow
def test_crash_window_embedded_serve_killed_mid_effect_recovers_on_restart(
    processes: Start,
    sqlite_url: str,
    papercut_server: FakePaperCutServer,
    tmp_path: Path,
) -> None:
    probe = Probe(sqlite_url)
    tenant_id, name, token = probe.create_tenant(**papercut_config(papercut_server))
    papercut_server.set_hang(30)  # every PaperCut call hangs: the effects stay in flight
    first, base = serve(processes, sqlite_url)
    with scim_client(base, name, token) as client:
        for index in range(3):
            body = print_user(f"u{index}@example.com")
            assert client.post("/Users", json=body).status_code == 201
    eventually(lambda: len([e for e in probe.effects(tenant_id) if e.dispatched_at]) == 3)

    first.kill()  # the in-memory broker and the running attempts die with the process
    papercut_server.set_hang(0)
    assert papercut_server.users == {}
    serve(processes, sqlite_url)

    eventually(
        lambda: len(papercut_server.users) == 3,
        timeout=30,
        describe=lambda: probe.describe(tenant_id),
    )
    eventually(lambda: probe.settled(tenant_id))
    probe.close()


@pytest.mark.slow
def test_scim_lifecycle_redis_worker_reaches_ledger_and_papercut(
    make_site: Callable[..., Site],
    processes: Start,
    papercut_server: FakePaperCutServer,
    papercut_token: None,
    database_url: str,
    redis_queue: str,
) -> None:
    worker = processes(
        ["worker"],
        process_env(database_url, PRINTSYNC_BROKER_URL=REDIS_URL, PRINTSYNC_QUEUE_NAME=redis_queue),
    )
    site = make_site(settings(broker_url=REDIS_URL, queue_name=redis_queue), worker=False)
    assert site.pipeline is not None
    ledger_client, ledger_id = site.tenant()
    papercut_client, papercut_id = site.tenant(**papercut_config(papercut_server))

    ids = {}
    for client in (ledger_client, papercut_client):
        ids[client.name] = client.post("/Users", json=print_user()).json()["id"]
        client.post(
            "/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Staff",
                "members": [{"value": ids[client.name]}],
            },
        )
    eventually(
        lambda: site.probe.accounts(ledger_id).get("jdoe@example.com"), describe=worker.output
    )
    eventually(lambda: papercut_server.user_groups("jdoe") == {"Staff"}, describe=worker.output)
    for client in (ledger_client, papercut_client):
        client.patch(f"/Users/{ids[client.name]}", json=set_card("555"))
        client.patch(f"/Users/{ids[client.name]}", json=set_active(False))
    site.wait_settled(ledger_id)
    site.wait_settled(papercut_id)
    account = site.probe.accounts(ledger_id)["jdoe@example.com"]
    props = dict(papercut_server.users["jdoe"])
    for client in (ledger_client, papercut_client):
        client.delete(f"/Users/{ids[client.name]}")
    site.wait_settled(ledger_id)
    site.wait_settled(papercut_id)

    assert (account.enabled, account.card_number, account.groups) == (False, "", ())
    assert (props["disabled-print"], props["primary-card-number"]) == ("true", "")
    assert papercut_server.user_groups("jdoe") == set()
    for tenant_id in (ledger_id, papercut_id):
        assert {(e.kind, e.state) for e in site.probe.effects(tenant_id)} >= {
            (outbox.ACCOUNT_DELETE, "done"),
            (outbox.ACCOUNT_PURGE, "pending"),
        }

    # A redelivered message of a finished effect changes nothing.
    papercut_server.reset_calls()
    user_id = ids[papercut_client.name]
    [created] = [
        e
        for e in site.probe.effects(papercut_id)
        if e.effect_key == f"{outbox.ACCOUNT_SYNC}:{user_id}:v1"
    ]
    site.pipeline.actors.send(created.kind, created.id)
    site.pipeline.broker.join(redis_queue, timeout=10_000)  # the worker took it
    time.sleep(0.5)  # and ran it
    assert papercut_server.calls["api.addNewInternalUser"] == 0
    assert worker.popen.poll() is None, worker.output()


@pytest.mark.slow
def test_crash_window_broker_down_api_killed_before_dispatch_worker_recovers(
    processes: Start, sqlite_url: str, redis_queue: str
) -> None:
    probe = Probe(sqlite_url)
    tenant_id, name, token = probe.create_tenant()
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every send fails
    api, base = serve(
        processes, sqlite_url, PRINTSYNC_BROKER_URL=down, PRINTSYNC_QUEUE_NAME=redis_queue
    )
    with scim_client(base, name, token) as client:
        for index in range(3):
            assert (
                client.post("/Users", json=print_user(f"u{index}@example.com")).status_code == 201
            )
    time.sleep(0.5)  # the relay tries, fails and releases its claims
    api.kill()
    pending = probe.effects(tenant_id, "pending")
    assert len(pending) == 3 and all(e.dispatched_at is None for e in pending)

    worker = processes(
        ["worker"],
        process_env(sqlite_url, PRINTSYNC_BROKER_URL=REDIS_URL, PRINTSYNC_QUEUE_NAME=redis_queue),
    )

    eventually(lambda: len(probe.accounts(tenant_id)) == 3, timeout=30, describe=worker.output)
    eventually(lambda: probe.settled(tenant_id))
    probe.close()


@pytest.mark.slow
def test_redis_worker_killed_mid_effect_sweeper_redelivers_without_duplicate(
    processes: Start,
    papercut_server: FakePaperCutServer,
    papercut_token: None,
    sqlite_url: str,
    redis_queue: str,
) -> None:
    env = process_env(sqlite_url, PRINTSYNC_BROKER_URL=REDIS_URL, PRINTSYNC_QUEUE_NAME=redis_queue)
    first = processes(["worker"], env)
    probe = Probe(sqlite_url)
    tenant_id, name, token = probe.create_tenant(**papercut_config(papercut_server))
    papercut_server.set_hang(30)  # the first call of the first attempt never returns
    app_settings = settings(broker_url=REDIS_URL, queue_name=redis_queue)
    pipeline = Pipeline(app_settings, sqlite_url, environ=os.environ, worker=False)
    app = create_app(
        make_app_settings(), DatabaseSettings(database_url=sqlite_url), on_start=pipeline.attach
    )
    pipeline.start()
    try:
        with TestClient(app) as http:
            client = TenantClient(http, name, token)
            assert client.post("/Users", json=print_user()).status_code == 201
            eventually(
                lambda: papercut_server.calls["api.isUserExists"] >= 1,
                timeout=30,
                describe=first.output,
            )
            first.kill()  # mid-call: the Redis message stays unacknowledged
            papercut_server.set_hang(0)
            processes(["worker"], env)
            eventually(
                lambda: probe.settled(tenant_id),
                timeout=30,
                describe=lambda: probe.describe(tenant_id),
            )
    finally:
        pipeline.stop()

    assert list(papercut_server.users) == ["jdoe"]
    assert papercut_server.calls["api.addNewInternalUser"] == 1
    probe.close()


def test_rabbitmq_broker_round_trip_reaches_ledger(sqlite_url: str) -> None:
    host = httpx.URL(RABBITMQ_URL.replace("amqp://", "http://")).host
    require("RabbitMQ", reachable(host, 5672))
    queue = f"test-{uuid.uuid4().hex[:12]}"
    probe = Probe(sqlite_url)
    tenant_id, name, token = probe.create_tenant()
    pipeline = Pipeline(
        settings(broker_url=RABBITMQ_URL, queue_name=queue),
        sqlite_url,
        environ=os.environ,
        worker=True,
    )
    app = create_app(
        make_app_settings(), DatabaseSettings(database_url=sqlite_url), on_start=pipeline.attach
    )
    pipeline.start()
    try:
        with TestClient(app) as http:
            TenantClient(http, name, token).post("/Users", json=print_user())
            eventually(lambda: probe.accounts(tenant_id).get("jdoe@example.com"))
    finally:
        channel = pipeline.broker.channel  # type: ignore[attr-defined]
        for queue_name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(queue_name)
        pipeline.stop()
        probe.close()
