"""SQLite: one held connection, used inline on the event loop, with group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.database.base import CommitListeners, Row
from storage.database.translation import raise_translated
from storage.errors import DatabaseUnavailable
from storage.sql import Dialect, Statement


class SQLiteConnection:
    """A connection whose awaitables complete without suspending."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def fetchone(self, statement: Statement, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = self.raw.execute(statement.sql, statement.args(params)).fetchone()
        return row

    async def fetchall(self, statement: Statement, params: Mapping[str, Any]) -> list[Row]:
        return self.raw.execute(statement.sql, statement.args(params)).fetchall()

    async def execute(self, statement: Statement, params: Mapping[str, Any]) -> int:
        return self.raw.execute(statement.sql, statement.args(params)).rowcount


def connect_sqlite(path: str, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and sane pragmas."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("PRAGMA cache_size = -16384")  # 16 MiB per connection; workers hold several
    raw.execute("PRAGMA temp_store = MEMORY")
    return raw


@dataclass(slots=True)
class _Group:
    """Write transactions committed together (see ``SQLiteDatabase.transaction``)."""

    future: asyncio.Future[None]
    members: int = 1


class SQLiteDatabase(CommitListeners):
    """The API's SQLite database: one connection, used inline on the event loop.

    Writers of other processes (the effects pipeline) take SQLite's write lock too. A request that
    finds it taken must not block the event loop in SQLite's busy handler (which sleeps, holding
    every other request up): ``BEGIN IMMEDIATE`` is tried without waiting, and while the lock is
    taken the request awaits short sleeps, so reads and other work go on meanwhile, until
    ``busy_timeout_ms`` have passed (then 503). Between BEGIN and COMMIT nothing suspends.
    """

    dialect: Dialect = "sqlite"

    #: First and longest pause between two attempts at the write lock (seconds).
    LOCK_RETRY_FIRST = 0.0002
    LOCK_RETRY_MAX = 0.004
    API_CHECKPOINT_PAGES = 10_000

    def __init__(self, path: str, busy_timeout_ms: int = 5000, *, shared_loop: bool = True) -> None:
        super().__init__()
        self.path = path
        self._busy_timeout = busy_timeout_ms / 1000
        self._shared_loop = shared_loop
        self._raw = connect_sqlite(path, busy_timeout_ms)
        if shared_loop:
            # Checkpoints (copying the WAL into the database file, with an fsync) are left to
            # the effects pipeline's connections (``shared_loop=False``), which run them at
            # SQLite's default 1,000 pages: one here would stall every request for its
            # duration. Only if the WAL grows this far (about 40 MiB: no pipeline is running)
            # does the API checkpoint itself.
            self._raw.execute(f"PRAGMA wal_autocheckpoint = {self.API_CHECKPOINT_PAGES}")
        self._connection = SQLiteConnection(self._raw)
        self._depth = 0
        self._group: _Group | None = None

    def _try_begin(self) -> bool:
        """BEGIN IMMEDIATE without waiting; False when another connection holds the lock.

        A connection of its own thread (``shared_loop=False``: the pipeline's workers) waits in
        SQLite's busy handler instead, which blocks only that thread."""
        raw = self._raw
        if not self._shared_loop:
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise DatabaseUnavailable(str(error)) from error
            return True
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                return False
            raise DatabaseUnavailable(str(error)) from error
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return True

    async def _begin(self) -> bool:
        """Take the write lock for a new group; False when a group opened meanwhile (join it)."""
        if self._try_begin():
            return True
        deadline = time.monotonic() + self._busy_timeout
        pause = self.LOCK_RETRY_FIRST
        while True:
            await asyncio.sleep(pause)
            if self._group is not None:
                return False
            if self._try_begin():
                return True
            if time.monotonic() >= deadline:
                raise DatabaseUnavailable("database is locked")
            pause = min(pause * 2, self.LOCK_RETRY_MAX)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteConnection]:
        """One write transaction, committed with the others of this turn of the event loop.

        Group commit: the first transaction of a turn takes the write lock (``BEGIN IMMEDIATE``)
        and schedules one ``COMMIT`` for the end of the turn; the transactions of other requests
        that run in the same turn join it, each inside a savepoint, so that one that fails rolls
        back alone. Each waits for the shared ``COMMIT`` before it returns: nothing is answered
        before it is durable, and a failed ``COMMIT`` fails every member (503). One commit (one
        write of the WAL) then serves several requests, and pages they share are written once.
        Between a member's savepoint and its release nothing suspends.
        """
        raw = self._raw
        if self._depth:
            # A transaction is already open on this connection (same task): join it.
            yield self._connection
            return
        if not self._shared_loop:
            # A connection of its own thread runs one transaction at a time: nothing to group,
            # so it commits inline and never suspends.
            async with self._alone() as conn:
                yield conn
            return
        group = self._group
        if group is None and await self._begin():
            group = self._group = _Group(asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_soon(self._commit_group)
            savepoint = None  # alone in the group so far: a failure rolls back everything
        else:
            group = self._group
            assert group is not None
            if not raw.in_transaction:  # SQLite ended the group's transaction on its own
                raise self._fail_group(group, "the transaction was rolled back")
            group.members += 1
            savepoint = f"member_{group.members}"
            raw.execute(f"SAVEPOINT {savepoint}")
        self._depth = 1
        try:
            yield self._connection
        except BaseException as error:
            self._depth = 0
            if not raw.in_transaction:
                # A disk-full or I/O error makes SQLite roll back the whole transaction, the
                # other members' work included: the group has failed.
                raise self._fail_group(group, str(error)) from error
            try:
                if savepoint is None:
                    self._group = None
                    raw.execute("ROLLBACK")
                    group.future.set_result(None)
                else:
                    raw.execute(f"ROLLBACK TO {savepoint}")
                    raw.execute(f"RELEASE {savepoint}")
            except sqlite3.Error as undo:
                with suppress(sqlite3.Error):
                    raw.execute("ROLLBACK")
                raise self._fail_group(group, str(undo)) from error
            raise_translated(error)
            raise
        self._depth = 0
        if savepoint is not None:
            raw.execute(f"RELEASE {savepoint}")
        await asyncio.shield(group.future)

    @asynccontextmanager
    async def _alone(self) -> AsyncIterator[SQLiteConnection]:
        """BEGIN IMMEDIATE (waiting in SQLite's busy handler), the work, COMMIT."""
        raw = self._raw
        self._try_begin()
        self._depth = 1
        try:
            yield self._connection
        except BaseException as error:
            self._depth = 0
            if not raw.in_transaction:  # SQLite rolled it back on its own (disk full, I/O)
                raise DatabaseUnavailable(str(error)) from error
            try:
                raw.execute("ROLLBACK")
            except sqlite3.Error as undo:
                raise DatabaseUnavailable(str(undo)) from error
            raise_translated(error)
            raise
        self._depth = 0
        try:
            raw.execute("COMMIT")
        except sqlite3.Error as error:
            with suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
            raise DatabaseUnavailable(str(error)) from error

    def _fail_group(self, group: _Group, reason: str) -> DatabaseUnavailable:
        """End a group whose transaction is lost: every member answers 503."""
        failure = DatabaseUnavailable(reason)
        if self._group is group:
            self._group = None
        if not group.future.done():
            group.future.set_exception(failure)
            group.future.exception()  # retrieved: members that already left need not be told
        return failure

    def _commit_group(self) -> None:
        group = self._group
        if group is None or group.future.done():
            return  # rolled back by its only member
        if self._depth:
            # A member is between its savepoint and its release (it suspended): not yet.
            asyncio.get_running_loop().call_soon(self._commit_group)
            return
        self._group = None
        try:
            self._raw.execute("COMMIT")
        except sqlite3.Error as error:
            with suppress(sqlite3.Error):
                self._raw.execute("ROLLBACK")
            group.future.set_exception(DatabaseUnavailable(str(error)))
        else:
            group.future.set_result(None)

    def single(self) -> Any:
        """One write statement: in a transaction, committed with its group."""
        return self.transaction()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[SQLiteConnection]:
        yield self._connection

    async def close(self) -> None:
        self._raw.close()
