"""The provisioning log: what happened to each user and group of a tenant, and when.

Every SCIM operation and every effect outcome becomes one entry: time, tenant, source (``scim`` or
``effect``), operation (``POST /Users``, ``PATCH /Groups``, ``account.sync``), target (id and
userName or displayName), result, HTTP status and error text. Operators read it to answer "what
happened to this user" (``printsync log --user``, ``GET /admin/log``), and the health model counts
its recent results.

Two writers:

- The API appends to a :class:`LogBuffer` on every SCIM request. ``append`` only puts a tuple on
  a bounded deque: no formatting, no I/O. A task started by the API writes the buffer in batches,
  one transaction per batch (every ``flush_interval_seconds`` or as soon as ``flush_rows`` are
  waiting), and prunes the table now and then. When the database stays unreachable the buffer
  keeps its newest ``buffer_rows`` entries and counts what it had to drop.
- Workers record effect outcomes directly with :func:`record_effect` (or :func:`write` for a
  batch), one transaction per call.

Entries never carry tokens, PINs or card numbers: error texts pass through :func:`clean_error`,
which masks bearer tokens, printsync tokens, ``pin=…``/``card…=…``/``password=…`` pairs and long
digit runs, and truncates to 500 characters. Callers still must not put secrets or SCIM payloads
in ``error``.

Retention: entries older than ``retention_days`` and, per tenant, all but the newest
``max_rows_per_tenant`` are deleted in bounded batches, so pruning never holds the database (or,
on SQLite, the event loop) for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time as _time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson
import structlog
from pydantic import BaseModel

from metrics.logs import redact_value
from storage import clock, outbox
from storage.database import Connection, Database, Row
from storage.sql import Dialect, Statement, compile_text

_log = structlog.get_logger(__name__)

SCIM: Final = "scim"
EFFECT: Final = "effect"
SOURCES: Final = (SCIM, EFFECT)

SUCCESS: Final = "success"
CLIENT_ERROR: Final = "client_error"
SERVER_ERROR: Final = "server_error"
FAILED: Final = "failed"
DEAD: Final = "dead"
RETRIED: Final = "retried"
#: Every result an entry may have: SCIM requests end in success, client_error (4xx) or
#: server_error (5xx); effect attempts in success, retried (transient error, another attempt
#: follows), failed (permanent error) or dead (retries exhausted).
RESULTS: Final = (SUCCESS, CLIENT_ERROR, SERVER_ERROR, FAILED, DEAD, RETRIED)

MAX_ERROR_CHARS: Final = 500
MAX_TARGET_CHARS: Final = 256
MAX_OPERATION_CHARS: Final = 64
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 5000
#: Rows one prune statement deletes at most; small enough to keep each transaction short.
PRUNE_BATCH: Final = 2000

_COLUMNS: Final = (
    "time",
    "tenant_id",
    "source",
    "operation",
    "target_id",
    "target_name",
    "target_name_ci",
    "result",
    "status",
    "error",
)
#: Rows per INSERT statement; a batch is written as a few statements of these sizes. 64 rows of
#: 10 columns stay under SQLite's oldest bound-parameter limit (999).
_CHUNKS: Final = (64, 8, 1)


class LogSettings(BaseModel):
    """Buffering and retention of the provisioning log (``PRINTSYNC_PROVISIONING_LOG_*``, whose
    ranges the composition root checks; the defaults here are the same)."""

    #: Entries older than this many days are deleted.
    retention_days: float = 14
    #: At most this many entries are kept per tenant (the newest).
    max_rows_per_tenant: int = 1_000_000
    #: The API writes its buffer at least this often...
    flush_interval_seconds: float = 0.5
    #: ...and as soon as this many entries wait (also the rows of one transaction).
    flush_rows: int = 500
    #: Entries the API keeps in memory while the database is unreachable; older ones are dropped.
    buffer_rows: int = 100_000
    #: How often the flush task prunes the table.
    prune_interval_seconds: float = 3600


@dataclass(frozen=True, slots=True)
class Entry:
    """One provisioning-log entry. ``id`` is set on entries read back from the table."""

    time: str
    tenant_id: int
    source: str
    operation: str
    result: str
    target_id: str | None = None
    target_name: str | None = None
    status: int | None = None
    error: str | None = None
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_of(status: int) -> str:
    """The result of a SCIM request answered with ``status``."""
    if status >= 500:
        return SERVER_ERROR
    if status >= 400:
        return CLIENT_ERROR
    return SUCCESS


_SECRET_PAIR: Final = re.compile(
    r"(?i)\b((?:[\w-]*(?:pin|password|passwd|secret|token|card[\w-]*))\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_PRINTSYNC_TOKEN: Final = re.compile(r"\bpst_[A-Za-z0-9_-]{8,}")
_LONG_NUMBER: Final = re.compile(r"(?<![\w.])\d[\d -]{6,}\d(?![\w.])")


def clean_error(text: str | None) -> str | None:
    """An error text fit for the log: secrets masked, one line, at most 500 characters."""
    if text is None:
        return None
    masked = redact_value(text)
    assert isinstance(masked, str)
    masked = _SECRET_PAIR.sub(r"\1***", masked)
    masked = _PRINTSYNC_TOKEN.sub("pst_***", masked)
    masked = _LONG_NUMBER.sub(_mask_digits, masked)
    flat = " ".join(masked.split())
    if len(flat) > MAX_ERROR_CHARS:
        flat = flat[: MAX_ERROR_CHARS - 3] + "..."
    return flat or None


def _mask_digits(match: re.Match[str]) -> str:
    # Eight or more digits (possibly grouped) look like a card number; shorter runs stay.
    digits = sum(char.isdigit() for char in match.group(0))
    return "***" if digits >= 8 else match.group(0)


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]


def entry(
    tenant_id: int,
    operation: str,
    result: str,
    *,
    source: str = EFFECT,
    target_id: str | None = None,
    target_name: str | None = None,
    status: int | None = None,
    error: str | None = None,
    time: str | None = None,
) -> Entry:
    """An entry with its fields checked and cleaned (the workers' way to build one)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    if result not in RESULTS:
        raise ValueError(f"result must be one of {', '.join(RESULTS)}")
    return Entry(
        time=time or clock.stamp(),
        tenant_id=tenant_id,
        source=source,
        operation=_clip(operation, MAX_OPERATION_CHARS) or "",
        result=result,
        target_id=_clip(target_id, MAX_TARGET_CHARS),
        target_name=_clip(target_name, MAX_TARGET_CHARS),
        status=status,
        error=clean_error(error),
    )


# Writing ----------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _insert(dialect: Dialect, rows: int) -> Statement:
    values = ", ".join(
        "(" + ", ".join(f":{column}_{index}" for column in _COLUMNS) + ")" for index in range(rows)
    )
    sql = f"INSERT INTO provisioning_log ({', '.join(_COLUMNS)}) VALUES {values}"
    return compile_text(sql, dialect)


#: One row as inserted: the values of ``_COLUMNS`` in order.
_Row = tuple[Any, ...]


@lru_cache(maxsize=8)
def _names(rows: int) -> tuple[str, ...]:
    return tuple(f"{column}_{index}" for index in range(rows) for column in _COLUMNS)


def _row(item: Entry) -> _Row:
    name = item.target_name
    return (
        item.time,
        item.tenant_id,
        item.source,
        item.operation,
        item.target_id,
        name,
        name.lower() if name is not None else None,
        item.result,
        item.status,
        item.error,
    )


async def write(db: Database, entries: Sequence[Entry]) -> None:
    """Insert ``entries`` in one transaction (a few multi-row INSERTs)."""
    await _write_rows(db, [_row(item) for item in entries])


async def _write_rows(db: Database, rows: Sequence[_Row]) -> None:
    if not rows:
        return
    async with db.transaction() as conn:
        await _insert_rows(conn, db.dialect, rows)


async def _insert_rows(conn: Connection, dialect: Dialect, rows: Sequence[_Row]) -> None:
    start = 0
    for size in _CHUNKS:
        while len(rows) - start >= size:
            values = [value for row in rows[start : start + size] for value in row]
            await conn.execute(_insert(dialect, size), dict(zip(_names(size), values, strict=True)))
            start += size


def _effect_entry(effect: outbox.Effect, result: str, error: str | None) -> Entry:
    return entry(
        effect.tenant_id,
        effect.kind,
        result,
        source=EFFECT,
        target_id=effect.subject_id,
        target_name=outbox.subject_label(effect.payload, None),
        error=error,
    )


async def record_effect(
    db: Database, effect: outbox.Effect, result: str, *, error: str | None = None
) -> None:
    """Log one effect outcome (``success``, ``retried``, ``failed`` or ``dead``) for the
    effect's tenant and subject; one short transaction. Workers call it after marking the
    outbox row, e.g. ``store.run(provisioning_log.record_effect, effect, "dead", error=text)``.
    """
    await write(db, [_effect_entry(effect, result, error)])


async def complete_effect(
    db: Database, effect: outbox.Effect, *, follow_up: outbox.Scheduled | None = None
) -> bool:
    """Mark the effect done (``outbox.complete``) and log its success in the same transaction:
    one write instead of two, and the log never tells of a success the outbox does not hold."""
    row = _row(_effect_entry(effect, "success", None))

    async def log(conn: Connection) -> None:
        await _insert_rows(conn, db.dialect, [row])

    return await outbox.complete(
        db, effect.id, tenant_id=effect.tenant_id, follow_up=follow_up, also=log
    )


# The API's buffer -------------------------------------------------------------------------------

#: A buffered SCIM entry: (unix time, tenant_id, operation, status, target_id, target_name,
#: error); turned into an Entry only when the buffer is written.
_Buffered = tuple[float, int, str, int, str | None, str | None, str | None]

#: A batch that failed to write is tried this many times before it is dropped.
_WRITE_ATTEMPTS: Final = 3


class LogBuffer:
    """In-memory, bounded buffer of SCIM log entries, written in batches by :meth:`run`.

    ``append`` is O(1) and never touches the database. Call it on the event loop's thread (it
    may wake the flush task). Start the flush task with :meth:`start` once the database is open
    and stop it with :meth:`close`, which writes what is left.
    """

    def __init__(self, settings: LogSettings | None = None) -> None:
        self.settings = settings or LogSettings()
        self._rows: deque[_Buffered] = deque()
        self._capacity = self.settings.buffer_rows
        self._batch = self.settings.flush_rows
        self._retry: list[_Row] | None = None
        self._second = -1
        self._prefix = ""
        self._retry_attempts = 0
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Entries dropped because the buffer was full or a batch could not be written.
        self.dropped = 0
        #: Entries written so far.
        self.written = 0

    def __len__(self) -> int:
        return len(self._rows) + (len(self._retry) if self._retry else 0)

    def append(
        self,
        tenant_id: int,
        operation: str,
        status: int,
        *,
        target_id: str | None = None,
        target_name: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record one SCIM operation answered with ``status`` (the result follows from it)."""
        rows = self._rows
        if len(rows) >= self._capacity:
            rows.popleft()
            self.dropped += 1
        rows.append((_time.time(), tenant_id, operation, status, target_id, target_name, error))
        if len(rows) >= self._batch and self._wake is not None:
            self._wake.set()

    def _take(self) -> list[_Row]:
        rows = self._rows
        taken: list[_Row] = []
        for _ in range(min(len(rows), self._batch)):
            moment, tenant_id, operation, status, target_id, target_name, error = rows.popleft()
            if target_name is not None and len(target_name) > MAX_TARGET_CHARS:
                target_name = target_name[:MAX_TARGET_CHARS]
            taken.append(
                (
                    self._stamp(moment),
                    tenant_id,
                    SCIM,
                    operation[:MAX_OPERATION_CHARS],
                    _clip(target_id, MAX_TARGET_CHARS),
                    target_name,
                    target_name.lower() if target_name is not None else None,
                    result_of(status),
                    status,
                    clean_error(error) if error is not None else None,
                )
            )
        return taken

    def _stamp(self, moment: float) -> str:
        """``clock.stamp`` of a Unix time, formatting each second only once."""
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((moment - second) * 1_000_000):06d}Z"

    async def flush(self, db: Database) -> int:
        """Write one batch (at most ``flush_rows`` entries) in one transaction; return its size.

        A batch that fails is kept and tried first next time; after three failures it is
        dropped and counted in :attr:`dropped`. The error is raised to the caller.
        """
        batch = self._retry if self._retry is not None else self._take()
        if not batch:
            return 0
        # Kept until written, so a failure or a cancellation never loses the batch silently.
        self._retry = batch
        try:
            await _write_rows(db, batch)
        except Exception:
            self._retry_attempts += 1
            if self._retry_attempts >= _WRITE_ATTEMPTS:
                self.dropped += len(batch)
                self._retry, self._retry_attempts = None, 0
            raise
        self._retry, self._retry_attempts = None, 0
        self.written += len(batch)
        return len(batch)

    async def drain(self, db: Database) -> int:
        """Write everything buffered, batch by batch; return the number of entries written."""
        total = 0
        while len(self):
            total += await self.flush(db)
            await asyncio.sleep(0)
        return total

    def start(self, db: Database) -> asyncio.Task[None]:
        """Start the flush task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("the provisioning-log flush task is already running")
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self.run(db), name="provisioning-log-flush"
        )
        return self._task

    async def close(self, db: Database) -> None:
        """Stop the flush task and write what is left (best effort)."""
        task, self._task = self._task, None
        if task is not None and self._stop is not None and self._wake is not None:
            self._stop.set()
            self._wake.set()
            await task
        try:
            await self.drain(db)
        except Exception as error:  # shutting down: report, do not mask the shutdown
            _log.warning(
                "provisioning_log_final_flush_failed", error=type(error).__name__, lost=len(self)
            )
        self._wake = self._stop = None

    async def run(self, db: Database) -> None:
        """Flush every ``flush_interval_seconds`` (or when a batch is full) until stopped;
        prune every ``prune_interval_seconds`` (the first time after one minute)."""
        wake, stop = self._wake, self._stop
        if wake is None or stop is None:
            wake = self._wake = asyncio.Event()
            stop = self._stop = asyncio.Event()
        interval = self.settings.flush_interval_seconds
        next_prune = _time.monotonic() + min(60.0, self.settings.prune_interval_seconds)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=interval)
            wake.clear()
            try:
                while True:
                    written = await self.flush(db)
                    if written < self._batch or stop.is_set():
                        break
                    await asyncio.sleep(0)  # a full batch: more may wait; let requests run
            except Exception as error:
                _log.warning(
                    "provisioning_log_flush_failed",
                    error=type(error).__name__,
                    waiting=len(self),
                    dropped=self.dropped,
                )
                await _sleep_or_stop(stop, interval * 4)
                continue
            if _time.monotonic() >= next_prune:
                next_prune = _time.monotonic() + self.settings.prune_interval_seconds
                try:
                    await prune(
                        db,
                        retention_days=self.settings.retention_days,
                        max_rows_per_tenant=self.settings.max_rows_per_tenant,
                        stop=stop,
                    )
                except Exception as error:
                    _log.warning("provisioning_log_prune_failed", error=type(error).__name__)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


