"""Effects applied one attempt at a time (no broker): convergence, retries, dead effects."""

from __future__ import annotations

import asyncio
import threading
import xmlrpc.client
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import structlog
from dramatiq import Retry
from dramatiq.middleware import Retries
from prometheus_client import REGISTRY

from storage import clock, groups, ledger, outbox, provisioning_log, resources, tenants, users
from storage.blocking import BlockingDatabase
from storage.database import Connection, Database, open_database
from storage.scim.schema import ENTERPRISE_USER, PRINTSYNC_USER, USER
from storage.sql import Dialect, compile_text
from tests.builders import patch_body, replace
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from tests.harness import run
from tests.support_a import assert_access_revoked
from workers import effects as effects_module
from workers.broker import build_broker
from workers.connectors.registry import ConnectorRegistry
from workers.effects import Effects
from workers.errors import PermanentError
from workers.settings import PaperCutSettings, WorkerSettings

T = TypeVar("T")
BASE = "http://testserver/scim/v2/acme"
TOKEN_ENV = "TEST_PAPERCUT_TOKEN"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def worker_settings(**overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "max_retries": 2,
        "min_backoff_ms": 100,
        "max_backoff_ms": 400,
        "lease_seconds": 5,
        "retention_days": 30,
        "papercut": PaperCutSettings(
            timeout_seconds=2, retry_initial_wait_seconds=0.01, retry_budget_seconds=0.3
        ),
    }
    values.update(overrides)
    return WorkerSettings(**values)


def user_body(user_name: str = "jdoe@example.com", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
        "userName": user_name,
        "active": True,
        "name": {"formatted": "Jane Doe", "givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": True}],
        ENTERPRISE_USER: {"department": "Finance"},
        PRINTSYNC_USER: {
            "cardNumber": "100200",
            "secondaryCardNumber": "900800",
            "office": "Berlin",
        },
    }
    body.update(extra)
    return body


@dataclass
class Harness:
    """One tenant on a real database, with the storage calls a SCIM request would make and
    an Effects instance that applies what they record."""

    url: str
    tenant_id: int
    effects: Effects
    dead: list[outbox.Effect] = field(default_factory=list)

    def db(self, work: Callable[[Database], Awaitable[T]]) -> T:
        return run(self.url, work, pool_size=1)

    def create(self, spec: resources.Spec, body: dict[str, Any]) -> str:
        return self.db(lambda db: resources.create(db, spec, self.tenant_id, body, base=BASE)).id

    def patch(self, spec: resources.Spec, resource_id: str, *operations: dict[str, Any]) -> None:
        rewrite = resources.patching(spec, patch_body(*operations))
        self.db(
            lambda db: resources.rewrite(db, spec, self.tenant_id, resource_id, rewrite, base=BASE)
        )

    def delete(self, spec: resources.Spec, resource_id: str) -> None:
        self.db(lambda db: resources.delete(db, spec, self.tenant_id, resource_id))

    def create_user(self, body: dict[str, Any]) -> str:
        return self.create(users.SPEC, body)

    def patch_user(self, user_id: str, *operations: dict[str, Any]) -> None:
        self.patch(users.SPEC, user_id, *operations)

    def set_active(self, user_id: str, active: bool) -> None:
        self.patch_user(user_id, replace("active", active))

    def delete_user(self, user_id: str) -> None:
        self.delete(users.SPEC, user_id)

    def create_group(self, name: str, members: Sequence[str] = ()) -> str:
        body = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": member} for member in members],
        }
        return self.create(groups.SPEC, body)

    def patch_group(self, group_id: str, *operations: dict[str, Any]) -> None:
        self.patch(groups.SPEC, group_id, *operations)

    def delete_group(self, group_id: str) -> None:
        self.delete(groups.SPEC, group_id)

    def pending(self) -> list[outbox.Effect]:
        found = self.db(lambda db: outbox.list_effects(db, self.tenant_id, state="pending"))
        due = clock.stamp()
        return sorted((e for e in found if e.next_attempt_at <= due), key=lambda e: e.id)

    def effect(self, effect_id: int) -> outbox.Effect:
        found = self.db(lambda db: outbox.get(db, effect_id))
        assert found is not None
        return found

    def run_pending(self) -> list[int]:
        """Run every due pending effect once, oldest first; returns those that asked for a
        retry."""
        retried = []
        for effect in self.pending():
            try:
                self.effects.run(effect.id)
            except Retry:
                retried.append(effect.id)
        return retried

    def account(self, username: str = "jdoe@example.com") -> ledger.Account | None:
        return self.db(lambda db: ledger.get_account(db, self.tenant_id, username))

    def staff_member(self) -> tuple[str, str]:
        """Create the user of :func:`user_body` in a new group Staff: the user's and the group's
        ids."""
        user_id = self.create_user(user_body())
        return user_id, self.create_group("Staff", [user_id])

    def new_user_sync(self) -> outbox.Effect:
        """Create the user of :func:`user_body`: the one pending effect that records."""
        self.create_user(user_body())
        [effect] = self.pending()
        return effect


