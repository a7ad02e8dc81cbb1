"""Recording effects, inside the transaction of the change that implies them.

A scheduled effect (:func:`schedule`) is recorded with ``created_at = next_attempt_at = due``: it
comes into being when it falls due, so it counts as pending (and ages) only from then on.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from storage import clock
from storage.database import Connection
from storage.outbox.effects import HELD, MAX_KEY_LENGTH, PENDING, Scheduled
from storage.sql import Dialect, Statement, compile_text

_COLUMNS: Final = (
    "INSERT INTO outbox (tenant_id, kind, subject_id, effect_key, payload, state, attempts,"
    " next_attempt_at, created_at, updated_at)"
)
_VALUES: Final = (
    ":tenant_id, :kind, :subject_id, :effect_key, :payload, :state, 0, :due, :due, :now"
)
_ON_CONFLICT: Final = " ON CONFLICT (effect_key) DO NOTHING"
_INSERT: Final = f"{_COLUMNS} VALUES ({_VALUES}){_ON_CONFLICT}"


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
    held: bool = False,
) -> None:
    """Insert one effect, due now, inside the caller's transaction; ``held``: in state
    ``held``, waiting for an operator's approval (``storage.guard``)."""
    stamp = now or clock.stamp()
    effect = Scheduled(kind, subject_id, key, payload or {}, due_at=stamp)
    await schedule(conn, dialect, tenant_id=tenant_id, effect=effect, now=stamp, held=held)


async def schedule(
    conn: Connection,
    dialect: Dialect,
    *,
    tenant_id: int,
    effect: Scheduled,
    now: str | None = None,
    held: bool = False,
) -> None:
    """Insert an effect that falls due at ``effect.due_at``, inside the caller's transaction.

    It comes into being (is created) then too; a key recorded before makes it a no-op. A key
    longer than :data:`~storage.outbox.effects.MAX_KEY_LENGTH` is a ValueError on every
    database (PostgreSQL would refuse it, SQLite would store it)."""
    await conn.execute(insert_statement(dialect), insert_params(tenant_id, effect, now, held=held))


def insert_statement(dialect: Dialect) -> Statement:
    """The statement :func:`schedule` runs, for a caller that runs it as part of one of its own
    (``storage.sql.chained``), with :func:`insert_params`."""
    return compile_text(_INSERT, dialect)


def insert_if_statement(dialect: Dialect, source: str) -> Statement:
    """:func:`insert_statement` recording the effect only if the query ``source`` (a CTE of
    the caller's statement, e.g. an ``UPDATE ... RETURNING``) has a row: a write and its
    effect, all or nothing, in one statement. Same parameters."""
    return compile_text(f"{_COLUMNS} SELECT {_VALUES} FROM {source}{_ON_CONFLICT}", dialect)


def insert_params(
    tenant_id: int, effect: Scheduled, now: str | None = None, *, held: bool = False
) -> dict[str, Any]:
    """The parameters of :func:`insert_statement` for ``effect``; see :func:`schedule`."""
    if len(effect.key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"the {effect.kind} effect's key is longer than {MAX_KEY_LENGTH} characters"
        )
    return {
        "tenant_id": tenant_id,
        "kind": effect.kind,
        "subject_id": effect.subject_id,
        "effect_key": effect.key,
        "payload": orjson.dumps(effect.payload).decode(),
        "due": effect.due_at,
        "now": now or clock.stamp(),
        "state": HELD if held else PENDING,
    }
