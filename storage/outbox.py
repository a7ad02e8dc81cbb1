"""The outbox: effects recorded in the same transaction as the change that implies them.

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

The idempotency key (``effect_key``) is unique: recording the same key twice is a no-op.

Life of an effect (``state``: ``pending`` -> ``done`` | ``dead``)::

    record ──> pending ──claim_due (lease)──> sent to the broker ──mark_dispatched
                  ^  │                                    │
                  │  └──begin (lease extended)──> converge ──complete──> done
                  │                                    │
                  │                   transient error: fail_transient (attempts + 1,
                  │                   next_attempt_at = now + backoff, claimed until then)
                  │                                    │
                  └──retry (operator)── dead <──give_up: permanent error, or the last attempt

Claiming is what makes several relays safe. On PostgreSQL a claim locks the rows it picks with
``FOR UPDATE SKIP LOCKED``, so concurrent relays take disjoint batches. SQLite has no row locks
(SQLAlchemy silently drops the clause), but its writers are serialised by ``BEGIN IMMEDIATE``, and a
claim is a single ``UPDATE`` that sets ``claimed_until`` only on rows whose lease is free. Either
way the lease is what lets a row be sent again: an effect claimed or sent by a process that died,
or whose broker message was lost, becomes claimable again once ``claimed_until`` has passed.

A scheduled effect (``schedule``) is recorded with ``created_at = next_attempt_at = due``: it comes
into being when it falls due, so it counts as pending (and ages) only from then on.

Timestamps are the fixed-width text of :mod:`storage.clock`, compared as text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import orjson

from metrics.collectors import OutboxSnapshot
from storage import clock
from storage.database import Connection, Database, Row
from storage.sql import Dialect, Statement, compile_text

ACCOUNT_SYNC = "account.sync"
ACCOUNT_DELETE = "account.delete"
ACCOUNT_PURGE = "account.purge"
GROUP_SYNC = "group.sync"
GROUP_DELETE = "group.delete"
KINDS = (ACCOUNT_SYNC, ACCOUNT_DELETE, ACCOUNT_PURGE, GROUP_SYNC, GROUP_DELETE)

PENDING = "pending"
DONE = "done"
DEAD = "dead"
STATES = (PENDING, DONE, DEAD)
State = Literal["pending", "done", "dead"]

_RECORD = (
    "INSERT INTO outbox (tenant_id, kind, subject_id, effect_key, payload, state, attempts,"
    " next_attempt_at, created_at, updated_at)"
    " VALUES (:tenant_id, :kind, :subject_id, :effect_key, :payload, 'pending', 0, :now, :now,"
    " :now)"
    " ON CONFLICT (effect_key) DO NOTHING"
)

_COLUMNS = (
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
    """An effect to record later than now (see :func:`complete`)."""

    kind: str
    subject_id: str
    key: str
    payload: dict[str, Any]
    due_at: str


@dataclass(frozen=True, slots=True)
class PendingStats:
    """Outbox figures for the metrics, read in one query.

    ``pending_by_kind`` counts pending effects that are due or have been tried (a scheduled purge
    is not pending before it falls due); ``oldest_pending_created_at`` is the oldest of them, None
    when there is none; ``dead_by_kind`` counts effects currently dead.
    """

    pending_by_kind: dict[str, int]
    dead_by_kind: dict[str, int]
    oldest_pending_created_at: str | None

    def snapshot(self, now: datetime | None = None) -> OutboxSnapshot:
        """The form :class:`metrics.collectors.OutboxCollector` reports."""
        age = 0.0
        if self.oldest_pending_created_at is not None:
            moment = clock.now() if now is None else now
            age = max(0.0, (moment - clock.parse(self.oldest_pending_created_at)).total_seconds())
        return OutboxSnapshot(
            pending_by_kind=dict(self.pending_by_kind),
            dead_by_kind=dict(self.dead_by_kind),
            oldest_pending_age_seconds=age,
        )


@dataclass(frozen=True, slots=True)
class Failure:
    """A dead effect, for failure digests: ``subject`` names the user or group."""

    id: int
    kind: str
    subject_id: str
    subject: str
    last_error: str
    attempts: int
    updated_at: str


def subject_label(payload: dict[str, Any], fallback: str | None) -> str | None:
    """The human name an effect is about: the payload's userName or displayName if it has one."""
    for key in ("userName", "displayName"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    if dialect == "postgresql":
        lock = " FOR UPDATE SKIP LOCKED"
        ids_match = "id = ANY(CAST(:ids AS integer[]))"
        unclaimed = expired = "outbox"
    else:
        lock = ""
        ids_match = "id IN (SELECT value FROM json_each(:ids))"
        # SQLite's planner, without statistics, prefers the (state, next_attempt_at) index.
        unclaimed = "outbox INDEXED BY ix_outbox_unclaimed"
        expired = "outbox INDEXED BY ix_outbox_claimed"
    sql = {
        # Effects never claimed come first, then those whose lease ran out, each through the
        # partial index of exactly its predicate: a backlog of effects claimed and waiting in
        # the broker is never visited.
        "claim": (
            "UPDATE outbox SET claimed_until = :until WHERE id IN ("
            f"SELECT id FROM (SELECT id FROM {unclaimed} WHERE state = 'pending'"
            " AND claimed_until IS NULL AND next_attempt_at <= :now"
            f" ORDER BY next_attempt_at, id LIMIT :limit{lock}) AS unclaimed"
            " UNION ALL "
            f"SELECT id FROM (SELECT id FROM {expired} WHERE state = 'pending'"
            " AND claimed_until IS NOT NULL AND claimed_until < :now AND next_attempt_at <= :now"
            f" ORDER BY claimed_until, id LIMIT :limit{lock}) AS expired"
            " LIMIT :limit) RETURNING id, kind"
        ),
        "dispatched": f"UPDATE outbox SET dispatched_at = :now WHERE {ids_match}",
        "release": (
            f"UPDATE outbox SET claimed_until = NULL WHERE {ids_match} AND state = 'pending'"
        ),
        "begin": (
            "UPDATE outbox SET claimed_until = :until WHERE id = :id AND state = 'pending'"
            f" RETURNING {_COLUMNS}"
        ),
        "get": f"SELECT {_COLUMNS} FROM outbox WHERE id = :id",
        "get_pending": f"SELECT {_COLUMNS} FROM outbox WHERE id = :id AND state = 'pending'",
        "complete": (
            "UPDATE outbox SET state = 'done', completed_at = :now, updated_at = :now,"
            " claimed_until = NULL, last_error = NULL WHERE id = :id AND state = 'pending'"
        ),
        "schedule": (
            "INSERT INTO outbox (tenant_id, kind, subject_id, effect_key, payload, state, attempts,"
            " next_attempt_at, created_at, updated_at) VALUES (:tenant_id, :kind, :subject_id,"
            " :effect_key, :payload, 'pending', 0, :due, :due, :now)"
            " ON CONFLICT (effect_key) DO NOTHING"
        ),
        "fail": (
            "UPDATE outbox SET attempts = attempts + 1, last_error = :error,"
            " next_attempt_at = :retry_at, claimed_until = :until, updated_at = :now"
            " WHERE id = :id AND state = 'pending' RETURNING attempts"
        ),
        "give_up": (
            "UPDATE outbox SET state = 'dead', attempts = attempts + :increment,"
            " last_error = :error, claimed_until = NULL, updated_at = :now"
            f" WHERE id = :id AND state = 'pending' RETURNING {_COLUMNS}"
        ),
        "list": (
            f"SELECT {_COLUMNS} FROM outbox WHERE tenant_id = :tenant ORDER BY id DESC LIMIT :limit"
        ),
        "list_state": (
            f"SELECT {_COLUMNS} FROM outbox WHERE tenant_id = :tenant AND state = :state"
            " ORDER BY id DESC LIMIT :limit"
        ),
        "retry": (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = :now,"
            " claimed_until = NULL, dispatched_at = NULL, completed_at = NULL, updated_at = :now"
            " WHERE id = :id AND tenant_id = :tenant AND state = 'dead'"
        ),
        "retry_dead": (
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = :now,"
            " claimed_until = NULL, dispatched_at = NULL, completed_at = NULL, updated_at = :now"
            " WHERE tenant_id = :tenant AND state = 'dead'"
        ),
        "stats": (
            "SELECT kind, state, count(*), min(created_at) FROM outbox"
            " WHERE (state = 'pending' AND created_at <= :now) OR state = 'dead'"
            " GROUP BY kind, state"
        ),
        "failure_stats": (
            "SELECT"
            " coalesce(sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0)"
            " FROM outbox WHERE tenant_id = :tenant AND updated_at >= :since"
        ),
        "recent_failures": (
            "SELECT o.id, o.kind, o.subject_id, o.last_error, o.attempts, o.updated_at,"
            " o.payload, u.user_name, g.display_name FROM outbox o"
            " LEFT JOIN users u ON u.id = o.subject_id"
            " LEFT JOIN groups g ON g.id = o.subject_id"
            " WHERE o.tenant_id = :tenant AND o.state = 'dead' AND o.updated_at >= :since"
            " ORDER BY o.updated_at, o.id LIMIT :limit"
        ),
        "prune": "DELETE FROM outbox WHERE state = 'done' AND completed_at < :before",
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


def _ids(dialect: Dialect, ids: Sequence[int]) -> Any:
    return list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()


def _effect(row: Row) -> Effect:
    return Effect(
        id=row[0],
        tenant_id=row[1],
        kind=row[2],
        subject_id=row[3],
        effect_key=row[4],
        payload=orjson.loads(row[5]) if row[5] else {},
        state=row[6],
        attempts=row[7],
        next_attempt_at=row[8],
        claimed_until=row[9],
        dispatched_at=row[10],
        completed_at=row[11],
        last_error=row[12],
        created_at=row[13],
        updated_at=row[14],
    )


# Recording (inside the caller's transaction) -----------------------------------------------------


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
    """Insert one effect inside the caller's transaction."""
    stamp = now or clock.stamp()
    await conn.execute(
        compile_text(_RECORD, dialect),
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "subject_id": subject_id,
            "effect_key": key,
            "payload": orjson.dumps(payload or {}).decode(),
            "now": stamp,
        },
    )


async def schedule(
    conn: Connection, dialect: Dialect, *, tenant_id: int, effect: Scheduled, now: str | None = None
) -> None:
    """Insert an effect that falls due at ``effect.due_at``, inside the caller's transaction."""
    await conn.execute(
        _statements(dialect)["schedule"],
        {
            "tenant_id": tenant_id,
            "kind": effect.kind,
            "subject_id": effect.subject_id,
            "effect_key": effect.key,
            "payload": orjson.dumps(effect.payload).decode(),
            "due": effect.due_at,
            "now": now or clock.stamp(),
        },
    )


# The relay's side --------------------------------------------------------------------------------


async def claim_due(
    db: Database, *, limit: int, lease_seconds: float, now: datetime | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` pending effects that are due and not leased, oldest first.

    The claim holds for ``lease_seconds``: the caller sends them, then calls
    :func:`mark_dispatched` (or :func:`release` for those it could not send).
    """
    moment = clock.now() if now is None else now
    params = {
        "now": clock.stamp(moment),
        "until": clock.later(lease_seconds, moment),
        "limit": limit,
    }
    async with db.transaction() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["claim"], params)
    return sorted((Claimed(row[0], row[1]) for row in rows), key=lambda claimed: claimed.id)


async def mark_dispatched(db: Database, ids: Sequence[int]) -> None:
    """Note that messages for these effects were handed to the broker."""
    if not ids:
        return
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["dispatched"],
            {"now": clock.stamp(), "ids": _ids(db.dialect, ids)},
        )


async def release(db: Database, ids: Sequence[int]) -> None:
    """Give up the claim on effects that could not be sent, so the next sweep takes them."""
    if not ids:
        return
    async with db.transaction() as conn:
        await conn.execute(_statements(db.dialect)["release"], {"ids": _ids(db.dialect, ids)})


# The worker's side -------------------------------------------------------------------------------


async def begin(
    db: Database,
    effect_id: int,
    *,
    lease_seconds: float,
    covered_seconds: float | None = None,
) -> Effect | None:
    """Load a pending effect for an attempt and extend its lease over the attempt.

    With ``covered_seconds``, a lease that still runs that long (the relay claimed the effect
    moments ago) is left as it is: the attempt costs a read instead of a write transaction.
    Returns None when the effect is done, dead or gone: a duplicate message is then skipped.
    """
    statements = _statements(db.dialect)
    if covered_seconds is not None:
        async with db.reader() as conn:
            row = await conn.fetchone(statements["get_pending"], {"id": effect_id})
        if row is None:
            return None
        effect = _effect(row)
        if effect.claimed_until is not None and effect.claimed_until >= clock.later(
            covered_seconds
        ):
            return effect
    async with db.transaction() as conn:
        row = await conn.fetchone(
            statements["begin"], {"id": effect_id, "until": clock.later(lease_seconds)}
        )
    return None if row is None else _effect(row)


async def get(db: Database, effect_id: int) -> Effect | None:
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["get"], {"id": effect_id})
    return None if row is None else _effect(row)


async def complete(
    db: Database,
    effect_id: int,
    *,
    tenant_id: int | None = None,
    follow_up: Scheduled | None = None,
    also: Callable[[Connection], Awaitable[None]] | None = None,
) -> bool:
    """Mark the effect done; record ``follow_up`` (for ``tenant_id``) and run ``also`` (e.g. the
    provisioning-log row of the success) in the same transaction.

    Returns False if the effect was no longer pending (another attempt finished it first); the
    follow-up and ``also`` are then skipped, because that attempt did them.
    """
    now = clock.stamp()
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        changed = await conn.execute(statements["complete"], {"id": effect_id, "now": now})
        if changed and follow_up is not None:
            assert tenant_id is not None, "a follow-up needs the tenant"
            await schedule(conn, db.dialect, tenant_id=tenant_id, effect=follow_up, now=now)
        if changed and also is not None:
            await also(conn)
    return bool(changed)


async def fail_transient(
    db: Database, effect_id: int, *, error: str, delay_seconds: float, lease_seconds: float
) -> int | None:
    """Count a failed attempt that will be retried after ``delay_seconds``.

    The effect stays claimed until the retry is due plus ``lease_seconds``, so the sweeper does
    not send it again while the broker holds the delayed retry; if that retry is lost, the
    sweeper sends the effect once the claim runs out. Returns the new attempt count (None if the
    effect was no longer pending).
    """
    moment = clock.now()
    async with db.transaction() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["fail"],
            {
                "id": effect_id,
                "error": error,
                "now": clock.stamp(moment),
                "retry_at": clock.later(delay_seconds, moment),
                "until": clock.later(delay_seconds + lease_seconds, moment),
            },
        )
    return None if row is None else int(row[0])


async def give_up(
    db: Database, effect_id: int, *, error: str, count_attempt: bool = True
) -> Effect | None:
    """Mark a pending effect dead with its error (a permanent error, or no retries left).

    ``count_attempt`` adds the attempt that just failed to ``attempts``. Returns the dead effect,
    or None if it was no longer pending.
    """
    async with db.transaction() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["give_up"],
            {
                "id": effect_id,
                "error": error,
                "now": clock.stamp(),
                "increment": 1 if count_attempt else 0,
            },
        )
    return None if row is None else _effect(row)


# Operators' side ----------------------------------------------------------------------------------


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
    return [_effect(row) for row in rows]


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


# Metrics and digests ------------------------------------------------------------------------------


async def pending_stats(db: Database, now: datetime | None = None) -> PendingStats:
    """Pending effects by kind with the oldest one's creation time, and dead effects by kind."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["stats"], {"now": clock.stamp(now)})
    pending: dict[str, int] = {}
    dead: dict[str, int] = {}
    oldest: str | None = None
    for kind, state, count, first in rows:
        if state == PENDING:
            pending[kind] = int(count)
            oldest = first if oldest is None or first < oldest else oldest
        else:
            dead[kind] = int(count)
    return PendingStats(pending, dead, oldest)


async def failure_stats(db: Database, tenant_id: int, since: str) -> tuple[int, int, int]:
    """Effects of the tenant last changed at or after ``since``: (succeeded, failing, dead).

    ``failing`` counts effects still pending after at least one failed attempt.
    """
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["failure_stats"], {"tenant": tenant_id, "since": since}
        )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def recent_failures(
    db: Database, tenant_id: int, since: str, limit: int = 50
) -> list[Failure]:
    """The tenant's effects that went dead at or after ``since``, oldest first."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["recent_failures"],
            {"tenant": tenant_id, "since": since, "limit": limit},
        )
    failures = []
    for row in rows:
        payload = orjson.loads(row[6]) if row[6] else {}
        label = subject_label(payload, row[7] or row[8]) or row[2]
        failures.append(
            Failure(
                id=row[0],
                kind=row[1],
                subject_id=row[2],
                subject=label,
                last_error=row[3] or "",
                attempts=row[4],
                updated_at=row[5],
            )
        )
    return failures