@pytest.fixture
def make_harness(database_url: str) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(
        connector: str = "ledger",
        config: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
        **settings: Any,
    ) -> Harness:
        async def create(db: Database) -> int:
            tenant, _ = await tenants.create(
                db, f"acme{len(made)}", connector=connector, connector_config=config or {}
            )
            return tenant.id

        async def open_and_create() -> int:
            db = await open_database(database_url, pool_size=1)
            try:
                return await create(db)
            finally:
                await db.close()

        tenant_id = asyncio.run(open_and_create())
        chosen = worker_settings(**settings)
        store = BlockingDatabase(database_url)
        registry = ConnectorRegistry(
            store, chosen, environ={TOKEN_ENV: DEFAULT_TOKEN} if environ is None else environ
        )
        harness = Harness(database_url, tenant_id, Effects(store, registry, chosen))
        effects_module.on_dead.append(harness.dead.append)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        effects_module.on_dead.remove(harness.dead.append)
        harness.effects.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


PaperCut = tuple[Harness, FakePaperCutServer]
"""A harness on a PaperCut tenant, and the fake PaperCut server behind it."""


@pytest.fixture
def papercut(make_harness: Callable[..., Harness], papercut_server: FakePaperCutServer) -> PaperCut:
    config = {"url": papercut_server.base_url, "token_env": TOKEN_ENV}
    return make_harness("papercut", config), papercut_server


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Print accounts in the ledger ------------------------------------------------------------------


def test_run_sync_active_user_ledger_account_has_current_data(harness: Harness) -> None:
    harness.staff_member()
    succeeded = sample(
        "printsync_effects_total", kind="account.sync", connector="ledger", outcome="succeeded"
    )

    assert harness.run_pending() == []

    account = harness.account()
    assert account is not None
    assert (
        account.username,
        account.full_name,
        account.email,
        account.department,
        account.office,
        account.card_number,
        account.secondary_card_number,
        account.enabled,
        account.groups,
    ) == (
        "jdoe@example.com",
        "Jane Doe",
        "jane.doe@example.com",
        "Finance",
        "Berlin",
        "100200",
        "900800",
        True,
        ("Staff",),
    )
    assert harness.pending() == []
    assert (
        sample(
            "printsync_effects_total", kind="account.sync", connector="ledger", outcome="succeeded"
        )
        >= succeeded + 2
    )


def test_run_sync_update_changes_account_to_current_values(harness: Harness) -> None:
    user_id = harness.create_user(user_body())
    harness.run_pending()

    harness.patch_user(
        user_id,
        {"op": "replace", "path": f"{PRINTSYNC_USER}:cardNumber", "value": "555"},
        {"op": "replace", "path": "name.formatted", "value": "Jane Roe"},
    )
    harness.run_pending()

    account = harness.account()
    assert account is not None
    assert (account.card_number, account.full_name) == ("555", "Jane Roe")


