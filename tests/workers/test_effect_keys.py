"""Effect keys never embed unbounded user data, and an effect whose outcome or row the database
refuses shows the reason instead of being sent again forever."""

from __future__ import annotations

from typing import Any

import pytest
from dramatiq import Retry

from storage import outbox
from storage.database import Database
from storage.sql import compile_text
from tests.workers.test_effects import (  # noqa: F401
    Harness,
    harness,
    logged,
    make_harness,
    user_body,
)
from workers.effects import Effects

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
    harness.create_user(user_body())
    [effect] = harness.pending()

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
