"""``printsync serve`` in the embedded default, as an operator starts it: it says where it
listens, in which mode and where the data is; its two processes log alike; and its one
``/metrics`` carries every family that has something to show, the effects its pipeline child
applied and the database's gauges included."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_users import entra_user
from tests.fakes.smtp import free_port
from tests.harness import clean_environ, launch, python

#: How every log line of both processes starts in development: an ISO 8601 UTC time.
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \[")


@dataclass
class Served:
    port: int
    folder: Path
    log: Path
    env: dict[str, str]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def said(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = clean_environ()
    log = folder / "serve.log"
    process = launch(["serve", "--port", str(port)], env, log=log, cwd=folder)
    try:
        deadline = time.monotonic() + 60
        while "pipeline_started" not in log.read_text(errors="replace"):
            if process.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"printsync serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Served(port, folder, log, env)
    finally:
        process.stop()


def test_serve_says_where_it_listens_its_mode_and_where_the_data_is(served: Served) -> None:
    lines = served.said().splitlines()
    serving = [line for line in lines if " serving " in line]
    assert len(serving) == 1
    line = serving[0]
    assert f"listen=http://127.0.0.1:{served.port}" in line
    assert "mode=embedded" in line
    assert f"database={served.folder / 'var' / 'printsync.sqlite3'}" in line
    # Both processes (the API and its pipeline child) log alike, and nothing else is said.
    assert any("pipeline_started" in line for line in lines)
    assert lines and all(TIMESTAMP.match(line) for line in lines), lines
    assert not any("alembic" in line for line in lines)


def samples(served: Served) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(served.url("/metrics"), timeout=10).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(family.name, []).append((sample.labels, sample.value))
    return found


def test_one_metrics_endpoint_carries_every_family_with_samples(served: Served) -> None:
    created = python(
        ["-m", "printsync", "tenant", "create", "acme", "--json"],
        env=served.env,
        cwd=served.folder,
        check=True,
    )
    token = created.stdout.split('"token":"')[1].split('"')[0]
    answer = httpx.post(
        served.url("/scim/v2/acme/Users"),
        json=entra_user("ada@acme.example"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        timeout=10,
    )
    assert answer.status_code == 201

    deadline = time.monotonic() + 30
    while True:
        found = samples(served)
        applied = [
            value
            for labels, value in found.get("printsync_effects", [])
            if labels.get("outcome") == "succeeded"
        ]
        if (applied and found.get("printsync_cycle_requests")) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert applied == [1.0], found.get("printsync_effects")
    for family in (
        "printsync_effect_duration_seconds",
        "printsync_outbox_pending",
        "printsync_outbox_oldest_pending_age_seconds",
        "printsync_effects_dead",
        "printsync_build_info",
        "printsync_cycle_requests",
        "printsync_cycle_duration_seconds",
    ):
        assert found.get(family), family
    requests = found["printsync_scim_requests"]
    assert (
        {"resource": "Users", "method": "POST", "status": "201", "tenant": "acme"},
        1.0,
    ) in requests
    health = {labels["state"]: value for labels, value in found["printsync_tenant_health"]}
    assert health == {"healthy": 1.0, "degraded": 0.0, "failing": 0.0}
    (build,) = found["printsync_build_info"]
    assert build[1] == 1.0 and build[0]["version"]


def test_serve_on_a_port_in_use_says_so_in_the_same_format(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = python(
            ["-m", "printsync", "serve", "--port", str(port)], env=clean_environ(), cwd=tmp_path
        )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert any("address already in use" in line for line in lines), done.stderr
    assert all(TIMESTAMP.match(line) for line in lines), done.stderr
    assert "Traceback" not in done.stderr
