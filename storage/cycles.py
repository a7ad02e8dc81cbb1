"""Entra's provisioning cycles, seen from here.

Entra ID provisions in cycles: an initial one over everyone in scope, then incremental ones about
every 40 minutes. printsync answers every request, so it recognises a cycle from the traffic: a
burst of SCIM requests after a quiet gap of ``gap_seconds`` (``PRINTSYNC_CYCLE_GAP_SECONDS``,
default 300). A tenant's first cycle, or one whose writes are mostly creates, is an initial one.

Nothing is added to the request path: the API's provisioning-log buffer
(:mod:`storage.provisioning_log.buffer`) hands each batch it writes to :func:`record`, in the
same transaction. The batch's SCIM entries are tallied per tenant (probe = a GET, create,
update, disable = a change to ``active`` false, delete, group change, failed = a 4xx or 5xx),
split where the tenant was quiet for longer than the gap, and each part is merged into the
tenant's cycle it touches (a stored cycle whose span, widened by the gap on both sides, overlaps
it) or starts a new one. Several API processes flush parts of the same burst: merging by overlap
(start = the earliest, end = the latest, counts added) makes their cycle one row, and a lock per
tenant (an advisory transaction lock on PostgreSQL; SQLite serialises writers) keeps two flushes
from both starting it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson
from pydantic import BaseModel

from storage import clock
from storage.database import Connection, Database, Row
from storage.sql import Dialect, Statement, compile_text

#: Entra's documented interval between incremental cycles, until the history tells another.
DEFAULT_INTERVAL_SECONDS: Final = 40 * 60
#: Cycles read to estimate the interval.
HISTORY: Final = 6
#: The first key of the advisory lock that serialises a tenant's cycle merges (PostgreSQL).
_LOCK_SPACE: Final = 0x0C7C1E

#: The tallies a cycle keeps, in the order of the table's columns.
COUNTS: Final = (
    "requests",
    "probes",
    "created",
    "updated",
    "disabled",
    "deleted",
    "group_changes",
    "failed",
)
_REQUESTS, _PROBES, _CREATED, _UPDATED, _DISABLED, _DELETED, _GROUPS, _FAILED = range(8)


class CycleSettings(BaseModel):
    """``PRINTSYNC_CYCLE_GAP_SECONDS``: a quiet spell this long ends a cycle."""

    gap_seconds: float = 300


@dataclass(slots=True)
class _Part:
    """Consecutive SCIM requests of one tenant with no gap longer than the cycle gap."""

    first: datetime
    last: datetime
    counts: list[int]


def tally(operation: str, status: int, changes: str | None) -> int | None:
    """The kind (an index into :data:`COUNTS`) of one SCIM request, or None for one that is
    only counted as a request."""
    if status >= 400:
        return _FAILED
    method, _, path = operation.partition(" ")
    if method == "GET":
        return _PROBES
    if path.startswith("/Groups"):
        return _GROUPS
    if not path.startswith("/Users"):
        return None
    if method == "POST":
        return _CREATED
    if method == "DELETE":
        return _DELETED
    if changes and '"active"' in changes:
        detail = orjson.loads(changes)
        active = detail.get("active") if isinstance(detail, dict) else None
        if isinstance(active, list) and active and active[-1] is False:
            return _DISABLED
    return _UPDATED


def parts(
    rows: Sequence[tuple[int, str, str, int, str | None]], gap_seconds: float
) -> dict[int, list[_Part]]:
    """``rows`` (tenant, time, operation, status, changes) as each tenant's parts, split at
    quiet spells longer than ``gap_seconds``."""
    found: dict[int, list[_Part]] = {}
    gap = timedelta(seconds=gap_seconds)
    for tenant, stamp, operation, status, changes in sorted(rows, key=lambda row: row[:2]):
        moment = clock.parse(stamp)
        tenant_parts = found.setdefault(tenant, [])
        if not tenant_parts or moment - tenant_parts[-1].last > gap:
            tenant_parts.append(_Part(moment, moment, [0] * len(COUNTS)))
        part = tenant_parts[-1]
        part.last = max(part.last, moment)
        part.counts[_REQUESTS] += 1
        kind = tally(operation, status, changes)
        if kind is not None:
            part.counts[kind] += 1
    return found


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    columns = ", ".join(COUNTS)
    sql = {
        "touching": (
            "SELECT id FROM sync_cycles WHERE tenant_id = :tenant AND started_at <= :reach_end"
            " AND ended_at >= :reach_start ORDER BY started_at DESC LIMIT 1"
        ),
        "earlier": (
            "SELECT 1 FROM sync_cycles WHERE tenant_id = :tenant AND started_at < :first LIMIT 1"
        ),
        "merge": (
            "UPDATE sync_cycles SET"
            " started_at = CASE WHEN started_at < :first THEN started_at ELSE :first END,"
            " ended_at = CASE WHEN ended_at > :last THEN ended_at ELSE :last END, "
            + ", ".join(f"{name} = {name} + :{name}" for name in COUNTS)
            + " WHERE id = :id"
        ),
        "insert": (
            f"INSERT INTO sync_cycles (tenant_id, started_at, ended_at, first, {columns})"
            f" VALUES (:tenant, :first, :last, :is_first, "
            + ", ".join(f":{name}" for name in COUNTS)
            + ")"
        ),
        "recent": (
            f"SELECT started_at, ended_at, first, {columns} FROM sync_cycles"
            " WHERE tenant_id = :tenant ORDER BY started_at DESC LIMIT :limit"
        ),
        "latest_all": (
            "SELECT t.name, c.started_at, c.ended_at, c.requests FROM sync_cycles c"
            " JOIN tenants t ON t.id = c.tenant_id WHERE c.started_at ="
            " (SELECT max(started_at) FROM sync_cycles WHERE tenant_id = c.tenant_id)"
        ),
    }
    if dialect == "postgresql":
        sql["lock"] = "SELECT pg_advisory_xact_lock(:space, :tenant)"
    return {name: compile_text(text, dialect) for name, text in sql.items()}


async def record(
    conn: Connection,
    dialect: Dialect,
    rows: Sequence[tuple[int, str, str, int, str | None]],
    gap_seconds: float,
) -> None:
    """Merge the SCIM requests ``rows`` (tenant, time, operation, status, changes) into their
    tenants' cycles, inside the caller's transaction."""
    statements = _statements(dialect)
    for tenant, tenant_parts in sorted(parts(rows, gap_seconds).items()):
        if "lock" in statements:
            await conn.fetchone(statements["lock"], {"space": _LOCK_SPACE, "tenant": tenant})
        for part in tenant_parts:
            await _merge(conn, statements, tenant, part, gap_seconds)


async def _merge(
    conn: Connection, statements: dict[str, Statement], tenant: int, part: _Part, gap: float
) -> None:
    first, last = clock.stamp(part.first), clock.stamp(part.last)
    counts = dict(zip(COUNTS, part.counts, strict=True))
    found = await conn.fetchone(
        statements["touching"],
        {
            "tenant": tenant,
            "reach_end": clock.later(gap, part.last),
            "reach_start": clock.later(-gap, part.first),
        },
    )
    if found is not None:
        await conn.execute(
            statements["merge"], {"id": found[0], "first": first, "last": last, **counts}
        )
        return
    earlier = await conn.fetchone(statements["earlier"], {"tenant": tenant, "first": first})
    await conn.execute(
        statements["insert"],
        {"tenant": tenant, "first": first, "last": last, "is_first": earlier is None, **counts},
    )


@dataclass(frozen=True, slots=True)
class Cycle:
    """One recorded cycle."""

    started_at: str
    ended_at: str
    first: bool
    requests: int
    probes: int
    created: int
    updated: int
    disabled: int
    deleted: int
    group_changes: int
    failed: int

    @property
    def initial(self) -> bool:
        """The tenant's first cycle, or one whose writes are mostly creates."""
        writes = self.created + self.updated + self.disabled + self.deleted + self.group_changes
        return self.first or (self.created > 0 and self.created * 2 > writes)

    @property
    def duration_seconds(self) -> float:
        return (clock.parse(self.ended_at) - clock.parse(self.started_at)).total_seconds()

    def running(self, now: datetime, gap_seconds: float) -> bool:
        return now - clock.parse(self.ended_at) <= timedelta(seconds=gap_seconds)

    def as_dict(self, now: datetime, gap_seconds: float) -> dict[str, Any]:
        duration = self.duration_seconds
        return {
            "state": "running" if self.running(now, gap_seconds) else "idle",
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "initial": self.initial,
            "requests": self.requests,
            "probes": self.probes,
            "created": self.created,
            "updated": self.updated,
            "disabled": self.disabled,
            "deleted": self.deleted,
            "group_changes": self.group_changes,
            "failed": self.failed,
            "duration_seconds": round(duration, 3),
            "requests_per_second": round(self.requests / duration, 2) if duration > 0 else None,
        }


