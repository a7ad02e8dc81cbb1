"""The outbox and the ledger in storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from storage import clock, ledger, outbox, provisioning_log, tenants
from storage.blocking import BlockingDatabase
from storage.database import Database, in_transaction
from storage.records import print_accounts
from storage.sql import compile_core
from tests.harness import run
from tests.support_a import assert_access_revoked
from workers.effects import complete_and_log

T = TypeVar("T")


def make_tenant(url: str, name: str = "acme") -> int:
    async def work(db: Database) -> int:
        tenant, _ = await tenants.create(db, name, connector="ledger")
        return tenant.id

    return run(url, work)


def record(
    url: str,
    tenant_id: int,
    count: int = 1,
    *,
    kind: str = outbox.ACCOUNT_SYNC,
    prefix: str = "k",
    payload: dict[str, Any] | None = None,
) -> list[int]:
    async def work(db: Database) -> list[int]:
        async with db.transaction() as conn:
            for index in range(count):
                await outbox.record(
                    conn,
                    db.dialect,
                    tenant_id=tenant_id,
                    kind=kind,
                    subject_id=f"s{index}",
                    key=f"{prefix}:{index}",
                    payload=payload,
                )
        found = await outbox.list_effects(db, tenant_id, limit=10_000)
        return sorted(effect.id for effect in found if effect.effect_key.startswith(prefix))

    return run(url, work)


def give_up(url: str, effect_id: int) -> None:
    run(url, lambda db: in_transaction(db, outbox.give_up, effect_id, error="refused"))


def test_record_same_key_twice_keeps_one_effect(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    record(database_url, tenant_id, 1)
    ids = record(database_url, tenant_id, 1)

    assert len(ids) == 1
    effect = run(database_url, lambda db: outbox.get(db, ids[0]))
    assert effect is not None
    assert (effect.state, effect.attempts, effect.dispatched_at) == ("pending", 0, None)


def test_claim_due_claimed_effect_is_not_claimed_again_until_lease_expires(
    database_url: str,
) -> None:
    tenant_id = make_tenant(database_url)
    ids = record(database_url, tenant_id, 3)

    first = run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=60))
    again = run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=60))
    later = clock.now() + timedelta(seconds=61)
    expired = run(
        database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=60, now=later)
    )

    assert [claimed.id for claimed in first] == ids
    assert {claimed.kind for claimed in first} == {outbox.ACCOUNT_SYNC}
    assert again == []
    assert [claimed.id for claimed in expired] == ids


def test_claim_due_released_effects_are_claimable_at_once(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ids = record(database_url, tenant_id, 2)
    run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=60))

    run(database_url, lambda db: outbox.release(db, ids[:1]))
    claimed = run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=60))

    assert [effect.id for effect in claimed] == ids[:1]


def test_claim_due_concurrent_claimers_each_effect_claimed_once(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ids = record(database_url, tenant_id, 120)
    store = BlockingDatabase(database_url)
    claims: list[int] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def claimer() -> None:
        try:
            while True:
                batch = store.run(outbox.claim_due, limit=7, lease_seconds=60)
                if not batch:
                    return
                with lock:
                    claims.extend(effect.id for effect in batch)
        except BaseException as error:
            failures.append(error)
        finally:
            store.close_thread()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store.close()

    assert failures == []
    assert Counter(claims) == Counter(ids)


def test_mark_dispatched_sets_dispatched_at(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ids = record(database_url, tenant_id, 2)

    run(database_url, lambda db: outbox.mark_dispatched(db, ids[:1]))
    effects = {
        effect.id: effect
        for effect in run(database_url, lambda db: outbox.list_effects(db, tenant_id))
    }

    assert effects[ids[0]].dispatched_at is not None
    assert effects[ids[1]].dispatched_at is None


def test_begin_done_effect_returns_none(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1)

    started = run(database_url, lambda db: outbox.begin(db, effect_id, lease_seconds=30))
    finished = run(database_url, lambda db: in_transaction(db, outbox.complete, effect_id))
    duplicate = run(database_url, lambda db: outbox.begin(db, effect_id, lease_seconds=30))
    finished_again = run(database_url, lambda db: in_transaction(db, outbox.complete, effect_id))

    assert started is not None and started.claimed_until is not None
    assert finished is True
    assert duplicate is None
    assert finished_again is False
    done = run(database_url, lambda db: outbox.get(db, effect_id))
    assert done is not None and done.state == "done" and done.completed_at is not None


def test_begin_writes_the_lease_only_when_the_claim_does_not_cover_the_attempt(
    database_url: str,
) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1)
    [claimed] = run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=300))
    before = run(database_url, lambda db: outbox.get(db, effect_id))
    assert claimed.id == effect_id and before is not None and before.claimed_until is not None

    covered = run(
        database_url,
        lambda db: outbox.begin(db, effect_id, lease_seconds=300, covered_seconds=240),
    )
    assert covered is not None and covered.claimed_until == before.claimed_until

    extended = run(
        database_url,
        lambda db: outbox.begin(db, effect_id, lease_seconds=900, covered_seconds=600),
    )
    assert extended is not None and extended.claimed_until is not None
    assert extended.claimed_until > before.claimed_until  # too short a claim: extended

    run(database_url, lambda db: in_transaction(db, outbox.complete, effect_id))
    gone = run(
        database_url,
        lambda db: outbox.begin(db, effect_id, lease_seconds=300, covered_seconds=240),
    )
    assert gone is None


def test_complete_effect_logs_the_success_in_the_same_transaction_once(
    database_url: str,
) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1, payload={"userName": "ann@example.com"})
    effect = run(database_url, lambda db: outbox.get(db, effect_id))
    assert effect is not None

    success = provisioning_log.effect_entry(effect, provisioning_log.SUCCESS)
    first = run(
        database_url, lambda db: in_transaction(db, complete_and_log, effect, None, success)
    )
    second = run(
        database_url, lambda db: in_transaction(db, complete_and_log, effect, None, success)
    )
    entries = run(
        database_url,
        lambda db: provisioning_log.search(db, provisioning_log.LogQuery(tenant_id=tenant_id)),
    )

    assert (first, second) == (True, False)
    assert [(e.source, e.operation, e.result, e.target_id) for e in entries] == [
        (provisioning_log.EFFECT, outbox.ACCOUNT_SYNC, "success", "s0")
    ]


def test_complete_with_follow_up_schedules_it_once_for_later(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1, kind=outbox.ACCOUNT_DELETE)
    due = clock.later(3600)
    follow_up = outbox.Scheduled(
        kind=outbox.ACCOUNT_PURGE,
        subject_id="s0",
        key="purge:s0",
        payload={"userName": "jdoe"},
        due_at=due,
    )

    run(
        database_url,
        lambda db: in_transaction(
            db, outbox.complete, effect_id, tenant_id=tenant_id, follow_up=follow_up
        ),
    )
    run(
        database_url,
        lambda db: in_transaction(
            db, outbox.complete, effect_id, tenant_id=tenant_id, follow_up=follow_up
        ),
    )
    pending = run(database_url, lambda db: outbox.list_effects(db, tenant_id, state="pending"))
    claimed_now = run(database_url, lambda db: outbox.claim_due(db, limit=10, lease_seconds=5))
    claimed_later = run(
        database_url,
        lambda db: outbox.claim_due(
            db, limit=10, lease_seconds=5, now=clock.parse(due) + timedelta(seconds=1)
        ),
    )

    assert [(e.kind, e.payload, e.next_attempt_at) for e in pending] == [
        (outbox.ACCOUNT_PURGE, {"userName": "jdoe"}, due)
    ]
    assert claimed_now == []
    assert [claimed.kind for claimed in claimed_later] == [outbox.ACCOUNT_PURGE]


def test_fail_transient_counts_attempt_and_defers_next_attempt(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1)

    attempts = run(
        database_url,
        lambda db: in_transaction(
            db,
            outbox.fail_transient,
            effect_id,
            error="PaperCut unreachable",
            delay_seconds=30,
            lease_seconds=10,
        ),
    )
    effect = run(database_url, lambda db: outbox.get(db, effect_id))
    claimed = run(database_url, lambda db: outbox.claim_due(db, limit=5, lease_seconds=5))
    after_retry_and_lease = run(
        database_url,
        lambda db: outbox.claim_due(
            db, limit=5, lease_seconds=5, now=clock.now() + timedelta(seconds=41)
        ),
    )

    assert attempts == 1
    assert effect is not None
    assert (effect.state, effect.attempts, effect.last_error) == (
        "pending",
        1,
        "PaperCut unreachable",
    )
    assert effect.next_attempt_at > clock.later(25)
    assert claimed == []
    assert [c.id for c in after_retry_and_lease] == [effect_id]


def test_give_up_pending_effect_becomes_dead_with_error(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    [effect_id] = record(database_url, tenant_id, 1)

    dead = run(
        database_url, lambda db: in_transaction(db, outbox.give_up, effect_id, error="refused")
    )
    twice = run(
        database_url, lambda db: in_transaction(db, outbox.give_up, effect_id, error="again")
    )
    claimed = run(database_url, lambda db: outbox.claim_due(db, limit=5, lease_seconds=5))

    assert dead is not None
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 1, "refused")
    assert twice is None
    assert claimed == []


def test_retry_dead_effect_is_pending_with_fresh_budget(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    other = make_tenant(database_url, "other")
    ids = record(database_url, tenant_id, 3)
    for effect_id in ids:
        give_up(database_url, effect_id)

    wrong_tenant = run(database_url, lambda db: outbox.retry(db, other, ids[0]))
    one = run(database_url, lambda db: outbox.retry(db, tenant_id, ids[0]))
    not_dead = run(database_url, lambda db: outbox.retry(db, tenant_id, ids[0]))
    rest = run(database_url, lambda db: outbox.retry_dead(db, tenant_id))
    effects = run(database_url, lambda db: outbox.list_effects(db, tenant_id))
    claimed = run(database_url, lambda db: outbox.claim_due(db, limit=5, lease_seconds=5))

    assert (wrong_tenant, one, not_dead, rest) == (False, True, False, 2)
    assert {(e.state, e.attempts) for e in effects} == {("pending", 0)}
    assert sorted(c.id for c in claimed) == ids


def test_list_effects_by_state_lists_only_that_state_newest_first(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    other = make_tenant(database_url, "other")
    ids = record(database_url, tenant_id, 3)
    record(database_url, other, 2, prefix="o")
    run(database_url, lambda db: in_transaction(db, outbox.give_up, ids[1], error="refused"))

    everything = run(database_url, lambda db: outbox.list_effects(db, tenant_id))
    dead = run(database_url, lambda db: outbox.list_effects(db, tenant_id, state="dead"))
    pending = run(database_url, lambda db: outbox.list_effects(db, tenant_id, state="pending"))

    assert [e.id for e in everything] == ids[::-1]
    assert [e.id for e in dead] == [ids[1]]
    assert [e.id for e in pending] == [ids[2], ids[0]]
    with pytest.raises(ValueError):
        run(database_url, lambda db: outbox.list_effects(db, tenant_id, state="failed"))


def test_pending_stats_counts_pending_and_dead_by_kind(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    syncs = record(database_url, tenant_id, 3)
    record(database_url, tenant_id, 1, kind=outbox.GROUP_SYNC, prefix="g")
    run(database_url, lambda db: in_transaction(db, outbox.give_up, syncs[0], error="refused"))
    run(database_url, lambda db: in_transaction(db, outbox.complete, syncs[1]))
    future = outbox.Scheduled(
        kind=outbox.ACCOUNT_PURGE,
        subject_id="x",
        key="p:x",
        payload={"userName": "x"},
        due_at=clock.later(3600),
    )

    async def schedule(db: Database) -> None:
        async with db.transaction() as conn:
            await outbox.schedule(conn, db.dialect, tenant_id=tenant_id, effect=future)

    run(database_url, schedule)
    stats = run(database_url, outbox.pending_stats)
    empty_snapshot = outbox.PendingStats({}, {}, None).snapshot()
    snapshot = stats.snapshot(clock.now() + timedelta(seconds=100))

    assert stats.pending_by_kind == {outbox.ACCOUNT_SYNC: 1, outbox.GROUP_SYNC: 1}
    assert stats.dead_by_kind == {outbox.ACCOUNT_SYNC: 1}
    assert stats.oldest_pending_created_at is not None
    assert 99 < snapshot.oldest_pending_age_seconds < 200
    assert empty_snapshot.oldest_pending_age_seconds == 0


def test_failure_stats_and_recent_failures_report_dead_effects(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    since = clock.stamp()
    ids = record(
        database_url,
        tenant_id,
        4,
        kind=outbox.ACCOUNT_DELETE,
        payload={"userName": "jdoe@example.com", "groups": []},
    )
    run(database_url, lambda db: in_transaction(db, outbox.complete, ids[0]))
    run(
        database_url,
        lambda db: in_transaction(
            db, outbox.fail_transient, ids[1], error="timeout", delay_seconds=1, lease_seconds=1
        ),
    )
    run(
        database_url,
        lambda db: in_transaction(db, outbox.give_up, ids[2], error="refused: bad card"),
    )

    stats = run(database_url, lambda db: outbox.failure_stats(db, tenant_id, since))
    failures = run(database_url, lambda db: outbox.recent_failures(db, tenant_id, since, 10))
    none_later = run(database_url, lambda db: outbox.failure_stats(db, tenant_id, clock.later(60)))

    assert stats == (1, 1, 1)
    assert [(f.id, f.kind, f.subject, f.last_error, f.attempts) for f in failures] == [
        (ids[2], outbox.ACCOUNT_DELETE, "jdoe@example.com", "refused: bad card", 1)
    ]
    assert none_later == (0, 0, 0)


def test_prune_removes_only_done_effects_older_than_cutoff(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ids = record(database_url, tenant_id, 2)
    run(database_url, lambda db: in_transaction(db, outbox.complete, ids[0]))

    kept = run(database_url, lambda db: outbox.prune(db, older_than_seconds=3600))
    removed = run(database_url, lambda db: outbox.prune(db, older_than_seconds=-1))
    left = run(database_url, lambda db: outbox.list_effects(db, tenant_id))

    assert (kept, removed) == (0, 1)
    assert [e.id for e in left] == [ids[1]]


# The ledger ------------------------------------------------------------------------------------


def ensure(url: str, tenant_id: int, username: str = "jdoe", **values: Any) -> None:
    fields: dict[str, Any] = {
        "full_name": "Jane Doe",
        "email": "jane@example.com",
        "department": "Finance",
        "office": "Berlin",
        "card_number": "100",
        "secondary_card_number": "200",
        "enabled": True,
        "groups": ("Staff", "Printers"),
    }
    fields.update(values)
    run(url, lambda db: ledger.ensure_account(db, tenant_id, username=username, **fields))


def accounts_of(url: str, tenant_id: int) -> dict[str, ledger.Account]:
    found = run(url, lambda db: ledger.list_accounts(db, tenant_id))
    return {account.username: account for account in found}


def test_ledger_ensure_account_twice_keeps_one_account_and_pin(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ensure(database_url, tenant_id)
    run(database_url, lambda db: ledger.set_pin(db, tenant_id, "JDOE", "1234"))
    ensure(database_url, tenant_id, "JDoe", card_number="101", groups=("staff", "Other"))

    found = accounts_of(database_url, tenant_id)

    assert list(found) == ["JDoe"]
    account = found["JDoe"]
    assert (account.card_number, account.pin, account.enabled) == ("101", "1234", True)
    assert account.groups == ("Staff", "Other")
    assert run(database_url, lambda db: ledger.list_groups(db, tenant_id)) == [
        "Other",
        "Printers",
        "Staff",
    ]


def test_ledger_revoke_clears_cards_pin_and_groups(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ensure(database_url, tenant_id)
    run(database_url, lambda db: ledger.set_pin(db, tenant_id, "jdoe", "1234"))

    revoked = run(database_url, lambda db: ledger.revoke(db, tenant_id, "jdoe"))
    missing = run(database_url, lambda db: ledger.revoke(db, tenant_id, "nobody"))
    account = accounts_of(database_url, tenant_id)["jdoe"]

    assert (revoked, missing) == (True, False)
    assert_access_revoked(account)
    assert account.full_name == "Jane Doe"


def test_ledger_delete_with_redaction_frees_name_and_erases_data(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ensure(database_url, tenant_id)
    ensure(database_url, tenant_id, "other")

    deleted = run(database_url, lambda db: ledger.delete(db, tenant_id, "jdoe"))
    again = run(database_url, lambda db: ledger.delete(db, tenant_id, "jdoe"))
    removed = run(database_url, lambda db: ledger.delete(db, tenant_id, "other", redact=False))
    ensure(database_url, tenant_id, "jdoe", full_name="New Jane")

    assert (deleted, again, removed) == (True, False, True)
    assert {name: a.full_name for name, a in accounts_of(database_url, tenant_id).items()} == {
        "jdoe": "New Jane"
    }

    async def tombstones(db: Database) -> list[tuple[Any, ...]]:
        statement = compile_core(
            sa.select(
                print_accounts.c.username,
                print_accounts.c.full_name,
                print_accounts.c.email,
                print_accounts.c.card_number,
                print_accounts.c.redacted,
            ).where(print_accounts.c.deleted_at.is_not(None)),
            db.dialect,
        )
        async with db.reader() as conn:
            return [tuple(row) for row in await conn.fetchall(statement, {})]

    [tombstone] = run(database_url, tombstones)
    assert tombstone[0].startswith("deleted:")
    assert tombstone[1:] == ("", "", "", True)


def test_ledger_rename_group_moves_members_and_delete_group_drops_them(database_url: str) -> None:
    tenant_id = make_tenant(database_url)
    ensure(database_url, tenant_id, "a", groups=("Staff",))
    ensure(database_url, tenant_id, "b", groups=("Staff", "Team"))

    run(database_url, lambda db: ledger.rename_group(db, tenant_id, "staff", "Team"))
    after_merge = {n: a.groups for n, a in accounts_of(database_url, tenant_id).items()}
    run(database_url, lambda db: ledger.rename_group(db, tenant_id, "Team", "Crew"))
    run(database_url, lambda db: ledger.rename_group(db, tenant_id, "Gone", "Fresh"))
    after_rename = {n: a.groups for n, a in accounts_of(database_url, tenant_id).items()}
    dropped = run(database_url, lambda db: ledger.delete_group(db, tenant_id, "CREW"))
    missing = run(database_url, lambda db: ledger.delete_group(db, tenant_id, "Crew"))

    assert after_merge == {"a": ("Team",), "b": ("Team",)}
    assert after_rename == {"a": ("Crew",), "b": ("Crew",)}
    assert (dropped, missing) == (True, False)
    assert {n: a.groups for n, a in accounts_of(database_url, tenant_id).items()} == {
        "a": (),
        "b": (),
    }
    assert run(database_url, lambda db: ledger.list_groups(db, tenant_id)) == ["Fresh"]
