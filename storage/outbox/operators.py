"""What operators do with effects: list a tenant's, send dead ones through again, prune."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

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
        "retry_dead": _REVIVE,
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


async def retry_dead(db: Database, tenant_id: int) -> int:
    """Make every dead effect of this tenant pending again; returns how many."""
    async with db.transaction() as conn:
        changed = await conn.execute(
            _statements(db.dialect)["retry_dead"], {"tenant": tenant_id, "now": clock.stamp()}
        )
    return int(changed)


async def prune(db: Database, *, older_than_seconds: float) -> int:
    """Delete effects that were completed longer ago than ``older_than_seconds``."""
    async with db.transaction() as conn:
        removed = await conn.execute(
            _statements(db.dialect)["prune"], {"before": clock.later(-older_than_seconds)}
        )
    return int(removed)