# Retention --------------------------------------------------------------------------------------

_TENANT_IDS = "SELECT id FROM tenants ORDER BY id"
_PRUNE_OLD = (
    "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time < :cutoff ORDER BY time LIMIT :batch)"
)
_NTH_NEWEST = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant"
    " ORDER BY time DESC LIMIT 1 OFFSET :keep"
)
_PRUNE_TENANT = (
    "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time <= :cutoff ORDER BY time LIMIT :batch)"
)


async def _tenant_ids(db: Database) -> list[int]:
    async with db.reader() as conn:
        rows = await conn.fetchall(compile_text(_TENANT_IDS, db.dialect), {})
    return [int(row[0]) for row in rows]


async def prune(
    db: Database,
    *,
    retention_days: float,
    max_rows_per_tenant: int,
    now: datetime | None = None,
    batch: int = PRUNE_BATCH,
    stop: asyncio.Event | None = None,
) -> int:
    """Delete entries older than ``retention_days`` and, per tenant, all but the newest
    ``max_rows_per_tenant``; return how many were deleted. Works tenant by tenant (on the
    (tenant, time) index) in transactions of at most ``batch`` rows, and stops early when
    ``stop`` is set."""
    cutoff = clock.stamp((now or clock.now()) - timedelta(days=retention_days))
    deleted = 0
    for tenant_id in await _tenant_ids(db):
        if stop is not None and stop.is_set():
            break
        deleted += await _delete_batches(
            db, _PRUNE_OLD, {"tenant": tenant_id, "cutoff": cutoff}, batch, stop
        )
        async with db.reader() as conn:
            row = await conn.fetchone(
                compile_text(_NTH_NEWEST, db.dialect),
                {"tenant": tenant_id, "keep": max_rows_per_tenant},
            )
        if row is not None:
            deleted += await _delete_batches(
                db, _PRUNE_TENANT, {"tenant": tenant_id, "cutoff": row[0]}, batch, stop
            )
    if deleted:
        _log.info("provisioning_log_pruned", deleted=deleted)
    return deleted