def _cycle(row: Row) -> Cycle:
    return Cycle(row[0], row[1], bool(row[2]), *(int(value) for value in row[3:]))


async def recent(db: Database, tenant_id: int, limit: int = HISTORY) -> list[Cycle]:
    """The tenant's latest cycles, newest first."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["recent"], {"tenant": tenant_id, "limit": limit}
        )
    return [_cycle(row) for row in rows]


@dataclass(frozen=True, slots=True)
class CycleView:
    """What a tenant's status says about its cycles: the running or last one, and when the next
    is expected (None while one runs, or before any was seen)."""

    cycle: Cycle | None
    running: bool
    next_expected_at: str | None
    now: datetime
    gap_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycle": None if self.cycle is None else self.cycle.as_dict(self.now, self.gap_seconds),
            "next_expected_at": self.next_expected_at,
        }

    def sentence(self) -> str:
        """The tenant's cycle in one sentence."""
        cycle = self.cycle
        if cycle is None:
            return "No provisioning cycle from Entra ID seen yet."
        kind = "initial" if cycle.initial else "incremental"
        counts = (
            f"{cycle.created} created, {cycle.updated} updated, {cycle.disabled} disabled, "
            f"{cycle.deleted} deleted, {cycle.failed} failed"
        )
        requests = f"{cycle.requests} request" + ("" if cycle.requests == 1 else "s")
        rate = cycle.as_dict(self.now, self.gap_seconds)["requests_per_second"]
        pace = f", {rate} per second" if rate is not None else ""
        if self.running:
            return (
                f"An {kind} cycle is running since {when(cycle.started_at)}: "
                f"{requests} so far ({counts}){pace}."
            )
        return (
            f"The last cycle ({kind}) ran from {when(cycle.started_at)} to "
            f"{when(cycle.ended_at)}: {requests} ({counts}){pace}; the next is "
            f"expected around {when(self.next_expected_at)}."
        )