def test_run_sync_disabled_user_revokes_cards_pin_and_groups(harness: Harness) -> None:
    user_id, _ = harness.staff_member()
    harness.run_pending()
    harness.db(lambda db: ledger.set_pin(db, harness.tenant_id, "jdoe@example.com", "4711"))

    harness.set_active(user_id, False)
    harness.run_pending()

    account = harness.account()
    assert account is not None
    assert_access_revoked(account)


def test_run_sync_reactivated_user_restores_access(harness: Harness) -> None:
    user_id, _ = harness.staff_member()
    harness.set_active(user_id, False)
    harness.run_pending()

    harness.set_active(user_id, True)
    harness.run_pending()

    account = harness.account()
    assert account is not None
    assert (account.enabled, account.card_number, account.groups) == (True, "100200", ("Staff",))


def test_run_sync_effects_out_of_order_converge_to_newest_state(harness: Harness) -> None:
    user_id = harness.create_user(user_body())
    harness.set_active(user_id, False)
    created, disabled = harness.pending()

    harness.effects.run(disabled.id)
    harness.effects.run(created.id)

    account = harness.account()
    assert account is None or not account.enabled
    assert harness.pending() == []


def test_run_sync_user_created_inactive_gets_no_account(harness: Harness) -> None:
    harness.create_user(user_body(active=False))

    harness.run_pending()

    assert harness.account() is None


def test_run_sync_renamed_user_keeps_the_same_ledger_account(harness: Harness) -> None:
    user_id = harness.create_user(user_body())
    harness.run_pending()
    before = harness.account()
    assert before is not None

    harness.patch_user(
        user_id, {"op": "replace", "path": "userName", "value": "jane.roe@example.com"}
    )
    harness.run_pending()

    old, new = harness.account(), harness.account("jane.roe@example.com")
    assert old is None
    assert new is not None and new.enabled and new.card_number == "100200"
    assert new.id == before.id, "the account itself was renamed, not replaced"
    # The old name's purge still follows; it finds no account under that name.
    [purge] = harness.db(lambda db: outbox.list_effects(db, harness.tenant_id, state="pending"))
    assert (purge.kind, purge.payload) == (outbox.ACCOUNT_PURGE, {"userName": "jdoe@example.com"})


def test_run_delete_revokes_now_and_purges_with_redaction_after_retention(harness: Harness) -> None:
    user_id = harness.create_user(user_body())
    harness.run_pending()

    harness.delete_user(user_id)
    harness.run_pending()
    revoked = harness.account()
    [purge] = harness.db(lambda db: outbox.list_effects(db, harness.tenant_id, state="pending"))

    assert revoked is not None and not revoked.enabled and revoked.card_number == ""
    assert purge.kind == outbox.ACCOUNT_PURGE
    assert clock.parse(purge.next_attempt_at) - clock.now() > timedelta(days=29)

    harness.effects.run(purge.id)

    assert harness.account() is None
    assert harness.effect(purge.id).state == "done"


def test_run_purge_user_back_before_retention_keeps_account(harness: Harness) -> None:
    user_id = harness.create_user(user_body())
    harness.run_pending()
    harness.delete_user(user_id)
    harness.run_pending()
    [purge] = harness.db(lambda db: outbox.list_effects(db, harness.tenant_id, state="pending"))

    returning = user_body()
    returning[PRINTSYNC_USER] = {"cardNumber": "777"}
    harness.create_user(returning)
    harness.run_pending()
    harness.effects.run(purge.id)

    account = harness.account()
    assert account is not None
    assert (account.enabled, account.card_number) == (True, "777")


