"""Groups as PaperCut has them, and drift repair, through the user's path: SCIM requests into a
running pipeline, drift made behind printsync's back in the print system, then
``printsync reconcile`` (and the periodic schedule) on the command line."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from api.app import create_app
from printsync.cli import cli
from storage import ledger, outbox
from storage.settings import DatabaseSettings
from tests.builders import print_user
from tests.conftest import TenantClient, make_app_settings
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from tests.harness import eventually
from tests.workers.test_pipeline import (
    GROUP,
    TOKEN_ENV,
    Probe,
    Site,
    papercut_config,
    set_active,
    set_card,
    settings,
)
from workers import operations, reconcile
from workers.effects import Effects
from workers.pipeline import Pipeline
from workers.settings import WorkerSettings


@pytest.fixture
def site_factory(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Site]]:
    """The API and a running pipeline on one database; the CLI reads the same database and
    the PaperCut token variable."""
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)
    # No periodic reconcile behind a test's back, unless the test asks for one.
    monkeypatch.setattr(operations, "reconcile_check_seconds", lambda interval: 3600.0)
    probe = Probe(database_url)
    started: list[tuple[TestClient, Pipeline]] = []

    def make(pipeline_settings: WorkerSettings | None = None) -> Site:
        pipeline = Pipeline(pipeline_settings or settings(), database_url, environ=os.environ)
        app = create_app(
            make_app_settings(),
            DatabaseSettings(database_url=database_url),
            on_start=pipeline.attach,
        )
        http = TestClient(app, raise_server_exceptions=False)
        http.__enter__()
        pipeline.start()
        started.append((http, pipeline))
        return Site(database_url, http, probe, pipeline)

    yield make
    for http, pipeline in reversed(started):
        http.__exit__(None, None, None)
        pipeline.stop()
    probe.close()


def person(name: str, card: str) -> dict[str, Any]:
    return print_user(
        name,
        card=card,
        displayName=f"{name.title()} Example",
        emails=[{"value": f"{name}@example.com", "type": "work", "primary": True}],
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def report_of(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    value: dict[str, Any] = orjson.loads(result.stdout)
    return value


def found_of(report: dict[str, Any]) -> dict[str, list[str]]:
    return {row["user_name"]: row["drift"] for row in report["found"]}


def create_users(client: TenantClient, *names: str) -> dict[str, str]:
    ids = {}
    for index, name in enumerate(names):
        created = client.post("/Users", json=person(name, f"10{index}"))
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    return ids


def create_group(client: TenantClient, name: str, *member_ids: str) -> str:
    members = [{"value": member} for member in member_ids]
    created = client.post(
        "/Groups", json={"schemas": [GROUP], "displayName": name, "members": members}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# PaperCut --------------------------------------------------------------------------------------


def test_reconcile_repairs_papercut_drift_and_dry_run_changes_nothing(
    site_factory: Callable[..., Site], papercut_server: FakePaperCutServer
) -> None:
    papercut_server.set_directory("Print Staff", "Other Group")
    papercut_server.add_group("Other Group")
    papercut_server.add_user("zed", full_name="Not Managed", email="zed@example.com")
    papercut_server.add_group("Zed Only", ("zed",))
    site = site_factory()
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    ids = create_users(client, "ann", "bob", "cy")
    create_group(client, "Print Staff", ids["ann"], ids["bob"])
    # bob's account exists before he is disabled: a user first seen inactive gets none
    site.wait_settled(tenant_id)
    assert client.patch(f"/Users/{ids['bob']}", json=set_active(False)).status_code == 200
    site.wait_settled(tenant_id)
    assert papercut_server.user_groups("ann") == {"Print Staff"}
    assert papercut_server.users["bob"]["disabled-print"] == "true"
    in_line = copy.deepcopy(papercut_server.users)
    with papercut_server.lock:  # drift behind printsync's back
        papercut_server.users["bob"]["disabled-print"] = "false"
        papercut_server.users["ann"]["full-name"] = "Someone Else"
        papercut_server.users["ann"]["email"] = "someone@example.com"
        papercut_server.users["ann"]["primary-card-number"] = "999"
        papercut_server.groups["Other Group"].add("ann")
        del papercut_server.users["cy"]
        papercut_server.users["zed"]["full-name"] = "Still Not Managed"
    drifted = copy.deepcopy((papercut_server.users, papercut_server.groups))
    papercut_server.reset_calls()

    dry = report_of(invoke("reconcile", "--tenant", client.name, "--dry-run", "--json"))

    assert found_of(dry) == {
        "ann": ["full name", "e-mail", "card number", "in group Other Group"],
        "bob": ["printing enabled"],
        "cy": ["account missing"],
    }
    assert (dry["dry_run"], dry["managed"], dry["drifted"]) == (True, 3, 3)
    assert (papercut_server.users, papercut_server.groups) == drifted
    assert [params for method, params in papercut_server.params if "zed" in params] == []

    repaired = report_of(invoke("reconcile", "--tenant", client.name, "--json"))

    assert found_of(repaired) == found_of(dry)
    assert {row["result"] for row in repaired["found"]} == {"repaired"}
    site.wait_settled(tenant_id)
    for name in ("ann", "bob"):
        assert papercut_server.users[name] == in_line[name]
    cy = papercut_server.users["cy"]
    assert (cy["full-name"], cy["primary-card-number"]) == ("Cy Example", "102")
    assert papercut_server.groups["Other Group"] == set()
    assert papercut_server.groups["Print Staff"] == {"ann"}
    assert papercut_server.users["zed"]["full-name"] == "Still Not Managed"
    assert papercut_server.groups["Zed Only"] == {"zed"}
    assert [params for method, params in papercut_server.params if "zed" in params] == []
    assert site.probe.effects(tenant_id, "dead") == []
    again = report_of(invoke("reconcile", "--tenant", client.name, "--json"))
    assert (again["managed"], again["found"]) == (3, [])


def test_reconcile_text_output_is_a_table_with_what_it_found(
    site_factory: Callable[..., Site], papercut_server: FakePaperCutServer
) -> None:
    site = site_factory()
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    create_users(client, "ann")
    site.wait_settled(tenant_id)
    papercut_server.users["ann"]["disabled-print"] = "true"

    dry = invoke("reconcile", "--tenant", client.name, "--dry-run")
    repaired = invoke("reconcile", "--tenant", client.name)
    clean = invoke("reconcile", "--tenant", client.name)
    unknown = invoke("reconcile", "--tenant", "no-such-tenant")

    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0] == f"Tenant {client.name}: 1 accounts managed, 1 drifted"
    assert lines[1].split() == ["USERNAME", "DRIFT", "RESULT"]
    assert lines[2].split() == ["ann", "printing", "disabled", "not", "repaired", "(dry", "run)"]
    assert lines[1].index("DRIFT") == lines[2].index("printing")
    assert lines[-1] == "Dry run: nothing was changed."
    assert repaired.exit_code == 0, repaired.output
    assert "repaired" in repaired.stdout.splitlines()[2]
    assert papercut_server.users["ann"]["disabled-print"] == "false"
    assert clean.exit_code == 0 and "nothing drifted" in clean.stdout
    assert unknown.exit_code == 1 and "no tenant named no-such-tenant" in unknown.output


def test_directory_group_gets_its_members_and_entra_only_group_is_skipped(
    site_factory: Callable[..., Site], papercut_server: FakePaperCutServer
) -> None:
    papercut_server.set_directory("Print Staff")
    site = site_factory()
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    ids = create_users(client, "ann", "bob")

    create_group(client, "Print Staff", ids["ann"], ids["bob"])
    create_group(client, "Entra Only", ids["ann"])
    site.wait_settled(tenant_id)

    assert papercut_server.groups == {"Print Staff": {"ann", "bob"}}
    assert papercut_server.calls["api.addNewGroup"] == 2
    assert papercut_server.calls["api.getTaskStatus"] >= 2
    assert site.probe.effects(tenant_id, "dead") == []
    status = report_of(invoke("tenant", "status", client.name, "--json"))
    [skipped] = status["skipped_groups"]
    assert skipped["display_name"] == "Entra Only"
    assert "not in PaperCut's user directory source" in skipped["reason"]
    text = invoke("tenant", "status", client.name)
    assert "Skipped groups (1, not in the print system):" in text.stdout
    assert "Entra Only" in text.stdout
    log = report_of_list(invoke("log", "--tenant", client.name, "--user", "Entra Only", "--json"))
    [effect] = [entry for entry in log if entry["operation"] == outbox.GROUP_SYNC]
    assert effect["result"] == "success"
    assert "directory source" in effect["changes"]["skipped"]
    words = invoke("log", "--tenant", client.name, "--user", "Entra Only")
    assert "print group skipped" in words.stdout
    # A member's later change neither retries the group nor fails: the membership is left out.
    papercut_server.reset_calls()
    assert client.patch(f"/Users/{ids['ann']}", json=set_card("777")).status_code == 200
    site.wait_settled(tenant_id)
    assert papercut_server.calls["api.addNewGroup"] == 0
    assert site.probe.effects(tenant_id, "dead") == []
    # Once the directory source has the group, the next reconcile adds it with its member.
    papercut_server.set_directory("Print Staff", "Entra Only")
    assert report_of(invoke("reconcile", "--tenant", client.name, "--json"))["found"] == []
    assert papercut_server.groups["Entra Only"] == {"ann"}
    assert report_of(invoke("tenant", "status", client.name, "--json"))["skipped_groups"] == []


def report_of_list(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    value: list[dict[str, Any]] = orjson.loads(result.stdout)
    return value


def test_group_papercut_adds_slowly_is_looked_at_again_without_a_failed_attempt(
    site_factory: Callable[..., Site], papercut_server: FakePaperCutServer
) -> None:
    papercut_server.set_directory("Slow Group", task_seconds=4.0)
    site = site_factory()
    client, tenant_id = site.tenant(**papercut_config(papercut_server))
    ids = create_users(client, "ann")

    group_id = create_group(client, "Slow Group", ids["ann"])

    eventually(lambda: papercut_server.groups.get("Slow Group") == {"ann"}, timeout=30)
    site.wait_settled(tenant_id)
    syncs = [e for e in site.probe.effects(tenant_id) if e.kind == outbox.GROUP_SYNC]
    assert {e.subject_id for e in syncs} == {group_id}
    assert len(syncs) == 2
    assert {(e.state, e.attempts) for e in syncs} == {("done", 0)}
    assert [e.payload.get("waits") for e in sorted(syncs, key=lambda e: e.id)] == [None, 1]


# The ledger, and the periodic schedule ----------------------------------------------------------


def test_reconcile_repairs_ledger_drift(site_factory: Callable[..., Site]) -> None:
    site = site_factory()
    client, tenant_id = site.tenant()
    ids = create_users(client, "ann", "bob")
    create_group(client, "Staff", ids["ann"])
    site.wait_settled(tenant_id)
    store = site.probe.store
    store.run(
        ledger.ensure_account,
        tenant_id,
        username="ann",
        full_name="Someone Else",
        email="ann@example.com",
        department="",
        office="Berlin",
        card_number="100",
        secondary_card_number="",
        enabled=False,
        groups=("Wrong",),
    )
    store.run(ledger.delete, tenant_id, "bob")

    dry = report_of(invoke("reconcile", "--tenant", client.name, "--dry-run", "--json"))
    repaired = report_of(invoke("reconcile", "--tenant", client.name, "--json"))

    assert found_of(dry) == {
        "ann": ["printing disabled", "full name", "missing from group Staff", "in group Wrong"],
        "bob": ["account missing"],
    }
    assert {row["result"] for row in repaired["found"]} == {"repaired"}
    accounts = site.probe.accounts(tenant_id)
    assert (accounts["ann"].full_name, accounts["ann"].enabled) == ("Ann Example", True)
    assert accounts["ann"].groups == ("Staff",)
    assert accounts["bob"].card_number == "101"


def test_periodic_reconcile_repairs_drift_without_a_command(
    site_factory: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = site_factory()
    client, tenant_id = site.tenant()
    create_users(client, "ann")
    site.wait_settled(tenant_id)
    site.probe.store.run(ledger.revoke, tenant_id, "ann")  # behind printsync's back

    # A worker side that looks at the schedule often: it records this interval's reconcile.
    monkeypatch.setattr(operations, "reconcile_check_seconds", lambda interval: 0.2)
    site_factory(settings(reconcile_interval_seconds=60))
    eventually(lambda: site.probe.accounts(tenant_id)["ann"].enabled, timeout=30)
    site.wait_settled(tenant_id)

    kinds = {(e.kind, e.state) for e in site.probe.effects(tenant_id)}
    assert (outbox.TENANT_RECONCILE, "done") in kinds
    assert (outbox.ACCOUNT_REPAIR, "done") in kinds
    log = report_of_list(invoke("log", "--tenant", client.name, "--user", "ann", "--json"))
    [repair] = [entry for entry in log if entry["operation"] == outbox.ACCOUNT_REPAIR]
    assert repair["changes"]["drift"] == ["printing disabled", "card number"]
    words = invoke("log", "--tenant", client.name).stdout
    assert "drift repaired (printing disabled, card number)" in words
    assert "print system compared: 1 account, 1 drifted" in words


def test_scan_tells_progress_once_per_managed_account_compared(
    site_factory: Callable[..., Site], database_url: str
) -> None:
    site = site_factory()
    client, tenant_id = site.tenant()
    create_users(client, "ann", "bob", "cy")
    site.wait_settled(tenant_id)
    site.probe.store.run(ledger.delete, tenant_id, "cy")
    effects = Effects.from_settings(settings(), database_url, environ={})
    told: list[tuple[int, int]] = []
    try:
        connector = effects.connectors.connector_for(tenant_id)
        found = reconcile.scan(effects, tenant_id, connector, lambda *at: told.append(at))
    finally:
        effects.close()

    assert told == [(1, 3), (2, 3)]  # cy's account is missing: nothing of it to read
    assert [(item.drift.username, item.drift.problems) for item in found.found] == [
        ("cy", ("account missing",))
    ]
