"""Groups as PaperCut has them, and drift repair, through the user's path: SCIM requests into a
running pipeline, drift made behind printsync's back in the print system, then
``printsync reconcile`` (and the periodic schedule) on the command line."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from api.app import create_app
from printsync.cli import cli
from storage import ledger, outbox, provisioning_log
from storage import reconcile as records
from storage.database import Connection
from storage.provisioning_log import story
from storage.settings import DatabaseSettings
from storage.sql import Dialect, compile_text
from tests.builders import print_user
from tests.conftest import TenantClient, make_app_settings
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from tests.harness import eventually
from tests.workers import test_effects as effects_tests
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
from workers.connectors.interface import Drift
from workers.connectors.ledger import LedgerConnector
from workers.effects import Effects
from workers.errors import TransientError
from workers.pipeline import Pipeline
from workers.settings import WorkerSettings

# The effect tests' harness, under its own name here.
make_harness = effects_tests.make_harness


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


# A tenant larger than a page --------------------------------------------------------------------

#: Created in this order, so the pages (in the order of the users' rows) are not by name.
PAGED = ("eve", "dan", "cy", "bob", "ann")


def paged_harness(make_harness: Callable[..., effects_tests.Harness]) -> effects_tests.Harness:
    """A ledger tenant of five users, in line, compared two users a page."""
    harness = make_harness(reconcile_page_size=2)
    for name in PAGED:
        harness.create_user(effects_tests.user_body(f"{name}@example.com"))
    run_all(harness)
    return harness


def drift_across_pages(harness: effects_tests.Harness) -> None:
    """Drift behind printsync's back on each side of both page boundaries and in the last
    page: dan (end of page 1), cy (start of page 2), ann (page 3)."""
    tenant_id = harness.tenant_id
    harness.db(lambda db: ledger.revoke(db, tenant_id, "dan@example.com"))
    harness.db(lambda db: ledger.delete(db, tenant_id, "cy@example.com"))
    harness.db(lambda db: ledger.revoke(db, tenant_id, "ann@example.com"))


def run_all(harness: effects_tests.Harness) -> None:
    """Run due effects until none is pending (effects recorded meanwhile included), waiting
    out the short backoff of a retried one."""
    for _ in range(50):
        if not harness.db(lambda db: outbox.list_effects(db, harness.tenant_id, state="pending")):
            return
        if harness.run_pending():
            time.sleep(0.5)
    raise AssertionError("effects kept pending")


def asked_for(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The accounts the ledger connector is asked to compare, one set per call."""
    asked: list[set[str]] = []
    compare = LedgerConnector.find_drift

    def recording(self: LedgerConnector, desired: Mapping[str, Any]) -> Iterator[Drift]:
        asked.append({key for key, _ in desired.items()})
        return compare(self, desired)

    monkeypatch.setattr(LedgerConnector, "find_drift", recording)
    return asked


def pages_of(harness: effects_tests.Harness) -> list[outbox.Effect]:
    found = harness.db(lambda db: outbox.list_effects(db, harness.tenant_id))
    return sorted((e for e in found if e.kind == outbox.TENANT_RECONCILE), key=lambda e: e.id)


def emails(*names: str) -> set[str]:
    return {f"{name}@example.com" for name in names}