def test_run_delete_after_user_came_back_keeps_new_users_access(harness: Harness) -> None:
    first = harness.create_user(user_body())
    harness.run_pending()
    harness.delete_user(first)
    harness.create_user(user_body())
    *_, deletion, recreation = harness.pending()

    harness.effects.run(recreation.id)
    harness.effects.run(deletion.id)

    account = harness.account()
    assert account is not None and account.enabled and account.card_number == "100200"


# Groups -------------------------------------------------------------------------------------------


def test_run_group_effects_rename_and_delete_reach_ledger(harness: Harness) -> None:
    _, group_id = harness.staff_member()
    harness.run_pending()

    harness.patch_group(group_id, {"op": "replace", "path": "displayName", "value": "Crew"})
    harness.run_pending()
    renamed = harness.account()
    groups_after_rename = harness.db(lambda db: ledger.list_groups(db, harness.tenant_id))
    harness.delete_group(group_id)
    harness.run_pending()

    assert renamed is not None and renamed.groups == ("Crew",)
    assert groups_after_rename == ["Crew"]
    account = harness.account()
    assert account is not None and account.groups == ()
    assert harness.db(lambda db: ledger.list_groups(db, harness.tenant_id)) == []


def test_run_group_membership_removed_reaches_account(harness: Harness) -> None:
    user_id, group_id = harness.staff_member()
    harness.run_pending()

    harness.patch_group(group_id, {"op": "remove", "path": f'members[value eq "{user_id}"]'})
    harness.run_pending()

    account = harness.account()
    assert account is not None and account.groups == ()


# PaperCut --------------------------------------------------------------------------------------


def test_run_sync_papercut_creates_user_with_properties_and_groups(papercut: PaperCut) -> None:
    harness, server = papercut
    harness.staff_member()

    harness.run_pending()

    props = server.users["jdoe"]
    assert (
        props["full-name"],
        props["email"],
        props["department"],
        props["office"],
        props["primary-card-number"],
        props["secondary-card-number"],
        props["disabled-print"],
    ) == ("Jane Doe", "jane.doe@example.com", "Finance", "Berlin", "100200", "900800", "false")
    assert server.user_groups("jdoe") == {"Staff"}


def test_run_done_effect_again_makes_no_papercut_call(papercut: PaperCut) -> None:
    harness, server = papercut
    effect = harness.new_user_sync()
    harness.effects.run(effect.id)
    server.reset_calls()

    harness.effects.run(effect.id)

    assert sum(server.calls.values()) == 0
    assert list(server.users) == ["jdoe"]


def test_run_same_effect_twice_at_once_applies_it_once(papercut: PaperCut) -> None:
    """A second message for an effect this process is applying (a redelivery, a resend after
    the lease) is skipped instead of adding the account a second time."""
    harness, server = papercut
    effect = harness.new_user_sync()
    server.set_hang(0.3)
    attempts = [threading.Thread(target=harness.effects.run, args=(effect.id,)) for _ in range(3)]
    for attempt in attempts:
        attempt.start()
    for attempt in attempts:
        attempt.join()

    assert server.calls["api.addNewInternalUser"] == 1
    assert harness.effect(effect.id).state == "done"


def test_run_papercut_disable_and_delete_revoke_then_purge(papercut: PaperCut) -> None:
    harness, server = papercut
    user_id, _ = harness.staff_member()
    harness.run_pending()

    harness.set_active(user_id, False)
    harness.run_pending()
    props = dict(server.users["jdoe"])
    harness.delete_user(user_id)
    harness.run_pending()
    [purge] = harness.db(lambda db: outbox.list_effects(db, harness.tenant_id, state="pending"))
    harness.effects.run(purge.id)

    assert (props["disabled-print"], props["primary-card-number"], props["card-pin"]) == (
        "true",
        "",
        "",
    )
    assert server.deleted == [("jdoe", True)]
    assert "jdoe" not in server.users