async def _delete_batches(
    db: Database, sql: str, params: dict[str, Any], batch: int, stop: asyncio.Event | None
) -> int:
    statement = compile_text(sql, db.dialect)
    total = 0
    while True:
        async with db.transaction() as conn:
            count: int = await conn.execute(statement, {**params, "batch": batch})
        total += count
        if count < batch or (stop is not None and stop.is_set()):
            return total
        await asyncio.sleep(0)


# Reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What to look for: all tenants, or ``tenant_id`` only; ``since`` is inclusive and
    ``until`` exclusive (stamps as :func:`parse_time` returns them).

    ``target`` names a user or group by id or by userName/displayName (any case). Entries are
    linked through the log itself: a name also finds the entries of every id logged under that
    name (so the ``DELETE /Users/{id}`` of a user found by userName is included), and an id also
    finds the entries logged under its names (such as a create refused before an id existed).
    """

    tenant_id: int | None = None
    target: str | None = None
    result: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.result is not None and self.result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


_SELECT = (
    "SELECT id, time, tenant_id, source, operation, target_id, target_name, result,"
    " status, error FROM provisioning_log"
)
#: Ids (names) linked to one target name (id) at most; more are ignored.
_MAX_LINKED = 100


def _in_list(column: str, name: str, dialect: Dialect) -> str:
    if dialect == "postgresql":
        return f"{column} = ANY(CAST(:{name} AS text[]))"
    return f"{column} IN (SELECT value FROM json_each(:{name}))"


def _list_param(values: Sequence[str], dialect: Dialect) -> Any:
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


_LINKED_IDS = (
    "SELECT DISTINCT target_id FROM provisioning_log WHERE tenant_id = :tenant"
    " AND target_name_ci = :target_ci AND target_id IS NOT NULL LIMIT :limit"
)
_LINKED_NAMES = (
    "SELECT DISTINCT target_name_ci FROM provisioning_log WHERE tenant_id = :tenant"
    " AND target_id = :target AND target_name_ci IS NOT NULL LIMIT :limit"
)


async def _linked(db: Database, tenant_id: int, target: str) -> tuple[list[str], list[str]]:
    """The ids and lower-cased names that stand for ``target`` in one tenant."""
    params = {
        "tenant": tenant_id,
        "target": target,
        "target_ci": target.lower(),
        "limit": _MAX_LINKED,
    }
    async with db.reader() as conn:
        id_rows = await conn.fetchall(compile_text(_LINKED_IDS, db.dialect), params)
        name_rows = await conn.fetchall(compile_text(_LINKED_NAMES, db.dialect), params)
    ids = sorted({target, *(row[0] for row in id_rows)})
    names = sorted({target.lower(), *(row[0] for row in name_rows)})
    return ids, names


def _search_sql(
    query: LogQuery, tenant_id: int, dialect: Dialect, ids: Sequence[str], names: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    conditions = ["tenant_id = :tenant"]
    params: dict[str, Any] = {"tenant": tenant_id, "limit": query.limit}
    if query.target is not None:
        conditions.append(
            f"({_in_list('target_id', 'ids', dialect)}"
            f" OR {_in_list('target_name_ci', 'names', dialect)})"
        )
        params["ids"] = _list_param(ids, dialect)
        params["names"] = _list_param(names, dialect)
    if query.result is not None:
        conditions.append("result = :result")
        params["result"] = query.result
    if query.since is not None:
        conditions.append("time >= :since")
        params["since"] = query.since
    if query.until is not None:
        conditions.append("time < :until")
        params["until"] = query.until
    where = " AND ".join(conditions)
    return f"{_SELECT} WHERE {where} ORDER BY time DESC, id DESC LIMIT :limit", params


def _entry(row: Row) -> Entry:
    return Entry(
        id=int(row[0]),
        time=row[1],
        tenant_id=row[2],
        source=row[3],
        operation=row[4],
        target_id=row[5],
        target_name=row[6],
        result=row[7],
        status=row[8],
        error=row[9],
    )


async def search(db: Database, query: LogQuery) -> list[Entry]:
    """Entries matching ``query``, newest first.

    Every statement is scoped to one tenant, so the (tenant, …) indexes answer it; a query
    without a tenant asks each tenant in turn and merges the answers.
    """
    tenant_ids = [query.tenant_id] if query.tenant_id is not None else await _tenant_ids(db)
    found: list[Entry] = []
    for tenant_id in tenant_ids:
        ids: list[str] = []
        names: list[str] = []
        if query.target is not None:
            ids, names = await _linked(db, tenant_id, query.target)
        sql, params = _search_sql(query, tenant_id, db.dialect, ids, names)
        async with db.reader() as conn:
            rows = await conn.fetchall(compile_text(sql, db.dialect), params)
        found += (_entry(row) for row in rows)
    if len(tenant_ids) > 1:
        found.sort(key=lambda item: (item.time, item.id or 0), reverse=True)
    return found[: query.limit]


@dataclass(frozen=True, slots=True)
class ScimActivity:
    """A tenant's SCIM requests in a window, and its last success and first request ever."""

    total: int
    success: int
    client_errors: int
    server_errors: int
    last_success_at: str | None
    first_seen_at: str | None


