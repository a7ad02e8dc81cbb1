"""Figures about the outbox: pending and dead effects for the metrics, failures for the health
model and the failure digests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import orjson

from metrics.collectors import OutboxSnapshot
from storage import clock
from storage.database import Database, Row
from storage.outbox.effects import PENDING, subject_label
from storage.sql import Dialect, Statement, compile_text


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


#: The columns :func:`failure_of` reads, from the outbox ``o`` joined to ``users u`` and
#: ``groups g`` on the subject.
FAILURE_COLUMNS = (
    "o.id, o.kind, o.subject_id, o.last_error, o.attempts, o.updated_at, o.payload,"
    " u.user_name, g.display_name"
)


def failure_of(row: Row) -> Failure:
    """The failure of a row selected as :data:`FAILURE_COLUMNS`, named after the payload's
    userName or displayName, else the current userName or displayName, else the subject's id."""
    payload = orjson.loads(row[6]) if row[6] else {}
    return Failure(
        id=row[0],
        kind=row[1],
        subject_id=row[2],
        subject=subject_label(payload, row[7] or row[8]) or row[2],
        last_error=row[3] or "",
        attempts=row[4],
        updated_at=row[5],
    )


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    sql = {
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
        "scheduled": (
            "SELECT kind, count(*), min(created_at) FROM outbox"
            " WHERE tenant_id = :tenant AND state = 'pending' AND created_at > :now"
            " GROUP BY kind ORDER BY min(created_at), kind"
        ),
        "recent_failures": (
            f"SELECT {FAILURE_COLUMNS} FROM outbox o"
            " LEFT JOIN users u ON u.id = o.subject_id"
            " LEFT JOIN groups g ON g.id = o.subject_id"
            " WHERE o.tenant_id = :tenant AND o.state = 'dead' AND o.updated_at >= :since"
            " ORDER BY o.updated_at, o.id LIMIT :limit"
        ),
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


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


@dataclass(frozen=True, slots=True)
class ScheduledWork:
    """A tenant's effects of one kind that are scheduled for later (a purge after the retention
    period): how many, and when the first of them falls due."""

    kind: str
    count: int
    next_due_at: str

    def summary(self) -> dict[str, object]:
        return {"kind": self.kind, "count": self.count, "next_due_at": self.next_due_at}


async def scheduled(
    db: Database, tenant_id: int, now: datetime | None = None
) -> list[ScheduledWork]:
    """The tenant's pending effects that are not due yet, by kind, the soonest first; they are
    not pending work (nor lag) before they fall due."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["scheduled"], {"tenant": tenant_id, "now": clock.stamp(now)}
        )
    return [ScheduledWork(kind, int(count), first) for kind, count, first in rows]


async def recent_failures(
    db: Database, tenant_id: int, since: str, limit: int = 50
) -> list[Failure]:
    """The tenant's effects that went dead at or after ``since``, oldest first."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["recent_failures"],
            {"tenant": tenant_id, "since": since, "limit": limit},
        )
    return [failure_of(row) for row in rows]