def test_run_papercut_refusal_is_dead_at_once_and_reported(papercut: PaperCut) -> None:
    harness, server = papercut

    def refuse(params: tuple[Any, ...]) -> None:
        raise xmlrpc.client.Fault(261, "The property is invalid")

    server.before["api.setUserProperties"] = refuse
    effect = harness.new_user_sync()
    failed = sample(
        "printsync_effects_total", kind="account.sync", connector="papercut", outcome="failed"
    )

    with pytest.raises(PermanentError):
        harness.effects.run(effect.id)

    dead = harness.effect(effect.id)
    assert (dead.state, dead.attempts) == ("dead", 1)
    assert "fault 261, the property is invalid" in (dead.last_error or "")
    assert DEFAULT_TOKEN not in (dead.last_error or "")
    assert [e.id for e in harness.dead] == [effect.id]
    assert (
        sample(
            "printsync_effects_total", kind="account.sync", connector="papercut", outcome="failed"
        )
        == failed + 1
    )


def test_run_papercut_outage_retries_then_dead_after_last_attempt(papercut: PaperCut) -> None:
    harness, server = papercut
    effect = harness.new_user_sync()
    server.set_outage(503)

    delays = []
    for _ in range(2):
        with pytest.raises(Retry) as retry:
            harness.effects.run(effect.id)
        delays.append(retry.value.delay)
    harness.effects.run(effect.id)

    dead = harness.effect(effect.id)
    assert [d is not None and 100 <= d <= 800 for d in delays] == [True, True]
    assert (dead.state, dead.attempts) == ("dead", 3)
    assert "503" in (dead.last_error or "")
    assert [e.id for e in harness.dead] == [effect.id]


def test_run_papercut_outage_then_recovery_converges(papercut: PaperCut) -> None:
    harness, server = papercut
    effect = harness.new_user_sync()
    server.set_outage(503)
    with pytest.raises(Retry):
        harness.effects.run(effect.id)

    server.set_outage(None)
    harness.effects.run(effect.id)

    done = harness.effect(effect.id)
    assert (done.state, done.attempts, done.last_error) == ("done", 1, None)
    assert server.users["jdoe"]["primary-card-number"] == "100200"


def test_run_papercut_missing_token_variable_is_dead(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(
        "papercut", {"url": "http://127.0.0.1:9", "token_env": "UNSET_VAR"}, environ={}
    )
    effect = harness.new_user_sync()

    with pytest.raises(PermanentError):
        harness.effects.run(effect.id)

    dead = harness.effect(effect.id)
    assert dead.state == "dead"
    assert "UNSET_VAR" in (dead.last_error or "")


def test_run_papercut_group_rename_and_delete(papercut: PaperCut) -> None:
    harness, server = papercut
    _, group_id = harness.staff_member()
    harness.run_pending()

    harness.patch_group(group_id, {"op": "replace", "path": "displayName", "value": "Crew"})
    harness.run_pending()
    after_rename = dict(server.groups)
    harness.delete_group(group_id)
    harness.run_pending()

    assert after_rename == {"Crew": {"jdoe"}}
    assert server.groups == {}


def test_exhausted_pending_effect_becomes_dead(harness: Harness) -> None:
    effect = harness.new_user_sync()

    harness.effects.exhausted(effect.id, retries=8)
    harness.effects.exhausted(effect.id, retries=8)

    dead = harness.effect(effect.id)
    assert (dead.state, dead.last_error) == ("dead", "retries exhausted after 8 retries")
    assert [e.id for e in harness.dead] == [effect.id]


def test_run_leaves_log_context_as_it_was(harness: Harness) -> None:
    effect = harness.new_user_sync()
    structlog.contextvars.bind_contextvars(request_id="outer")
    try:
        harness.effects.run(effect.id)
        context = structlog.contextvars.get_contextvars()
    finally:
        structlog.contextvars.unbind_contextvars("request_id")

    assert context == {"request_id": "outer"}


# Ending an attempt: the outbox row and its log entry in one transaction -------------------------


class InjectedFault(Exception):
    """Raised after the outbox row is marked, before the attempt's transaction commits."""


def fail_log_insert(monkeypatch: pytest.MonkeyPatch, effect_id: int) -> list[tuple[str, int]]:
    """Make writing a provisioning-log entry fail; returns the effect's (state, attempts) as the
    failing write saw them, inside the attempt's transaction."""
    seen: list[tuple[str, int]] = []

    async def insert(conn: Connection, dialect: Dialect, entries: Sequence[Any]) -> None:
        statement = compile_text("SELECT state, attempts FROM outbox WHERE id = :id", dialect)
        row = await conn.fetchone(statement, {"id": effect_id})
        assert row is not None
        seen.append((row[0], row[1]))
        raise InjectedFault

    monkeypatch.setattr(provisioning_log, "insert", insert)
    return seen


def run_with_log_insert_failing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, effect_id: int, **options: Any
) -> list[tuple[str, int]]:
    """Run the effect while writing its provisioning-log entry fails (the attempt ends in
    :class:`InjectedFault`); returns what :func:`fail_log_insert` saw."""
    with monkeypatch.context() as patched:
        seen = fail_log_insert(patched, effect_id)
        with pytest.raises(InjectedFault):
            harness.effects.run(effect_id, **options)
    return seen


