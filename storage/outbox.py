"""The outbox: effects recorded in the same transaction as the change that implies them.

Effect kinds (the workers' actors interpret them; payloads carry only what cannot be re-read):

- ``account.sync``   a user was created, changed, (re)activated, disabled, or their group
                     memberships changed; the actor re-reads the user and converges the print
                     account (ensure when active, revoke access when not).
- ``account.delete`` a user was deleted; payload ``{"userName", "groups"}`` captured at delete
                     time because the row is gone when the actor runs.
- ``group.sync``     a group was created or renamed; the actor re-reads it.
- ``group.delete``   a group was deleted; payload ``{"displayName"}``.

The idempotency key (``effect_key``) is unique: recording the same key twice is a no-op.
"""

from __future__ import annotations

from typing import Any

import orjson

from storage import clock
from storage.database import Connection
from storage.sql import Dialect, compile_text

ACCOUNT_SYNC = "account.sync"
ACCOUNT_DELETE = "account.delete"
GROUP_SYNC = "group.sync"
GROUP_DELETE = "group.delete"
KINDS = (ACCOUNT_SYNC, ACCOUNT_DELETE, GROUP_SYNC, GROUP_DELETE)

_RECORD = (
    "INSERT INTO outbox (tenant_id, kind, subject_id, effect_key, payload, state, attempts,"
    " next_attempt_at, created_at, updated_at)"
    " VALUES (:tenant_id, :kind, :subject_id, :effect_key, :payload, 'pending', 0,"
    " :now, :now, :now)"
    " ON CONFLICT (effect_key) DO NOTHING"
)


async def record(conn: Connection, dialect: Dialect, *, tenant_id: int, kind: str,
                 subject_id: str, key: str, payload: dict[str, Any] | None = None,
                 now: str | None = None) -> None:
    """Insert one effect inside the caller's transaction."""
    stamp = now or clock.stamp()
    await conn.execute(compile_text(_RECORD, dialect), {
        "tenant_id": tenant_id, "kind": kind, "subject_id": subject_id, "effect_key": key,
        "payload": orjson.dumps(payload or {}).decode(), "now": stamp,
    })
