"""SQLite group commit: the write transactions of one turn of the event loop share a COMMIT,
and each member still succeeds or fails on its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage import migrate, resources, tenants, users
from storage.database import SQLiteDatabase
from storage.errors import DatabaseUnavailable
from storage.scim.errors import Uniqueness
from storage.sql import compile_text

BASE = "http://test/scim/v2/t"


def _body(name: str) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}


def _committed_names(path: Path) -> list[str]:
    """What another connection (another process) sees: only committed rows."""
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT user_name FROM users ORDER BY pk").fetchall()
    return [row[0] for row in rows]


def test_concurrent_writes_share_a_commit_and_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "group.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")

    async def scenario() -> list[Any]:
        db = SQLiteDatabase(str(path))
        tenant, _ = await tenants.create(db, "t", connector="ledger")
        await resources.create(db, users.SPEC, tenant.id, _body("taken@example.com"), base=BASE)
        commits = 0
        original = db._commit_group

        def counted() -> None:
            nonlocal commits
            commits += 1
            original()

        db._commit_group = counted  # type: ignore[method-assign]
        names = ["a@example.com", "taken@example.com", "b@example.com", "c@example.com"]
        results = await asyncio.gather(
            *(
                resources.create(db, users.SPEC, tenant.id, _body(name), base=BASE)
                for name in names
            ),
            return_exceptions=True,
        )
        await db.close()
        return [commits, *results]

    commits, *results = asyncio.run(scenario())
    assert commits == 1  # four transactions in one turn: one COMMIT
    assert isinstance(results[1], Uniqueness)
    assert [r.version for r in results if not isinstance(r, BaseException)] == [1, 1, 1]
    assert _committed_names(path) == [
        "taken@example.com",
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


def test_a_member_answers_only_after_the_shared_commit(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    seen: list[list[str]] = []

    async def scenario() -> None:
        db = SQLiteDatabase(str(path))
        tenant, _ = await tenants.create(db, "t", connector="ledger")

        async def create_then_look(name: str) -> None:
            await resources.create(db, users.SPEC, tenant.id, _body(name), base=BASE)
            seen.append(_committed_names(path))

        await asyncio.gather(create_then_look("x@example.com"), create_then_look("y@example.com"))
        await db.close()

    asyncio.run(scenario())
    assert seen == [["x@example.com", "y@example.com"]] * 2


def test_the_only_member_failing_rolls_back_and_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "alone.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")

    async def scenario() -> None:
        db = SQLiteDatabase(str(path))
        tenant, _ = await tenants.create(db, "t", connector="ledger")
        await resources.create(db, users.SPEC, tenant.id, _body("u@example.com"), base=BASE)
        with pytest.raises(Uniqueness):
            await resources.create(db, users.SPEC, tenant.id, _body("u@example.com"), base=BASE)
        await resources.create(db, users.SPEC, tenant.id, _body("v@example.com"), base=BASE)
        await db.close()

    asyncio.run(scenario())
    assert _committed_names(path) == ["u@example.com", "v@example.com"]


def test_a_member_that_makes_sqlite_drop_the_transaction_fails_the_whole_group(
    tmp_path: Path,
) -> None:
    """Disk full: SQLite rolls back the whole transaction, so no member of that group may be told
    success; a writer that comes after it starts a group of its own and is committed."""
    path = tmp_path / "full.sqlite3"
    outcome: dict[str, str] = {}

    async def scenario() -> tuple[bool, int]:
        db = SQLiteDatabase(str(path))
        raw = db._raw
        raw.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count = {pages + 20}")  # room for small rows only
        insert = compile_text("INSERT INTO t (v) VALUES (:v)", "sqlite")

        async def member(name: str, size: int) -> None:
            try:
                async with db.transaction() as conn:
                    await conn.execute(insert, {"v": b"x" * size})
                outcome[name] = "ok"
            except DatabaseUnavailable:
                outcome[name] = "unavailable"

        await asyncio.gather(member("a", 100), member("b", 2_000_000), member("c", 100))
        await member("after", 100)  # the connection is usable again
        stuck = raw.in_transaction
        rows = raw.execute("SELECT count(*) FROM t").fetchone()[0]
        await db.close()
        return stuck, rows

    stuck, rows = asyncio.run(scenario())
    assert outcome == {"a": "unavailable", "b": "unavailable", "c": "ok", "after": "ok"}
    assert (stuck, rows) == (False, 2)  # the rows of c and after, none of a's
