"""Per-tenant rate limiting: token buckets, 429 with Retry-After, metrics, and two tenants.

HTTP tests run on SQLite: the limiter sits in front of storage and does not depend on the
database. Timing is never asserted; outcomes are counted. The HTTP tests use a refill rate so
slow (one token per 1000 s) that each bucket admits exactly its burst during a test.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api.app import create_app
from api.errors import TooManyRequests
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from printsync.settings import SettingsError, load
from storage.database import Database
from storage.settings import DatabaseSettings
from tests.api.test_users import entra_user
from tests.conftest import (
    Service,
    TenantClient,
    count_rows,
    create_tenant,
    make_app_settings,
    running,
)

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTRA_FLOOR = 25  # requests per second per tenant Entra ID needs (ENTRA.md section 6)
SLOW_RATE = 0.001  # one token per 1000 s: nothing refills while a test runs
BURST = 12


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(per_second: float, burst: int, clock: FakeClock) -> RateLimiter:
    counter = Counter(
        "test_rate_limited_total", "refusals", ["tenant"], registry=CollectorRegistry()
    )
    return RateLimiter(per_second, burst, clock=clock, counter=counter)


def retry_after(limit: RateLimiter, tenant: str) -> str:
    with pytest.raises(TooManyRequests) as refused:
        limit.admit(tenant)
    assert refused.value.status == 429
    return refused.value.headers["Retry-After"]


@pytest.fixture
def limited(sqlite_url: str) -> Iterator[Service]:
    with running(sqlite_url, rate_limit_per_second=SLOW_RATE, rate_limit_burst=BURST) as service:
        yield service


def refusals(http: TestClient, tenant: str) -> float:
    """printsync_scim_rate_limited_total{tenant} as /metrics shows it (0 before the first)."""
    return refusals_in(http.get("/metrics").text, tenant)


def refusals_in(exposition: str, tenant: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if (
                sample.name == "printsync_scim_rate_limited_total"
                and sample.labels.get("tenant") == tenant
            ):
                return float(sample.value)
    return 0.0


def assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "429"
    assert body["detail"]
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= math.ceil(1 / SLOW_RATE)


# The bucket -------------------------------------------------------------------------------------


def test_take_burst_exhausted_refuses_until_refilled() -> None:
    clock = FakeClock()
    limit = limiter(10, 3, clock)
    assert [limit.take("acme") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("acme") == pytest.approx(0.1)
    clock.advance(0.1)
    assert limit.take("acme") == 0.0
    assert limit.take("acme") > 0.0


def test_take_long_quiet_spell_refills_to_burst_only() -> None:
    clock = FakeClock()
    limit = limiter(10, 3, clock)
    for _ in range(3):
        limit.take("acme")
    clock.advance(3600)
    admitted = [limit.take("acme") == 0.0 for _ in range(10)]
    assert admitted.count(True) == 3


def test_admit_retry_after_is_whole_seconds_until_next_token() -> None:
    clock = FakeClock()
    limit = limiter(0.25, 1, clock)  # one token every 4 s
    limit.admit("acme")
    assert retry_after(limit, "acme") == "4"
    clock.advance(1.0)
    assert retry_after(limit, "acme") == "3"
    clock.advance(2.5)
    assert retry_after(limit, "acme") == "1"  # 0.5 s left, rounded up to a whole second
    clock.advance(0.5)
    limit.admit("acme")


def test_admit_refusal_counts_in_counter_per_tenant() -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    counter = Counter("test_refused_total", "refusals", ["tenant"], registry=registry)
    limit = RateLimiter(1, 2, clock=clock, counter=counter)
    for _ in range(5):
        with suppress(TooManyRequests):
            limit.admit("acme")
    limit.admit("globex")
    assert registry.get_sample_value("test_refused_total", {"tenant": "acme"}) == 3
    assert registry.get_sample_value("test_refused_total", {"tenant": "globex"}) is None


def test_take_tenants_have_separate_buckets() -> None:
    clock = FakeClock()
    limit = limiter(1, 5, clock)
    refused_acme = sum(limit.take("acme") > 0 for _ in range(50))
    refused_globex = sum(limit.take("globex") > 0 for _ in range(5))
    assert (refused_acme, refused_globex) == (45, 0)


@pytest.mark.parametrize(("per_second", "burst"), [(0, 5), (10, 0), (0, 0)])
def test_take_zero_rate_or_burst_disables_limit(per_second: float, burst: int) -> None:
    limit = limiter(per_second, burst, FakeClock())
    assert not limit.enabled
    assert all(limit.take("acme") == 0.0 for _ in range(10_000))


@pytest.mark.parametrize(("per_second", "burst"), [(-1, 5), (5, -1), (math.inf, 5), (math.nan, 5)])
def test_rate_limiter_invalid_rate_or_burst_raises(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="finite and not negative"):
        RateLimiter(per_second, burst)


def test_default_settings_sustained_entra_floor_never_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRINTSYNC_RATE_LIMIT_PER_SECOND", raising=False)
    monkeypatch.delenv("PRINTSYNC_RATE_LIMIT_BURST", raising=False)
    settings = ApiSettings()
    assert settings.rate_limit_per_second > ENTRA_FLOOR
    assert settings.rate_limit_burst >= ENTRA_FLOOR
    clock = FakeClock()
    limit = limiter(settings.rate_limit_per_second, settings.rate_limit_burst, clock)
    # Twice the floor at once, then twice the floor every second for a simulated minute.
    admitted = [limit.take("acme") == 0.0 for _ in range(2 * ENTRA_FLOOR)]
    for _ in range(60 * 2 * ENTRA_FLOOR):
        clock.advance(1 / (2 * ENTRA_FLOOR))
        admitted.append(limit.take("acme") == 0.0)
    assert all(admitted)


def test_settings_environment_sets_rate_and_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTSYNC_RATE_LIMIT_PER_SECOND", "40.5")
    monkeypatch.setenv("PRINTSYNC_RATE_LIMIT_BURST", "80")
    settings = load().api()
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (40.5, 80)
    monkeypatch.setenv("PRINTSYNC_RATE_LIMIT_PER_SECOND", "-1")
    with pytest.raises(SettingsError, match="PRINTSYNC_RATE_LIMIT_PER_SECOND: must be at least 0"):
        load()


# Over HTTP --------------------------------------------------------------------------------------


def test_flood_beyond_burst_gets_429_with_retry_after_counted_in_metrics(limited: Service) -> None:
    acme = limited.tenant()
    before = refusals(limited.http, acme.name)
    responses = [acme.get("/Users") for _ in range(BURST + 7)]
    assert [response.status_code for response in responses[:BURST]] == [200] * BURST
    for response in responses[BURST:]:
        assert_rate_limited(response)
    assert refusals(limited.http, acme.name) - before == 7


def test_flood_refused_creates_store_nothing(limited: Service) -> None:
    acme = limited.tenant()
    statuses = [
        acme.post("/Users", json=entra_user(f"u{index}@acme.example")).status_code
        for index in range(BURST + 10)
    ]
    assert statuses == [201] * BURST + [429] * 10
    assert count_rows(limited.database_url, "users") == BURST


def test_refused_request_reads_no_body_and_no_database(sqlite_url: str) -> None:
    with running(
        sqlite_url, rate_limit_per_second=SLOW_RATE, rate_limit_burst=BURST, auth_cache_seconds=60
    ) as service:
        refused_without_reads(service)


def refused_without_reads(service: Service) -> None:
    """With the token cached, a refused request opens no database connection at all."""
    acme = service.tenant()
    for _ in range(BURST):
        assert acme.get("/Users").status_code == 200
    db: Database = service.http.app.state.services.db  # type: ignore[attr-defined]
    reads: list[int] = []
    original: Callable[[], Any] = db.reader

    def counting() -> Any:
        reads.append(1)
        return original()

    db.reader = counting  # type: ignore[method-assign]
    # Malformed JSON would be a 400 if the body were read; the limit answers first.
    response = acme.post(
        "/Users", content=b"{not json", headers={"Content-Type": "application/scim+json"}
    )
    assert_rate_limited(response)
    assert_rate_limited(acme.get("/Users", params={"filter": 'userName eq "x"'}))
    assert reads == []


def test_wrong_token_flood_leaves_tenant_budget_untouched(limited: Service) -> None:
    acme = limited.tenant()
    intruder = TenantClient(limited.http, acme.name, "pst_" + "x" * 43)
    assert {intruder.get("/Users").status_code for _ in range(3 * BURST)} == {401}
    assert [acme.get("/Users").status_code for _ in range(BURST)] == [200] * BURST
    assert refusals(limited.http, acme.name) == 0


def test_flood_every_endpoint_rate_limited(limited: Service) -> None:
    acme = limited.tenant()
    user_id = acme.post("/Users", json=entra_user("ada@acme.example")).json()["id"]
    for _ in range(BURST - 1):
        acme.get("/ServiceProviderConfig")
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "x"}],
    }
    for response in (
        acme.get("/ServiceProviderConfig"),
        acme.get("/Schemas"),
        acme.get("/ResourceTypes"),
        acme.get(f"/Users/{user_id}"),
        acme.get("/Groups"),
        acme.post("/Users/.search", json={"schemas": [SEARCH]}),
        acme.post(
            "/Groups",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"},
        ),
        acme.put(f"/Users/{user_id}", json=entra_user("ada@acme.example")),
        acme.patch(f"/Users/{user_id}", json=patch),
        acme.delete(f"/Users/{user_id}"),
    ):
        assert_rate_limited(response)
    assert count_rows(limited.database_url, "groups") == 0
    assert count_rows(limited.database_url, "users") == 1


@pytest.mark.parametrize(("per_second", "burst"), [(0, BURST), (SLOW_RATE, 0)])
def test_rate_limit_zero_setting_admits_every_request(
    sqlite_url: str, per_second: float, burst: int
) -> None:
    with running(sqlite_url, rate_limit_per_second=per_second, rate_limit_burst=burst) as service:
        acme = service.tenant()
        assert {acme.get("/Users").status_code for _ in range(3 * BURST)} == {200}


def test_admit_retry_after_over_http_follows_bucket(limited: Service) -> None:
    acme = limited.tenant()
    clock = FakeClock()
    services = limited.http.app.state.services  # type: ignore[attr-defined]
    services.limiter = RateLimiter(0.5, 1, clock=clock)  # one token every 2 s
    assert acme.get("/Users").status_code == 200
    refused = acme.get("/Users")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    clock.advance(1.2)
    assert acme.get("/Users").headers["Retry-After"] == "1"
    clock.advance(0.8)
    assert acme.get("/Users").status_code == 200


# Two tenants at once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Flood:
    acme: list[httpx.Response]
    globex: list[httpx.Response]
    metrics_before: str
    metrics_after: str


@dataclass(frozen=True)
class Caller:
    base: str  # the tenant's SCIM base path
    token: str


async def flood(app: Any, acme: Caller, globex: Caller) -> Flood:
    """acme sends 8 x BURST mixed requests while globex sends its BURST, all concurrently,
    one of globex's after every eight of acme's."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

            def call(client: Caller, method: str, path: str, body: Any = None) -> Any:
                headers = {
                    "Authorization": f"Bearer {client.token}",
                    "Content-Type": "application/scim+json",
                }
                content = None if body is None else orjson.dumps(body)
                return http.request(method, client.base + path, headers=headers, content=content)

            def acme_request(index: int) -> Any:
                """A create, a list, a search and a discovery read, in turn."""
                kind = index % 4
                if kind == 0:
                    return call(acme, "POST", "/Users", entra_user(f"f{index}@acme.example"))
                if kind == 1:
                    return call(acme, "GET", "/Users")
                if kind == 2:
                    return call(acme, "POST", "/Users/.search", {"schemas": [SEARCH]})
                return call(acme, "GET", "/ServiceProviderConfig")

            acme_requests = [acme_request(index) for index in range(8 * BURST)]
            globex_requests = [
                call(globex, "POST", "/Users", entra_user(f"steady{index}@globex.example"))
                if index % 2 == 0
                else call(globex, "GET", "/Users")
                for index in range(BURST)
            ]
            order: list[tuple[str, Any]] = []
            for index, pending in enumerate(acme_requests):
                order.append(("acme", pending))
                if index % 8 == 7:
                    order.append(("globex", globex_requests[index // 8]))
            before = (await http.get("/metrics")).text
            results = await asyncio.gather(*(pending for _, pending in order))
            after = (await http.get("/metrics")).text
    pairs = list(zip((who for who, _ in order), results, strict=True))
    return Flood(
        [r for who, r in pairs if who == "acme"],
        [r for who, r in pairs if who == "globex"],
        before,
        after,
    )


def test_flood_one_tenant_other_tenant_all_requests_succeed(sqlite_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    acme_name, globex_name = f"acme-{suffix}", f"globex-{suffix}"
    app = create_app(
        make_app_settings(rate_limit_per_second=SLOW_RATE, rate_limit_burst=BURST),
        DatabaseSettings(database_url=sqlite_url),
    )
    acme = Caller(f"/scim/v2/{acme_name}", create_tenant(sqlite_url, acme_name))
    globex = Caller(f"/scim/v2/{globex_name}", create_tenant(sqlite_url, globex_name))

    result = asyncio.run(flood(app, acme, globex))

    # globex: every request succeeds while acme is refused.
    assert [r.status_code for r in result.globex] == [201, 200] * (BURST // 2)
    # acme: exactly its burst gets through; every other request is a proper 429.
    statuses = [response.status_code for response in result.acme]
    assert statuses.count(429) == 7 * BURST
    assert len(statuses) - statuses.count(429) == BURST
    assert set(statuses) <= {200, 201, 429}
    for response in result.acme:
        if response.status_code == 429:
            assert_rate_limited(response)
    created = sum(
        1
        for index, response in enumerate(result.acme)
        if index % 4 == 0 and response.status_code == 201
    )
    assert count_rows(sqlite_url, "users") == created + BURST // 2
    counted = [
        refusals_in(result.metrics_after, name) - refusals_in(result.metrics_before, name)
        for name in (acme_name, globex_name)
    ]
    assert counted == [7 * BURST, 0]
