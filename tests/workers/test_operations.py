"""Operations end to end: traffic in, then what ops see — /metrics on the API and the worker
endpoint, tenant health moving from healthy to failing and back, and the provisioning log
answering "what happened to this user"."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from storage import health, outbox
from storage.health import HealthPolicy
from tests.builders import patch_body, print_user
from tests.fakes.papercut import FakePaperCutServer
from tests.fakes.papercut import papercut_server_fixture as papercut_server_fixture
from tests.fakes.smtp import free_port
from tests.harness import eventually, printsync
from tests.workers.test_pipeline import (
    Probe,
    Site,
    papercut_config,
    papercut_token,  # noqa: F401
    set_active,
    settings,
)
from tests.workers.test_pipeline import make_site as make_site
from tests.workers.test_pipeline import probe as probe
from workers import operations

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape_worker(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


@pytest.fixture
def quick_gauges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "GAUGE_REFRESH_SECONDS", 0.1)


@pytest.mark.usefixtures("papercut_token", "quick_gauges")
def test_operations_traffic_and_failing_print_system_show_in_metrics_and_health(
    make_site: Callable[..., Site],
    papercut_server: FakePaperCutServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    site = make_site(settings(max_retries=1, worker_metrics_port=port))
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    before = samples(site.http.get("/metrics").text)

    # Successes and SCIM errors.
    created = [
        client.post("/Users", json=print_user(f"u{n}@example.com", card=f"{n}00")) for n in range(5)
    ]
    assert [r.status_code for r in created] == [201] * 5
    site.wait_settled(tenant_id)
    assert client.post("/Users", json=print_user("u0@example.com")).status_code == 409
    assert client.get("/Users", params={"filter": "userName zz 1"}).status_code == 400

    policy = HealthPolicy(min_effects=1, min_requests=1)
    state = site.probe.store.run(health.read_all, policy)
    assert [h.state for h in state if h.tenant == client.name] == ["healthy"]

    # The print system fails: every change retries, then dies.
    papercut_server.set_outage(503)
    for n in range(5):
        assert (
            client.patch(f"/Users/{created[n].json()['id']}", json=set_active(False)).status_code
            == 200
        )
    eventually(
        lambda: len(site.probe.effects(tenant_id, "dead")) >= 5,
        timeout=30,
        describe=lambda: site.probe.describe(tenant_id),
    )

    after = samples(site.http.get("/metrics").text)
    tenant = client.name
    requests = "printsync_scim_requests_total"
    for status in ("201", "409"):
        labels = {"resource": "Users", "method": "POST", "status": status, "tenant": tenant}
        assert value(after, requests, **labels) > value(before, requests, **labels)
    labels = {"resource": "Users", "method": "GET", "status": "400", "tenant": tenant}
    assert value(after, requests, **labels) > value(before, requests, **labels)
    duration = {"resource": "Users", "method": "POST", "tenant": tenant}
    assert value(after, "printsync_scim_request_duration_seconds_count", **duration) >= 6
    for outcome in ("succeeded", "dead"):
        effects = {"kind": "account.sync", "connector": "papercut", "outcome": outcome}
        assert value(after, "printsync_effects_total", **effects) >= 5, outcome
    transient_errors = sum(
        count
        for (name, labels), count in after.items()
        if name == "printsync_downstream_errors_total"
        and ("connector", "papercut") in labels
        and ("error", "transient") in labels
    )
    assert transient_errors > 0

    def worker_shows_dead() -> Samples | None:
        scraped = scrape_worker(port)
        return (
            scraped if value(scraped, "printsync_effects_dead", kind="account.sync") >= 5 else None
        )

    worker = eventually(
        worker_shows_dead,
        timeout=10,
    )
    assert ("printsync_outbox_pending", frozenset({("kind", "account.sync")})) in worker
    assert ("printsync_outbox_oldest_pending_age_seconds", frozenset()) in worker

    failing = site.probe.store.run(health.read_all, policy)
    verdict = next(h for h in failing if h.tenant == client.name)
    assert verdict.state == "failing"
    assert verdict.reason

    # Recovery: the print system is back and the dead effects are retried.
    papercut_server.set_outage(None)
    retry = ["effects", "retry", "--dead", "--tenant", client.name]
    result = printsync(site.url, retry, monkeypatch)
    assert result.exit_code == 0, result.output
    site.wait_settled(tenant_id, timeout=30)
    assert site.probe.effects(tenant_id, "dead") == []
    healed = site.probe.store.run(
        health.read_all, HealthPolicy(min_effects=1, min_requests=1, window_seconds=600)
    )
    verdict = next(h for h in healed if h.tenant == client.name)
    assert verdict.state != "failing", verdict.reason


def test_provisioning_log_tells_what_happened_to_a_user(
    make_site: Callable[..., Site],
    probe: Probe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = make_site(settings())
    client, tenant_id = site.tenant()
    user = client.post("/Users", json=print_user("story@example.com")).json()
    assert (
        client.patch(
            f"/Users/{user['id']}",
            json=patch_body({"op": "replace", "path": "displayName", "value": "Story Teller"}),
        ).status_code
        == 200
    )
    assert client.patch(f"/Users/{user['id']}", json=set_active(False)).status_code == 200
    assert client.delete(f"/Users/{user['id']}").status_code == 204
    site.wait_settled(tenant_id)

    def history() -> list[dict[str, Any]] | None:
        result = printsync(
            site.url,
            ["log", "--tenant", client.name, "--user", "STORY@example.com", "--json"],
            monkeypatch,
        )
        assert result.exit_code == 0, result.output
        entries: list[dict[str, Any]] = orjson.loads(result.stdout)
        operations_seen = {entry["operation"] for entry in entries}
        wanted = {"POST /Users", "PATCH /Users", "DELETE /Users", "account.sync"}
        return entries if wanted <= operations_seen else None

    entries = eventually(history, timeout=10)
    scim = [e for e in entries if e["operation"].endswith("/Users")]
    assert [e["operation"] for e in reversed(scim)] == [
        "POST /Users",
        "PATCH /Users",
        "PATCH /Users",
        "DELETE /Users",
    ]
    assert all(e["result"] == "success" for e in scim)
    assert {e["target_id"] for e in scim} == {user["id"]}
    assert any(e["operation"] == "account.sync" and e["result"] == "success" for e in entries)
    assert outbox.ACCOUNT_DELETE in {e["operation"] for e in entries}
