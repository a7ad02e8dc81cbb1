"""The API's buffer of SCIM entries, written in batches by a task of its own.

The API appends to a :class:`LogBuffer` on every SCIM request. ``append`` only puts a tuple on a
bounded deque: no formatting, no I/O. A task started by the API writes the buffer in batches, one
transaction per batch (every ``flush_interval_seconds`` or as soon as ``flush_rows`` are
waiting), and prunes the table now and then. When the database stays unreachable the buffer
keeps its newest ``buffer_rows`` entries and counts what it had to drop. Each batch also updates
the tenants' provisioning cycles (:mod:`storage.cycles`) in its transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as _time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from metrics.redaction import clean_error
from storage import cycles
from storage.database import Connection, Database, in_transaction
from storage.provisioning_log.entries import (
    MAX_OPERATION_CHARS,
    MAX_TARGET_CHARS,
    SCIM,
    StoredRow,
    clip,
    dump_changes,
    insert_rows,
    result_of,
)
from storage.provisioning_log.retention import prune
from storage.provisioning_log.settings import LogSettings
from storage.sql import Dialect

_log = structlog.get_logger(__name__)

#: A buffered SCIM entry: (unix time, tenant_id, operation, status, target_id, target_name,
#: error, changes, source); turned into a row only when the buffer is written.
_Buffered = tuple[
    float, int, str, int, str | None, str | None, str | None, dict[str, Any] | None, str
]

#: A batch that failed to write is tried this many times before it is dropped.
_WRITE_ATTEMPTS: Final = 3


class LogBuffer:
    """In-memory, bounded buffer of SCIM log entries, written in batches by :meth:`run`.

    ``append`` is O(1) and never touches the database. Call it on the event loop's thread (it
    may wake the flush task). Start the flush task with :meth:`start` once the database is open
    and stop it with :meth:`close`, which writes what is left.
    """

    def __init__(
        self,
        settings: LogSettings | None = None,
        cycle_settings: cycles.CycleSettings | None = None,
    ) -> None:
        self.settings = settings or LogSettings()
        self.cycle_settings = cycle_settings or cycles.CycleSettings()
        self._rows: deque[_Buffered] = deque()
        self._capacity = self.settings.buffer_rows
        self._batch = self.settings.flush_rows
        self._retry: list[StoredRow] | None = None
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
        changes: dict[str, Any] | None = None,
        source: str = SCIM,
    ) -> None:
        """Record one SCIM operation answered with ``status`` (the result follows from it);
        ``changes`` is what it changed, ``source`` ``group`` for an entry against a user whose
        membership a group's write changed."""
        rows = self._rows
        if len(rows) >= self._capacity:
            rows.popleft()
            self.dropped += 1
        rows.append(
            (
                _time.time(),
                tenant_id,
                operation,
                status,
                target_id,
                target_name,
                error,
                changes,
                source,
            )
        )
        if len(rows) >= self._batch and self._wake is not None:
            self._wake.set()

    def _take(self) -> list[StoredRow]:
        rows = self._rows
        taken: list[StoredRow] = []
        for _ in range(min(len(rows), self._batch)):
            moment, tenant, op, status, target_id, name, error, changes, source = rows.popleft()
            if name is not None and len(name) > MAX_TARGET_CHARS:
                name = name[:MAX_TARGET_CHARS]
            taken.append(
                (
                    self._stamp(moment),
                    tenant,
                    source,
                    op[:MAX_OPERATION_CHARS],
                    clip(target_id, MAX_TARGET_CHARS),
                    name,
                    name.lower() if name is not None else None,
                    result_of(status),
                    status,
                    clean_error(error) if error is not None else None,
                    dump_changes(changes),
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
            await in_transaction(db, self._write, batch)
        except Exception:
            self._retry_attempts += 1
            if self._retry_attempts >= _WRITE_ATTEMPTS:
                self.dropped += len(batch)
                self._retry, self._retry_attempts = None, 0
            raise
        self._retry, self._retry_attempts = None, 0
        self.written += len(batch)
        return len(batch)

    async def _write(self, conn: Connection, dialect: Dialect, batch: list[StoredRow]) -> None:
        await insert_rows(conn, dialect, batch)
        requests = [(row[1], row[0], row[3], row[8], row[10]) for row in batch if row[2] == SCIM]
        if requests:
            await cycles.record(conn, dialect, requests, self.cycle_settings.gap_seconds)

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
