"""The life of an effect after it is recorded: the relay's claims and the worker's attempts.

Life of an effect (``state``: ``pending`` -> ``done`` | ``dead``)::

    record ──> pending ──claim_due (lease)──> sent to the broker ──mark_dispatched
                  ^  │                                    │
                  │  └──begin (lease extended)──> converge ──complete──> done
                  │                                    │
                  │                   transient error: fail_transient (attempts + 1,
                  │                   next_attempt_at = now + backoff, claimed until then)
                  │                                    │
                  └──retry (operator)── dead <──give_up: permanent error, or the last attempt

A revocation beyond the deprovisioning guard's threshold is recorded ``held`` instead
(``storage.guard``): nothing here claims it until an operator's approval makes it pending.

Claiming is what makes several relays safe. On PostgreSQL a claim locks the rows it picks with
``FOR UPDATE SKIP LOCKED``, so concurrent relays take disjoint batches. SQLite has no row locks
(SQLAlchemy silently drops the clause), but its writers are serialised by ``BEGIN IMMEDIATE``, and a
claim is a single ``UPDATE`` that sets ``claimed_until`` only on rows whose lease is free. Either
way the lease is what lets a row be sent again: an effect claimed or sent by a process that died,
or whose broker message was lost, becomes claimable again once ``claimed_until`` has passed.

The relay's functions and :func:`begin` run their own transactions. :func:`complete`,
:func:`fail_transient` and :func:`give_up` take a connection, so that the worker ends an attempt
and logs its outcome (``storage.provisioning_log``) in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from storage import clock
from storage.database import Connection, Database
from storage.outbox.effects import COLUMNS, Claimed, Effect, Scheduled, effect_of
from storage.outbox.recording import schedule
from storage.sql import Dialect, Statement, compile_text


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
            f" RETURNING {COLUMNS}"
        ),
        "get": f"SELECT {COLUMNS} FROM outbox WHERE id = :id",
        "get_pending": f"SELECT {COLUMNS} FROM outbox WHERE id = :id AND state = 'pending'",
        "complete": (
            "UPDATE outbox SET state = 'done', completed_at = :now, updated_at = :now,"
            " claimed_until = NULL, last_error = NULL WHERE id = :id AND state = 'pending'"
        ),
        "fail": (
            "UPDATE outbox SET attempts = attempts + 1, last_error = :error,"
            " next_attempt_at = :retry_at, claimed_until = :until, updated_at = :now"
            " WHERE id = :id AND state = 'pending' RETURNING attempts"
        ),
        "abandon": (
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = :error,"
            " claimed_until = NULL, updated_at = :now WHERE id = :id AND state = 'pending'"
        ),
        "give_up": (
            "UPDATE outbox SET state = 'dead', attempts = attempts + :increment,"
            " last_error = :error, claimed_until = NULL, updated_at = :now"
            f" WHERE id = :id AND state = 'pending' RETURNING {COLUMNS}"
        ),
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


def _ids(dialect: Dialect, ids: Sequence[int]) -> Any:
    return list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()


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
        effect = effect_of(row)
        if effect.claimed_until is not None and effect.claimed_until >= clock.later(
            covered_seconds
        ):
            return effect
    async with db.transaction() as conn:
        row = await conn.fetchone(
            statements["begin"], {"id": effect_id, "until": clock.later(lease_seconds)}
        )
    return None if row is None else effect_of(row)


async def get(db: Database, effect_id: int) -> Effect | None:
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["get"], {"id": effect_id})
    return None if row is None else effect_of(row)


async def complete(
    conn: Connection,
    dialect: Dialect,
    effect_id: int,
    *,
    tenant_id: int | None = None,
    follow_up: Scheduled | None = None,
) -> bool:
    """Mark the effect done and record ``follow_up`` (for ``tenant_id``), inside the caller's
    transaction.

    Returns False if the effect was no longer pending (another attempt finished it first); the
    follow-up is then skipped, because that attempt recorded it.
    """
    now = clock.stamp()
    changed = await conn.execute(_statements(dialect)["complete"], {"id": effect_id, "now": now})
    if changed and follow_up is not None:
        assert tenant_id is not None, "a follow-up needs the tenant"
        await schedule(conn, dialect, tenant_id=tenant_id, effect=follow_up, now=now)
    return bool(changed)


async def fail_transient(
    conn: Connection,
    dialect: Dialect,
    effect_id: int,
    *,
    error: str,
    delay_seconds: float,
    lease_seconds: float,
) -> int | None:
    """Count a failed attempt that will be retried after ``delay_seconds``, inside the caller's
    transaction.

    The effect stays claimed until the retry is due plus ``lease_seconds``, so the sweeper does
    not send it again while the broker holds the delayed retry; if that retry is lost, the
    sweeper sends the effect once the claim runs out. Returns the new attempt count (None if the
    effect was no longer pending).
    """
    moment = clock.now()
    row = await conn.fetchone(
        _statements(dialect)["fail"],
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
    conn: Connection, dialect: Dialect, effect_id: int, *, error: str, count_attempt: bool = True
) -> Effect | None:
    """Mark a pending effect dead with its error (a permanent error, or no retries left), inside
    the caller's transaction.

    ``count_attempt`` adds the attempt that just failed to ``attempts``. Returns the dead effect,
    or None if it was no longer pending.
    """
    row = await conn.fetchone(
        _statements(dialect)["give_up"],
        {
            "id": effect_id,
            "error": error,
            "now": clock.stamp(),
            "increment": 1 if count_attempt else 0,
        },
    )
    return None if row is None else effect_of(row)


async def abandon(conn: Connection, dialect: Dialect, effect_id: int, *, error: str) -> bool:
    """Mark a pending effect dead with ``error`` without reading it (its row could not be
    read), inside the caller's transaction; whether it was pending."""
    changed = await conn.execute(
        _statements(dialect)["abandon"], {"id": effect_id, "error": error, "now": clock.stamp()}
    )
    return bool(changed)
