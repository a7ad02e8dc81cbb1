"""The deprovisioning guard's decision in the write transaction, and Entra's cycles merged from
several API processes' log flushes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from storage import clock, cycles, guard, outbox, resources, tenants, users
from storage.database import Database, open_database
from storage.provisioning_log import LogBuffer
from storage.scim.schema import PATCH_OP, USER

T = TypeVar("T")
BASE = "https://printsync.test/scim/v2/acme"


def run(database_url: str, work: Callable[[Database], Awaitable[T]], pool: int = 8) -> T:
    async def main() -> T:
        db = await open_database(database_url, pool_size=pool)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def active(value: bool) -> resources.Edit:
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": value}],
    }
    return resources.patching(users.SPEC, body)


async def make_users(db: Database, tenant_id: int, count: int) -> list[str]:
    made = []
    for number in range(count):
        body = {"schemas": [USER], "userName": f"u{number}@acme.example", "active": True}
        made.append((await resources.create(db, users.SPEC, tenant_id, body, base=BASE)).id)
    return made


async def held_subjects(db: Database, tenant_id: int) -> set[str]:
    found = await outbox.list_effects(db, tenant_id, state=outbox.HELD, limit=1000)
    return {effect.subject_id for effect in found}


def test_concurrent_disables_let_exactly_the_threshold_through(database_url: str) -> None:
    async def work(db: Database) -> tuple[int, int, guard.GuardStatus]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        await guard.set_overrides(db, tenant.id, {"min": 4, "percent": 10})
        ids = await make_users(db, tenant.id, 20)
        results = await asyncio.gather(
            *(
                resources.rewrite(db, users.SPEC, tenant.id, user_id, active(False), base=BASE)
                for user_id in ids[:12]
            ),
            return_exceptions=True,
        )
        assert not [result for result in results if isinstance(result, Exception)], results
        pending = [
            effect
            for effect in await outbox.list_effects(db, tenant.id, state=outbox.PENDING, limit=100)
            if effect.effect_key.endswith(":v2")
        ]
        return (
            len(pending),
            len(await held_subjects(db, tenant.id)),
            await guard.status(db, tenant.id),
        )

    applied, held, state = run(database_url, work)
    # max(4, 10 % of 20) = 4 apply, whichever API transactions came first; 8 are held.
    assert (applied, held) == (4, 8)
    assert (state.held, state.threshold, state.admitted) == (8, 4, 4)


def test_reenabled_user_drops_its_held_effect_and_approval_starts_a_new_window(
    database_url: str,
) -> None:
    async def work(db: Database) -> dict[str, Any]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        await guard.set_overrides(db, tenant.id, {"min": 1, "percent": 0})
        ids = await make_users(db, tenant.id, 5)
        for user_id in ids[:3]:
            await resources.rewrite(db, users.SPEC, tenant.id, user_id, active(False), base=BASE)
        held = await held_subjects(db, tenant.id)
        # Entra enables one of them again: nothing is left to revoke for it.
        back = sorted(held)[0]
        await resources.rewrite(db, users.SPEC, tenant.id, back, active(True), base=BASE)
        after_enable = await held_subjects(db, tenant.id)
        released = await guard.approve(db, tenant.id)
        # A new window: the next deletion applies at once, the one after is held.
        await resources.delete(db, users.SPEC, tenant.id, ids[3])
        await resources.delete(db, users.SPEC, tenant.id, ids[4])
        return {
            "held": held,
            "back": back,
            "after_enable": after_enable,
            "released": released,
            "after_deletes": await held_subjects(db, tenant.id),
        }

    found = run(database_url, work)
    assert len(found["held"]) == 2
    assert found["after_enable"] == found["held"] - {found["back"]}
    assert found["released"] == 1
    assert len(found["after_deletes"]) == 1


def test_guard_off_with_a_zero_window_holds_nothing(database_url: str) -> None:
    async def work(db: Database) -> set[str]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        await guard.set_overrides(db, tenant.id, {"min": 1, "window_seconds": 0})
        ids = await make_users(db, tenant.id, 4)
        for user_id in ids:
            await resources.delete(db, users.SPEC, tenant.id, user_id)
        return await held_subjects(db, tenant.id)

    assert run(database_url, work) == set()


def test_cycle_merged_from_two_processes_flushes_and_split_after_a_quiet_gap(
    database_url: str,
) -> None:
    settings = cycles.CycleSettings(gap_seconds=0.4)

    async def work(db: Database) -> list[cycles.Cycle]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        one, two = LogBuffer(cycle_settings=settings), LogBuffer(cycle_settings=settings)
        one.append(tenant.id, "GET /Users", 200)
        two.append(tenant.id, "POST /Users", 201, target_id="a")
        one.append(tenant.id, "POST /Users", 201, target_id="b")
        two.append(tenant.id, "POST /Groups", 201, target_id="g")
        # The second process flushes first: its part starts later, and still joins the cycle.
        await two.flush(db)
        await one.flush(db)
        await asyncio.sleep(0.6)
        disabled = {"active": [True, False]}
        one.append(tenant.id, "PATCH /Users", 200, target_id="a", changes=disabled)
        two.append(tenant.id, "PATCH /Users", 200, target_id="b", changes={"attributes": ["x"]})
        two.append(tenant.id, "DELETE /Users", 204, target_id="b")
        one.append(tenant.id, "PUT /Users", 409)
        await one.flush(db)
        await two.flush(db)
        return await cycles.recent(db, tenant.id)

    latest, first = run(database_url, work)
    assert (first.first, first.initial, first.requests, first.probes, first.created) == (
        True,
        True,
        4,
        1,
        2,
    )
    assert first.group_changes == 1 and first.ended_at < latest.started_at
    assert (latest.first, latest.initial, latest.requests) == (False, False, 4)
    assert (latest.disabled, latest.updated, latest.deleted, latest.failed) == (1, 1, 1, 1)
    shown = cycles.view([latest, first], settings.gap_seconds, clock.now())
    assert shown.as_dict()["cycle"]["state"] in ("running", "idle")


def test_next_cycle_expected_after_the_average_quiet_time() -> None:
    def cycle(start: str, end: str) -> cycles.Cycle:
        return cycles.Cycle(start, end, False, 10, 10, 0, 0, 0, 0, 0, 0)

    history = [
        cycle("2026-01-01T11:30:00.000000Z", "2026-01-01T11:31:00.000000Z"),
        cycle("2026-01-01T10:50:00.000000Z", "2026-01-01T10:51:00.000000Z"),
        cycle("2026-01-01T10:00:00.000000Z", "2026-01-01T10:01:00.000000Z"),
    ]
    idle = cycles.view(history, 300, clock.parse("2026-01-01T11:40:00.000000Z"))
    assert not idle.running
    # Quiet times 39 and 49 minutes: the next is expected 44 minutes after 11:31.
    assert idle.next_expected_at == "2026-01-01T12:15:00.000000Z"
    running = cycles.view(history, 300, clock.parse("2026-01-01T11:33:00.000000Z"))
    assert running.running and running.next_expected_at is None
    assert running.as_dict()["cycle"]["requests_per_second"] == pytest.approx(10 / 60, abs=0.01)