def when(stamp: str | None) -> str:
    """A stored time as people read it: ``2026-01-02 03:04:05 UTC``."""
    return "unknown" if stamp is None else stamp[:19].replace("T", " ") + " UTC"


def view(cycles: Sequence[Cycle], gap_seconds: float, now: datetime | None = None) -> CycleView:
    """The status of the tenant whose latest cycles (newest first) are ``cycles``. The next is
    expected after the last one ended, by the average quiet time between the cycles before it
    (Entra's 40 minutes until there are two)."""
    moment = clock.now() if now is None else now
    if not cycles:
        return CycleView(None, False, None, moment, gap_seconds)
    latest = cycles[0]
    running = latest.running(moment, gap_seconds)
    expected = None
    if not running:
        quiet = [
            (clock.parse(newer.started_at) - clock.parse(older.ended_at)).total_seconds()
            for newer, older in itertools.pairwise(cycles)
        ]
        interval = sum(quiet) / len(quiet) if quiet else DEFAULT_INTERVAL_SECONDS
        expected = clock.later(interval, clock.parse(latest.ended_at))
    return CycleView(latest, running, expected, moment, gap_seconds)


async def latest_by_tenant(db: Database) -> list[tuple[str, str, str, int]]:
    """(tenant name, started_at, ended_at, requests) of each tenant's latest cycle."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["latest_all"], {})
    return [(str(row[0]), row[1], row[2], int(row[3])) for row in rows]