def logged(harness: Harness) -> list[tuple[str, str]]:
    query = provisioning_log.LogQuery(tenant_id=harness.tenant_id)
    entries = harness.db(lambda db: provisioning_log.search(db, query))
    return [(entry.operation, entry.result) for entry in entries]


def test_run_success_log_write_fails_effect_neither_done_nor_logged(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    effect = harness.new_user_sync()
    seen = run_with_log_insert_failing(harness, monkeypatch, effect.id)

    still = harness.effect(effect.id)
    # Marked done in the transaction that then failed; the failed attempt that followed could
    # not be logged either.
    assert seen == [("done", 0), ("pending", 1)]
    assert (still.state, still.completed_at, logged(harness)) == ("pending", None, [])

    harness.effects.run(effect.id)

    assert harness.effect(effect.id).state == "done"
    assert logged(harness) == [("account.sync", "success")]


def test_run_give_up_log_write_fails_effect_neither_dead_nor_logged(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    effect = harness.new_user_sync()
    seen = run_with_log_insert_failing(harness, monkeypatch, effect.id, kind=outbox.GROUP_SYNC)

    still = harness.effect(effect.id)
    assert seen == [("dead", 1)]
    assert (still.state, still.attempts, still.last_error) == ("pending", 0, None)
    assert (logged(harness), harness.dead) == ([], [])

    harness.effects.run(effect.id, kind=outbox.GROUP_SYNC)

    assert harness.effect(effect.id).state == "dead"
    assert logged(harness) == [("account.sync", "failed")]


def test_run_retry_log_write_fails_attempt_neither_counted_nor_logged(
    papercut: PaperCut, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, server = papercut
    effect = harness.new_user_sync()
    server.set_outage(503)
    seen = run_with_log_insert_failing(harness, monkeypatch, effect.id)

    still = harness.effect(effect.id)
    assert seen == [("pending", 1)]
    assert (still.attempts, still.last_error, logged(harness)) == (0, None, [])

    with pytest.raises(Retry):
        harness.effects.run(effect.id)

    assert harness.effect(effect.id).attempts == 1
    assert logged(harness) == [("account.sync", "retried")]


# Effect keys, and effects the database refuses to record --------------------------------------

LONG_NAME = "a" * 180 + "@example.com"  # well within the indexed limit, past the old key's room


def _pending(harness: Harness, kind: str) -> outbox.Effect:
    [found] = [
        e
        for e in harness.db(lambda db: outbox.list_effects(db, harness.tenant_id))
        if e.kind == kind and e.state == "pending"
    ]
    return found


def test_delete_of_user_with_long_user_name_records_its_purge(harness: Harness) -> None:
    user_id = harness.create_user(user_body(LONG_NAME))
    harness.run_pending()
    harness.delete_user(user_id)
    [deletion] = harness.pending()

    harness.effects.run(deletion.id)

    assert harness.effect(deletion.id).state == "done"
    purge = _pending(harness, outbox.ACCOUNT_PURGE)
    assert len(purge.effect_key) <= outbox.MAX_KEY_LENGTH
    assert LONG_NAME not in purge.effect_key
    assert purge.payload == {"userName": LONG_NAME}
    harness.effects.run(purge.id)
    assert harness.effect(purge.id).state == "done"
    assert harness.account(LONG_NAME) is None


def test_unrecordable_follow_up_is_a_failed_attempt_with_its_reason(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = harness.create_user(user_body())
    harness.run_pending()
    harness.delete_user(user_id)
    [deletion] = harness.pending()
    original = Effects._purge_later

    def oversized(self: Effects, effect: outbox.Effect, username: str) -> outbox.Scheduled:
        purge = original(self, effect, username)
        return outbox.Scheduled(
            purge.kind, purge.subject_id, "k" * 300, purge.payload, purge.due_at
        )

    monkeypatch.setattr(Effects, "_purge_later", oversized)
    with pytest.raises(Retry):
        harness.effects.run(deletion.id)

    failed = harness.effect(deletion.id)
    assert (failed.state, failed.attempts) == ("pending", 1)
    assert failed.last_error is not None
    assert "could not be recorded" in failed.last_error
    assert "longer than 200" in failed.last_error
    assert ("account.delete", "retried") in logged(harness)

    for _ in range(5):  # max_retries is 2: then it is dead, and the admins hear of it
        try:
            harness.effects.run(deletion.id)
        except Retry:
            continue
        break
    dead = harness.effect(deletion.id)
    assert dead.state == "dead" and "could not be recorded" in (dead.last_error or "")
    assert [effect.id for effect in harness.dead] == [deletion.id]


def test_unloadable_effect_is_dead_with_its_reason(harness: Harness) -> None:
    effect = harness.new_user_sync()

    async def corrupt(db: Database) -> None:
        async with db.transaction() as conn:
            await conn.execute(
                compile_text("UPDATE outbox SET payload = :payload WHERE id = :id", db.dialect),
                {"payload": "{not json", "id": effect.id},
            )

    harness.db(corrupt)

    harness.effects.run(effect.id)

    async def row(db: Database) -> Any:
        async with db.reader() as conn:
            return await conn.fetchone(
                compile_text(
                    "SELECT state, attempts, last_error FROM outbox WHERE id = :id", db.dialect
                ),
                {"id": effect.id},
            )

    state, attempts, error = harness.db(row)
    assert (state, attempts) == ("dead", 1)
    assert "could not be loaded" in error and "JSONDecodeError" in error


# Brokers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        (None, "StubBroker"),
        ("redis://127.0.0.1:6379/15", "RedisBroker"),
        ("amqp://guest:guest@127.0.0.1:5672/", "RabbitmqBroker"),
    ],
)
def test_build_broker_url_scheme_selects_broker_with_configured_retries(
    url: str | None, kind: str
) -> None:
    chosen = worker_settings(
        broker_url=url, max_retries=8, min_backoff_ms=30_000, max_backoff_ms=3_600_000
    )

    broker = build_broker(chosen)

    retries = [m for m in broker.middleware if isinstance(m, Retries)]
    assert type(broker).__name__ == kind
    assert [(r.max_retries, r.min_backoff, r.max_backoff) for r in retries] == [
        (8, 30_000, 3_600_000)
    ]
    assert chosen.embedded is (url is None)
