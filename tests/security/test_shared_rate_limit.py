"""The per-tenant rate limit shared by API processes through a real Redis, failing open (with a
log line and a metric) when that Redis is away or hung; the broker's Redis client is bounded."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY
from pydantic import SecretStr
from starlette.testclient import TestClient

from api.app import create_app
from printsync import settings
from storage.settings import DatabaseSettings
from tests.conftest import REDIS_URL, TenantClient, create_tenant, make_app_settings, require
from workers.broker import build_broker
from workers.settings import WorkerSettings

BURST = 4


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
        available = True
    except redis.RedisError:
        available = False
    finally:
        client.close()
    require("Redis", available)
    return REDIS_URL


@contextmanager
def apps(database_url: str, count: int, **settings: Any) -> Iterator[list[TestClient]]:
    values = {"rate_limit_per_second": 0.01, "rate_limit_burst": BURST, **settings}
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            app = create_app(
                make_app_settings(**values), DatabaseSettings(database_url=database_url)
            )
            clients.append(stack.enter_context(TestClient(app, raise_server_exceptions=False)))
        yield clients


def unchecked() -> float:
    return REGISTRY.get_sample_value("printsync_scim_rate_limit_unchecked_total") or 0.0


@contextmanager
def hung_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def test_two_api_processes_share_each_tenant_limit_through_redis(
    sqlite_url: str, redis_url: str
) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    token = create_tenant(sqlite_url, name)
    with apps(sqlite_url, 2, rate_limit_redis_url=SecretStr(redis_url)) as (first, second):
        clients = [TenantClient(first, name, token), TenantClient(second, name, token)]
        answers = [clients[n % 2].get("/Users") for n in range(3 * BURST)]
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == BURST, statuses
    assert statuses[:BURST] == [200] * BURST
    refused = answers[BURST:]
    assert {answer.status_code for answer in refused} == {429}
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in refused)
    assert {answer.json()["status"] for answer in refused} == {"429"}
    # Each process on its own would have admitted BURST requests itself.
    with apps(sqlite_url, 2) as (first, second):
        local = [
            TenantClient(app, name, token).get("/Users").status_code
            for app in (first, second)
            for _ in range(BURST)
        ]
    assert local == [200] * (2 * BURST)


def test_a_bulk_request_charges_its_operations_to_the_shared_limit(
    sqlite_url: str, redis_url: str
) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    token = create_tenant(sqlite_url, name)
    operations = [{"method": "DELETE", "path": f"/Users/missing-{n}"} for n in range(BURST)]
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    }
    with apps(sqlite_url, 2, rate_limit_redis_url=SecretStr(redis_url)) as (first, second):
        admitted = TenantClient(first, name, token).post("/Bulk", json=bulk)
        after = TenantClient(second, name, token).get("/Users")
    # The Bulk request of BURST operations took the whole shared bucket: the other process
    # refuses the tenant's next request.
    assert admitted.status_code == 200
    assert after.status_code == 429


def test_tenants_keep_their_own_shared_buckets(sqlite_url: str, redis_url: str) -> None:
    names = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    tokens = [create_tenant(sqlite_url, name) for name in names]
    with apps(sqlite_url, 2, rate_limit_redis_url=SecretStr(redis_url)) as pair:
        noisy = TenantClient(pair[0], names[0], tokens[0])
        quiet = TenantClient(pair[1], names[1], tokens[1])
        assert [noisy.get("/Users").status_code for _ in range(BURST + 2)][-1] == 429
        assert [quiet.get("/Users").status_code for _ in range(BURST)] == [200] * BURST


def test_shared_limit_fails_open_when_redis_is_unreachable(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    token = create_tenant(sqlite_url, name)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = SecretStr(f"redis://127.0.0.1:{port}/0")
    before = unchecked()
    with (
        caplog.at_level(logging.WARNING, "printsync.api"),
        apps(sqlite_url, 1, rate_limit_redis_url=url) as (app,),
    ):
        client = TenantClient(app, name, token)
        statuses = [client.get("/Users").status_code for _ in range(3 * BURST)]
    assert statuses == [200] * (3 * BURST)
    assert unchecked() - before == 3 * BURST
    warnings = [r.getMessage() for r in caplog.records if "rate limit unchecked" in r.getMessage()]
    assert len(warnings) == 1, warnings


def test_shared_limit_fails_open_fast_when_redis_hangs(sqlite_url: str) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    token = create_tenant(sqlite_url, name)
    before = unchecked()
    with hung_server() as port:
        url = SecretStr(f"redis://127.0.0.1:{port}/0")
        with apps(
            sqlite_url, 1, rate_limit_redis_url=url, rate_limit_redis_timeout_seconds=0.2
        ) as (app,):
            client = TenantClient(app, name, token)
            started = time.monotonic()
            statuses = [client.get("/Users").status_code for _ in range(5)]
            elapsed = time.monotonic() - started
    assert statuses == [200] * 5
    assert elapsed < 3, elapsed  # one timeout, then unchecked until Redis is tried again
    assert unchecked() - before == 5


def test_redis_broker_calls_time_out_instead_of_stalling() -> None:
    with hung_server() as port:
        settings = WorkerSettings(
            broker_url=SecretStr(f"redis://127.0.0.1:{port}/0"), broker_timeout_seconds=0.3
        )
        broker = build_broker(settings)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            broker.client.ping()  # type: ignore[attr-defined]
        assert time.monotonic() - started < 3
        broker.close()


def test_shared_limit_uses_its_own_redis_or_a_redis_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PRINTSYNC_BROKER_URL", "PRINTSYNC_RATE_LIMIT_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)

    def shared(**environ: str) -> str | None:
        with monkeypatch.context() as patched:
            for name, value in environ.items():
                patched.setenv(name, value)
            url = settings.load().api().rate_limit_redis_url
        return None if url is None else url.get_secret_value()

    assert shared() is None
    assert shared(PRINTSYNC_BROKER_URL="amqp://mq:5672/") is None
    assert shared(PRINTSYNC_BROKER_URL="redis://broker:6379/0") == "redis://broker:6379/0"
    assert (
        shared(
            PRINTSYNC_BROKER_URL="redis://broker:6379/0",
            PRINTSYNC_RATE_LIMIT_REDIS_URL="rediss://limits:6380/1",
        )
        == "rediss://limits:6380/1"
    )
    with pytest.raises(settings.SettingsError) as refused:
        shared(PRINTSYNC_RATE_LIMIT_REDIS_URL="http://limits/")
    assert refused.value.lines[0].startswith("PRINTSYNC_RATE_LIMIT_REDIS_URL: must start with")
