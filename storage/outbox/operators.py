"""What operators do with effects: list a tenant's (with the names of their users and groups),
count them by state, send dead ones through again, prune."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from storage import clock
from storage.database import Database
from storage.outbox.effects import COLUMNS, STATES, Effect, effect_of
from storage.sql import Dialect, Statement, compile_text

#: Makes dead effects pending again, with a fresh retry budget.
_REVIVE = (
    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = :now,"
    " claimed_until = NULL, dispatched_at = NULL, completed_at = NULL, updated_at = :now"
    " WHERE tenant_id = :tenant AND state = 'dead'"
)


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    sql = {
        "list": (
            f"SELECT {COLUMNS} FROM outbox WHERE tenant_id = :tenant ORDER BY id DESC LIMIT :limit"
        ),
        "list_state": (
            f"SELECT {COLUMNS} FROM outbox WHERE tenant_id = :tenant AND state = :state"
            " ORDER BY id DESC LIMIT :limit"
        ),
        "retry": f"{_REVIVE} AND id = :id",
        "retry_dead": (
            f"{_REVIVE} AND id IN (SELECT id FROM outbox WHERE tenant_id = :tenant"
            " AND state = 'dead' ORDER BY id LIMIT :batch)"
        ),
        "count_dead": "SELECT count(*) FROM outbox WHERE tenant_id = :tenant AND state = 'dead'",
        "counts": (
            "SELECT tenant_id, state, count(*) FROM outbox"
            " WHERE (state = 'pending' AND created_at <= :now)"
            " OR state NOT IN ('pending', 'done') GROUP BY tenant_id, state"
        ),
        "prune": "DELETE FROM outbox WHERE state = 'done' AND completed_at < :before",
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


async def list_effects(
    db: Database, tenant_id: int, *, state: str | None = None, limit: int = 100
) -> list[Effect]:
    """A tenant's effects, newest first, optionally only those in ``state``."""
    if state is not None and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    statements = _statements(db.dialect)
    params: dict[str, Any] = {"tenant": tenant_id, "limit": limit}
    async with db.reader() as conn:
        if state is None:
            rows = await conn.fetchall(statements["list"], params)
        else:
            rows = await conn.fetchall(statements["list_state"], {**params, "state": state})
    return [effect_of(row) for row in rows]


async def retry(db: Database, tenant_id: int, effect_id: int) -> bool:
    """Make a dead effect of this tenant pending again, with a fresh retry budget."""
    async with db.transaction() as conn:
        changed = await conn.execute(
            _statements(db.dialect)["retry"],
            {"id": effect_id, "tenant": tenant_id, "now": clock.stamp()},
        )
    return bool(changed)


async def retry_dead(
    db: Database,
    tenant_id: int,
    *,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Make every dead effect of this tenant pending again, ``batch`` at a time (each batch its
    own short transaction, reported to ``progress``); returns how many."""
    statement = _statements(db.dialect)["retry_dead"]
    total = 0
    while True:
        async with db.transaction() as conn:
            changed = int(
                await conn.execute(
                    statement, {"tenant": tenant_id, "now": clock.stamp(), "batch": batch}
                )
            )
        total += changed
        if progress is not None and changed:
            progress(changed)
        if changed < batch:
            return total


async def count_dead(db: Database, tenant_id: int) -> int:
    """How many of the tenant's effects are dead."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["count_dead"], {"tenant": tenant_id})
    return int(row[0]) if row is not None else 0


async def counts_by_tenant(db: Database) -> dict[int, dict[str, int]]:
    """Effects that are not done, per tenant and state (``pending``, ``dead``); a pending
    effect scheduled for later (a purge after the retention period) is not counted before it is
    due."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["counts"], {"now": clock.stamp()})
    found: dict[int, dict[str, int]] = {}
    for tenant_id, state, count in rows:
        found.setdefault(int(tenant_id), {})[state] = int(count)
    return found


_SUBJECT_NAMES = (
    "SELECT id, user_name FROM users WHERE tenant_id = :tenant AND {users}"
    " UNION ALL SELECT id, display_name FROM groups WHERE tenant_id = :tenant AND {groups}"
)


def _in_ids(dialect: Dialect) -> str:
    if dialect == "postgresql":
        return "id = ANY(CAST(:ids AS text[]))"
    return "id IN (SELECT value FROM json_each(:ids))"


async def subject_names(db: Database, tenant_id: int, ids: Sequence[str]) -> dict[str, str]:
    """The current userName or displayName of each of ``ids`` that is a user or group of the
    tenant (one query)."""
    if not ids:
        return {}
    condition = _in_ids(db.dialect)
    sql = compile_text(_SUBJECT_NAMES.format(users=condition, groups=condition), db.dialect)
    values: Any = list(ids) if db.dialect == "postgresql" else orjson.dumps(list(ids)).decode()
    async with db.reader() as conn:
        rows = await conn.fetchall(sql, {"tenant": tenant_id, "ids": values})
    return {row[0]: row[1] for row in rows}


async def prune(db: Database, *, older_than_seconds: float) -> int:
    """Delete effects that were completed longer ago than ``older_than_seconds``."""
    async with db.transaction() as conn:
        removed = await conn.execute(
            _statements(db.dialect)["prune"], {"before": clock.later(-older_than_seconds)}
        )
    return int(removed)
