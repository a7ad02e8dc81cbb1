"""Recording effects, inside the transaction of the change that implies them.

A scheduled effect (:func:`schedule`) is recorded with ``created_at = next_attempt_at = due``: it
comes into being when it falls due, so it counts as pending (and ages) only from then on.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from storage import clock
from storage.database import Connection
from storage.outbox.effects import Scheduled
from storage.sql import Dialect, compile_text

_INSERT: Final = (
    "INSERT INTO outbox (tenant_id, kind, subject_id, effect_key, payload, state, attempts,"
    " next_attempt_at, created_at, updated_at) VALUES (:tenant_id, :kind, :subject_id,"
    " :effect_key, :payload, 'pending', 0, :due, :due, :now)"
    " ON CONFLICT (effect_key) DO NOTHING"
)


async def record(
    conn: Connection,
    dialect: Dialect,
    *,
    tenant_id: int,
    kind: str,
    subject_id: str,
    key: str,
    payload: dict[str, Any] | None = None,
    now: str | None = None,
) -> None:
    """Insert one effect, due now, inside the caller's transaction."""
    stamp = now or clock.stamp()
    await _insert(conn, dialect, tenant_id, kind, subject_id, key, payload or {}, stamp, stamp)


async def schedule(
    conn: Connection, dialect: Dialect, *, tenant_id: int, effect: Scheduled, now: str | None = None
) -> None:
    """Insert an effect that falls due at ``effect.due_at``, inside the caller's transaction."""
    await _insert(
        conn,
        dialect,
        tenant_id,
        effect.kind,
        effect.subject_id,
        effect.key,
        effect.payload,
        effect.due_at,
        now or clock.stamp(),
    )


async def _insert(
    conn: Connection,
    dialect: Dialect,
    tenant_id: int,
    kind: str,
    subject_id: str,
    key: str,
    payload: dict[str, Any],
    due: str,
    now: str,
) -> None:
    """One effect that comes into being (is created and falls due) at ``due``; a key recorded
    before makes it a no-op."""
    await conn.execute(
        compile_text(_INSERT, dialect),
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "subject_id": subject_id,
            "effect_key": key,
            "payload": orjson.dumps(payload).decode(),
            "due": due,
            "now": now,
        },
    )