def test_reconcile_in_pages_repairs_every_drifted_account_across_page_boundaries(
    make_harness: Callable[..., effects_tests.Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = paged_harness(make_harness)
    tenant_id = harness.tenant_id
    group_id = harness.create_group("Entra Only")
    run_all(harness)
    harness.db(lambda db: records.mark_skipped(db, tenant_id, group_id, "Entra Only", "absent"))
    drift_across_pages(harness)
    asked = asked_for(monkeypatch)

    first = harness.db(lambda db: records.record_now(db, tenant_id, "paged"))
    run_all(harness)

    # Two users a page, in the order of their rows; never more than a page at once.
    assert asked == [emails("eve", "dan"), emails("cy", "bob"), emails("ann")]
    pages = pages_of(harness)
    assert [(e.effect_key, e.state, e.attempts) for e in pages] == [
        (first.effect_key, "done", 0),
        (records.page_key(tenant_id, first.id, 2), "done", 0),
        (records.page_key(tenant_id, first.id, 3), "done", 0),
    ]
    assert [e.payload.get("page") for e in pages] == [None, 2, 3]
    repairs = harness.db(lambda db: records.repairs_of(db, tenant_id, first.id))
    assert {(r.payload["userName"], tuple(r.payload["drift"])) for r in repairs} == {
        ("dan@example.com", ("printing disabled", "card number", "secondary card number")),
        ("cy@example.com", ("account missing",)),
        ("ann@example.com", ("printing disabled", "card number", "secondary card number")),
    }
    assert {r.state for r in repairs} == {"done"}
    for name in PAGED:
        account = harness.account(f"{name}@example.com")
        assert account is not None and account.enabled and account.card_number == "100200"
    # The skipped group is tried once for the whole reconcile, with the first page.
    tries = harness.db(lambda db: records.repairs_of(db, tenant_id, first.id, outbox.GROUP_SYNC))
    assert [(t.subject_id, t.effect_key) for t in tries] == [
        (group_id, f"{outbox.GROUP_SYNC}:{group_id}:r{first.id}")
    ]
    query = provisioning_log.LogQuery(tenant_id=tenant_id, target=str(tenant_id))
    entries = harness.db(lambda db: provisioning_log.search(db, query))
    compared = [e for e in reversed(entries) if e.operation == outbox.TENANT_RECONCILE]
    assert [e.changes for e in compared] == [
        {"managed": 2, "drifted": 1, "page": 1, "continued": True},
        {"managed": 4, "drifted": 2, "page": 2, "continued": True},
        {"managed": 5, "drifted": 3, "page": 3},
    ]
    assert [story.describe(e).what for e in compared] == [
        "print system compared up to page 1: 2 accounts so far, 1 drifted; the next page follows",
        "print system compared up to page 2: 4 accounts so far, 2 drifted; the next page follows",
        "print system compared in 3 pages: 5 accounts, 3 drifted",
    ]


def test_next_page_is_recorded_in_the_transaction_of_the_pages_outcome(
    make_harness: Callable[..., effects_tests.Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = paged_harness(make_harness)
    tenant_id = harness.tenant_id
    drift_across_pages(harness)
    first = harness.db(lambda db: records.record_now(db, tenant_id, "paged"))
    following = records.page_key(tenant_id, first.id, 2)
    repair = records.repair_key(user_id("dan", harness), first.id)
    seen: list[tuple[str, int]] = []

    async def insert(conn: Connection, dialect: Dialect, entries: Sequence[Any]) -> None:
        # The outcome's log entry, written last: the next page and the repairs are there.
        statement = compile_text("SELECT count(*) FROM outbox WHERE effect_key = :key", dialect)
        for key in (following, repair):
            row = await conn.fetchone(statement, {"key": key})
            assert row is not None
            seen.append((key, row[0]))
        raise effects_tests.InjectedFault

    with monkeypatch.context() as patched:
        patched.setattr(provisioning_log, "insert", insert)
        with pytest.raises(effects_tests.InjectedFault):
            harness.effects.run(first.id)

    # In the outcome's transaction, with the page marked done, both are there; in the failed
    # attempt's that followed, neither.
    assert seen == [(following, 1), (repair, 1), (following, 0), (repair, 0)]
    # The outcome did not commit: neither did the next page nor the repairs.
    assert [e.id for e in pages_of(harness)] == [first.id]
    assert harness.db(lambda db: records.repairs_of(db, tenant_id, first.id)) == []
    assert harness.effect(first.id).state == "pending"

    harness.effects.run(first.id)

    assert [e.effect_key for e in pages_of(harness)] == [first.effect_key, following]
    repairs = harness.db(lambda db: records.repairs_of(db, tenant_id, first.id))
    assert [r.payload["userName"] for r in repairs] == ["dan@example.com"]


def user_id(name: str, harness: effects_tests.Harness) -> str:
    found = harness.db(lambda db: records.user_page(db, harness.tenant_id, 0, 100))
    [user] = [u for u in found if u.user_name == f"{name}@example.com"]
    return user.user_id


def test_a_failing_page_is_retried_alone(
    make_harness: Callable[..., effects_tests.Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = paged_harness(make_harness)
    tenant_id = harness.tenant_id
    drift_across_pages(harness)
    asked = asked_for(monkeypatch)
    compare = LedgerConnector.find_drift
    failures = [TransientError("the print system is away", operation="find_drift")]

    def second_page_fails_once(
        self: LedgerConnector, desired: Mapping[str, Any]
    ) -> Iterator[Drift]:
        if "cy@example.com" in desired and failures:
            compare(self, desired)  # asked, then fails
            raise failures.pop()
        return compare(self, desired)

    monkeypatch.setattr(LedgerConnector, "find_drift", second_page_fails_once)
    first = harness.db(lambda db: records.record_now(db, tenant_id, "paged"))

    run_all(harness)

    # Page 2 was compared twice, pages 1 and 3 once: the retry did not start over.
    assert asked == [
        emails("eve", "dan"),
        emails("cy", "bob"),
        emails("cy", "bob"),
        emails("ann"),
    ]
    assert [(e.state, e.attempts) for e in pages_of(harness)] == [
        ("done", 0),
        ("done", 1),
        ("done", 0),
    ]
    repairs = harness.db(lambda db: records.repairs_of(db, tenant_id, first.id))
    assert sorted(r.payload["userName"] for r in repairs) == sorted(emails("dan", "cy", "ann"))
    for name in PAGED:
        account = harness.account(f"{name}@example.com")
        assert account is not None and account.enabled


def test_reconcile_command_reports_every_page_of_the_tenant(
    site_factory: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRINTSYNC_RECONCILE_PAGE_SIZE", "2")
    site = site_factory(settings(reconcile_page_size=2))
    client, tenant_id = site.tenant()
    create_users(client, *PAGED)
    site.wait_settled(tenant_id)
    store = site.probe.store
    store.run(ledger.revoke, tenant_id, "dan")
    store.run(ledger.delete, tenant_id, "cy")
    store.run(ledger.revoke, tenant_id, "ann")
    expected = {
        "dan": ["printing disabled", "card number"],
        "cy": ["account missing"],
        "ann": ["printing disabled", "card number"],
    }

    dry = report_of(invoke("reconcile", "--tenant", client.name, "--dry-run", "--json"))
    repaired = report_of(invoke("reconcile", "--tenant", client.name, "--json"))

    assert (found_of(dry), dry["managed"], dry["drifted"]) == (expected, 5, 3)
    assert (found_of(repaired), repaired["managed"], repaired["drifted"]) == (expected, 5, 3)
    assert {row["result"] for row in repaired["found"]} == {"repaired"}
    accounts = site.probe.accounts(tenant_id)
    assert all(accounts[name].enabled for name in PAGED)
    assert accounts["cy"].card_number == "102"
    clean = invoke("reconcile", "--tenant", client.name)
    assert clean.stdout.splitlines()[0] == f"Tenant {client.name}: 5 accounts managed, 0 drifted"


def test_papercut_tenant_in_pages_is_compared_by_name_without_listing_accounts(
    make_harness: Callable[..., effects_tests.Harness], papercut_server: FakePaperCutServer
) -> None:
    config = {"url": papercut_server.base_url, "token_env": effects_tests.TOKEN_ENV}
    harness = make_harness("papercut", config, reconcile_page_size=2)
    for name in PAGED:
        work = [{"value": f"{name}@example.com", "type": "work", "primary": True}]
        harness.create_user(effects_tests.user_body(f"{name}@example.com", emails=work))
    run_all(harness)
    papercut_server.add_user("zed", full_name="Not Managed")
    with papercut_server.lock:  # drift behind printsync's back, in each page
        papercut_server.users["dan"]["disabled-print"] = "true"
        del papercut_server.users["cy"]
        # ann's account under the whole UPN, as a directory sync makes it: adopted there
        papercut_server.users["ann@example.com"] = papercut_server.users.pop("ann")
        papercut_server.users["ann@example.com"]["office"] = "Elsewhere"
    papercut_server.reset_calls()
    first = harness.db(lambda db: records.record_now(db, harness.tenant_id, "paged"))

    run_all(harness)

    assert len(pages_of(harness)) == 3
    repairs = harness.db(lambda db: records.repairs_of(db, harness.tenant_id, first.id))
    assert {r.payload["userName"]: r.payload["drift"] for r in repairs} == {
        "dan@example.com": ["printing disabled"],
        "cy@example.com": ["account missing"],
        "ann@example.com": ["office"],
    }
    assert papercut_server.calls["api.listUserAccounts"] == 0
    assert [params for _, params in papercut_server.params if "zed" in params] == []
    assert papercut_server.users["dan"]["disabled-print"] == "false"
    assert papercut_server.users["cy"]["primary-card-number"] == "100200"
    assert papercut_server.users["ann@example.com"]["office"] == "Berlin"
    assert "ann" not in papercut_server.users
