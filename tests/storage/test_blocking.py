"""The facade for threads: storage coroutines run to their end on the calling thread, whether
they complete without suspending (SQLite) or suspend on the way."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from pathlib import Path

import pytest

from storage import migrate, tenants
from storage.blocking import BlockingDatabase
from storage.database import Connection, Database
from storage.sql import Dialect, compile_text

_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="outside")
_COUNT = compile_text("SELECT count(*) FROM tenants", "sqlite")
_INSERT = compile_text(
    "INSERT INTO tenants (name, token_hash, connector, connector_config, created_at)"
    " VALUES (:name, 'x', 'ledger', '{}', '2026-01-01T00:00:00Z')",
    "sqlite",
)


async def _count_after_a_pause(db: Database, pauses: int) -> int:
    _MARK.set("inside")
    for _ in range(pauses):
        await asyncio.sleep(0.001)  # suspends: the rest must finish on the loop
    async with db.reader() as conn:
        row = await conn.fetchone(_COUNT, {})
    assert row is not None
    return int(row[0])


async def _insert_then_fail(conn: Connection, dialect: Dialect, name: str) -> None:
    await conn.execute(_INSERT, {"name": name})
    raise RuntimeError("refused")


@pytest.fixture
def store(tmp_path: Path) -> BlockingDatabase:
    url = f"sqlite:///{tmp_path / 'blocking.sqlite3'}"
    migrate.upgrade(url)
    facade = BlockingDatabase(url)
    facade.run(tenants.create, "first", connector="ledger")
    return facade


@pytest.mark.parametrize("pauses", [0, 1, 3])
def test_a_coroutine_runs_to_its_end_whether_or_not_it_suspends(
    store: BlockingDatabase, pauses: int
) -> None:
    try:
        assert store.run(_count_after_a_pause, pauses) == 1
        # What the coroutine set stays in its own context, as in a task.
        assert _MARK.get() == "outside"
        # The loop is free again: the next call runs as well.
        assert store.run(_count_after_a_pause, 0) == 1
    finally:
        store.close()


def test_a_failed_transaction_of_a_thread_leaves_nothing(
    store: BlockingDatabase, tmp_path: Path
) -> None:
    try:
        with pytest.raises(RuntimeError, match="refused"):
            store.run_in_transaction(_insert_then_fail, "second")
        assert store.run(_count_after_a_pause, 0) == 1
        # The connection is usable and commits at once, without waiting for a loop turn.
        store.run(tenants.create, "third", connector="ledger")
        with sqlite3.connect(tmp_path / "blocking.sqlite3") as other:
            names = [row[0] for row in other.execute("SELECT name FROM tenants ORDER BY id")]
        assert names == ["first", "third"]
    finally:
        store.close()
