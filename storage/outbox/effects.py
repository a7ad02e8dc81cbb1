"""What an effect is: its kinds, its states and the row types read from the outbox.

Effect kinds (the workers' actors interpret them; payloads carry only what cannot be re-read):

- ``account.sync``   a user was created, changed, (re)activated, disabled, or their group
                     memberships changed; the actor re-reads the user and converges the print
                     account (ensure when active, revoke access when not).
- ``account.delete`` a user was deleted; payload ``{"userName", "groups"}`` captured at delete
                     time because the row is gone when the actor runs.
- ``account.purge``  the retention period after a deletion has passed; payload ``{"userName"}``.
                     Recorded by the worker that completes ``account.delete``, due later.
- ``group.sync``     a group was created or renamed; the actor re-reads it.
- ``group.delete``   a group was deleted; payload ``{"displayName"}``.
- ``group.sync`` also waits for a group the print system adds in the background: the worker
                     records a follow-up ``group.sync`` due a little later, payload
                     ``{"waits": n}``, instead of holding a worker thread.
- ``tenant.reconcile`` compare the tenant's print system with the records (periodically, or
                     ``printsync reconcile``); it records one ``account.repair`` per account that
                     drifted. Subject: the tenant's id.
- ``account.repair`` an account drifted behind printsync's back; payload ``{"userName",
                     "drift"}`` (what was found). The worker converges the account like
                     ``account.sync``.
- ``connector.test`` an operator asked for a connection test of the tenant's print system (the
                     console's "Test connection"); the subject is the tenant's id, and the worker
                     records what it found in ``connector_checks`` (``storage.downstream``).

The idempotency key (``effect_key``) is unique: recording the same key twice is a no-op. A key
is built from the effect's kind, ids and versions, never from user data (which has no bound),
and holds at most :data:`MAX_KEY_LENGTH` characters.

Timestamps are the fixed-width text of :mod:`storage.clock`, compared as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from storage.sql import row_reader

ACCOUNT_SYNC = "account.sync"
ACCOUNT_DELETE = "account.delete"
ACCOUNT_PURGE = "account.purge"
GROUP_SYNC = "group.sync"
GROUP_DELETE = "group.delete"
TENANT_RECONCILE = "tenant.reconcile"
ACCOUNT_REPAIR = "account.repair"
CONNECTOR_TEST = "connector.test"
KINDS = (
    ACCOUNT_SYNC,
    ACCOUNT_DELETE,
    ACCOUNT_PURGE,
    GROUP_SYNC,
    GROUP_DELETE,
    TENANT_RECONCILE,
    ACCOUNT_REPAIR,
    CONNECTOR_TEST,
)

#: The longest idempotency key (the column is ``String(200)``).
MAX_KEY_LENGTH: Final = 200

PENDING = "pending"
#: Recorded, but waiting for an operator's approval: a revocation or deletion beyond the
#: deprovisioning guard's threshold (``storage.guard``). The relay never claims it.
HELD = "held"
DONE = "done"
DEAD = "dead"
STATES = (PENDING, HELD, DONE, DEAD)
State = Literal["pending", "held", "done", "dead"]

#: The outbox's columns in the order :func:`effect_of` reads them, each a field of :class:`Effect`.
COLUMNS: Final = (
    "id, tenant_id, kind, subject_id, effect_key, payload, state, attempts, next_attempt_at,"
    " claimed_until, dispatched_at, completed_at, last_error, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Effect:
    """One outbox row."""

    id: int
    tenant_id: int
    kind: str
    subject_id: str
    effect_key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: str
    claimed_until: str | None
    dispatched_at: str | None
    completed_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str

    def summary(self) -> dict[str, Any]:
        """What an operator may see (payloads hold only names, never secrets)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "key": self.effect_key,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "dispatched_at": self.dispatched_at,
            "completed_at": self.completed_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "subject": subject_label(self.payload, None) or self.subject_id,
        }


@dataclass(frozen=True, slots=True)
class Claimed:
    """An effect claimed by a relay: what it needs to send the message."""

    id: int
    kind: str


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An effect to record later than now (see :func:`storage.outbox.lifecycle.complete`)."""

    kind: str
    subject_id: str
    key: str
    payload: dict[str, Any]
    due_at: str


def subject_label(payload: dict[str, Any], fallback: str | None) -> str | None:
    """The human name an effect is about: the payload's userName or displayName if it has one."""
    for key in ("userName", "displayName"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback


effect_of: Final = row_reader(
    Effect, COLUMNS.split(", "), payload=lambda payload: orjson.loads(payload) if payload else {}
)
"""The effect of an outbox row selected as :data:`COLUMNS`."""