_COUNTS = (
    "SELECT result, count(*) FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time >= :since AND source = 'scim' GROUP BY result"
)
_LAST_SUCCESS = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant AND source = 'scim'"
    " AND result = 'success' ORDER BY time DESC LIMIT 1"
)
_FIRST_SEEN = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant AND source = 'scim'"
    " ORDER BY time LIMIT 1"
)


async def scim_activity(db: Database, tenant_id: int, since: str) -> ScimActivity:
    """Counts of the tenant's SCIM results since ``since``, for the health model."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            compile_text(_COUNTS, db.dialect), {"tenant": tenant_id, "since": since}
        )
        last = await conn.fetchone(compile_text(_LAST_SUCCESS, db.dialect), {"tenant": tenant_id})
        first = await conn.fetchone(compile_text(_FIRST_SEEN, db.dialect), {"tenant": tenant_id})
    counts = {row[0]: int(row[1]) for row in rows}
    return ScimActivity(
        total=sum(counts.values()),
        success=counts.get(SUCCESS, 0),
        client_errors=counts.get(CLIENT_ERROR, 0),
        server_errors=counts.get(SERVER_ERROR, 0),
        last_success_at=last[0] if last else None,
        first_seen_at=first[0] if first else None,
    )


_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: datetime | None = None) -> str:
    """A stored-form stamp from ISO 8601 (``2026-01-02``, ``2026-01-02T03:04:05+01:00``; no
    offset means UTC) or a duration back from now (``90s``, ``15m``, ``2h``, ``7d``, ``1w``)."""
    relative = _DURATION.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2).lower()]
        return clock.stamp((now or clock.now()) - timedelta(seconds=seconds))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time nor a duration such as 15m, 2h or 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return clock.stamp(moment)


__all__ = [
    "RESULTS",
    "SOURCES",
    "Entry",
    "LogBuffer",
    "LogQuery",
    "LogSettings",
    "ScimActivity",
    "clean_error",
    "entry",
    "parse_time",
    "prune",
    "record_effect",
    "result_of",
    "scim_activity",
    "search",
    "write",
]
