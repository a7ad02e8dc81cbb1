"""The two drivers behind one small async interface.

SQLite (the embedded default) runs on one held ``sqlite3`` connection, inline on the event loop:
its methods are coroutines that never suspend, so a transaction opened with ``transaction()`` runs
from BEGIN to COMMIT without yielding to another request. That is what makes the embedded default
fast (no threadpool hop, no aiosqlite queue) and safe (no interleaving on the shared connection).

PostgreSQL runs on a small pool of asyncpg connections (``PostgresPool``); asyncpg prepares each
statement once per connection and caches it. A read is one round trip and no transaction; every
write is one short transaction.

Both expose ``Connection.fetchone / fetchall / execute`` taking a compiled ``Statement`` and a
mapping of parameters, so storage code is written once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from storage.errors import DatabaseUnavailable
from storage.scim.errors import Uniqueness
from storage.sql import Dialect, Statement

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed ``PRINTSYNC_DATABASE_URL``."""

    dialect: Dialect
    raw: str
    path: str | None = None  # SQLite file path (":memory:" allowed)

    @property
    def sync_url(self) -> str:
        """The URL for SQLAlchemy's synchronous engines (Alembic, admin commands)."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        url = make_url(self.raw).set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def asyncpg_dsn(self) -> str:
        url = make_url(self.raw).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)


def parse_url(raw: str) -> DatabaseURL:
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ":memory:"
        return DatabaseURL("sqlite", raw, path)
    if backend in ("postgresql", "postgres"):
        return DatabaseURL("postgresql", raw)
    raise ValueError(f"unsupported database URL scheme {url.drivername!r}")


class Connection(Protocol):
    async def fetchone(self, statement: Statement, params: Mapping[str, Any]) -> Row | None: ...

    async def fetchall(self, statement: Statement, params: Mapping[str, Any]) -> list[Row]: ...

    async def execute(self, statement: Statement, params: Mapping[str, Any]) -> int: ...


class Database(Protocol):
    dialect: Dialect
    listeners: list[Callable[[], None]]

    def effects_committed(self) -> None: ...

    def transaction(self) -> Any:
        """Async context manager yielding a Connection inside one write transaction."""

    def reader(self) -> Any:
        """Async context manager yielding a Connection for reads."""

    async def close(self) -> None: ...


def is_unique_violation(error: BaseException) -> bool:
    if isinstance(error, sqlite3.IntegrityError):
        return "UNIQUE" in str(error)
    return type(error).__name__ == "UniqueViolationError"


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


class CommitListeners:
    """Callbacks run after a transaction that recorded effects commits (wakes the relay)."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []

    def effects_committed(self) -> None:
        for listener in self.listeners:
            listener()


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
            _raise_translated(error)
            raise
        self._depth = 0
        if savepoint is not None:
            raw.execute(f"RELEASE {savepoint}")
        await asyncio.shield(group.future)

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

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[SQLiteConnection]:
        yield self._connection

    async def close(self) -> None:
        self._raw.close()


class PostgresConnection:
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def fetchone(self, statement: Statement, params: Mapping[str, Any]) -> Row | None:
        row: Row | None = await self.raw.fetchrow(statement.sql, *statement.args(params))
        return row

    async def fetchall(self, statement: Statement, params: Mapping[str, Any]) -> list[Row]:
        rows: list[Row] = await self.raw.fetch(statement.sql, *statement.args(params))
        return rows

    async def execute(self, statement: Statement, params: Mapping[str, Any]) -> int:
        status: str = await self.raw.execute(statement.sql, *statement.args(params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class PostgresPool:
    """Up to ``max_size`` asyncpg connections, lent one at a time.

    asyncpg's own pool costs every request a proxy object, a future, an inactivity timer, the
    reset query (a round trip) and a release that runs as a separate task behind
    ``asyncio.shield`` (one more suspension of the request). Here a lease is a pop from a list
    and a release an append, or a hand-over to the longest-waiting request. Connections open on
    demand; a connection found closed (the server restarted) or left in an unknown state (a
    cancelled query, a driver error) is dropped and its place reopened by the next lease. No
    session state needs resetting: storage never uses ``SET``, ``LISTEN``, advisory locks or
    cursors outside a transaction.
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]], max_size: int) -> None:
        self._connect = connect
        self._max_size = max_size
        self._idle: list[Any] = []
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._size = 0  # connections open or opening
        self._closed = False

    async def start(self) -> None:
        """Open the first connection, so that a wrong URL or an absent server fails now."""
        self._idle.append(await self._open())

    def acquire(self) -> PostgresLease:
        return PostgresLease(self)

    async def take(self) -> Any:
        idle = self._idle
        while True:
            if self._closed:
                raise DatabaseUnavailable("the database pool is closed")
            while idle:
                connection = idle.pop()
                if not connection.is_closed():
                    return connection
                self._size -= 1
            if self._size < self._max_size:
                return await self._open()
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except BaseException:
                if waiter.cancelled():
                    with suppress(ValueError):
                        self._waiters.remove(waiter)
                elif waiter.result() is None:
                    self._hand_over(None)  # handed a free place just as it was cancelled
                else:
                    self.give(waiter.result(), None)
                raise
            if connection is None:  # a place was freed: open a connection in it
                continue
            if not connection.is_closed():
                return connection
            self._size -= 1

    def give(self, connection: Any, error: BaseException | None) -> None:
        """Take a connection back after a lease that ended with ``error`` (or None)."""
        if self._closed or not _reusable(connection, error):
            connection.terminate()
            self._size -= 1
            self._hand_over(None)
        elif not self._hand_over(connection):
            self._idle.append(connection)

    def _hand_over(self, connection: Any) -> bool:
        """Wake the longest-waiting request with ``connection`` (None: a free place)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    async def _open(self) -> Any:
        self._size += 1
        try:
            return await self._connect()
        except BaseException:
            self._size -= 1
            self._hand_over(None)
            raise

    async def close(self) -> None:
        """Close the idle connections; those still lent are closed when they come back."""
        self._closed = True
        while self._hand_over(None):
            pass
        idle, self._idle = self._idle, []
        for connection in idle:
            self._size -= 1
            try:
                await connection.close(timeout=5)
            except Exception:  # closing anyway: do not wait on a broken connection
                connection.terminate()


def _reusable(connection: Any, error: BaseException | None) -> bool:
    """Whether a connection is known to be idle and in sync after a lease.

    Errors of our own (not found, version mismatch) and errors the server reported on a query
    leave it so; a cancellation, a driver error or a lost connection may not.
    """
    if connection.is_closed() or connection.is_in_transaction():
        return False
    if error is None:
        return True
    if not isinstance(error, Exception) or isinstance(error, OSError):
        return False
    if not type(error).__module__.startswith("asyncpg"):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return "PostgresError" in names and not names & _UNAVAILABLE


class PostgresLease:
    """``async with pool.acquire() as connection``: one connection of a ``PostgresPool``."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool
        self._connection: Any = None

    async def __aenter__(self) -> Any:
        self._connection = await self._pool.take()
        return self._connection

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        self._pool.give(connection, error)


async def _enter(lease: Any) -> Any:
    """The leased connection, with a failure to get one translated (503 when unavailable)."""
    try:
        return await lease.__aenter__()
    except BaseException as error:
        _raise_translated(error)
        raise


class _Reading:
    """``PostgresDatabase.reader()``: a pooled connection, no transaction (each statement is
    its own snapshot), errors translated. A class rather than a generator-based context
    manager: it is entered on every read request."""

    __slots__ = ("_lease", "_pool")

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._lease: Any = None

    async def __aenter__(self) -> PostgresConnection:
        lease = self._pool.acquire()
        raw = await _enter(lease)
        self._lease = lease
        return PostgresConnection(raw)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        lease, self._lease = self._lease, None
        await lease.__aexit__(kind, error, traceback)
        if error is not None:
            _raise_translated(error)


class _Transaction:
    """``PostgresDatabase.transaction()``: a pooled connection inside one transaction, committed
    when the block ends normally and rolled back otherwise; errors translated."""

    __slots__ = ("_lease", "_pool", "_transaction")

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._lease: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> PostgresConnection:
        lease = self._pool.acquire()
        raw = await _enter(lease)
        transaction = raw.transaction()
        try:
            await transaction.__aenter__()
        except BaseException as error:
            await lease.__aexit__(type(error), error, error.__traceback__)
            _raise_translated(error)
            raise
        self._lease, self._transaction = lease, transaction
        return PostgresConnection(raw)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        lease, transaction = self._lease, self._transaction
        self._lease = self._transaction = None
        try:
            await transaction.__aexit__(kind, error, traceback)
        except BaseException as ending:
            await lease.__aexit__(type(ending), ending, ending.__traceback__)
            _raise_translated(ending)
            raise
        await lease.__aexit__(kind, error, traceback)
        if error is not None:
            _raise_translated(error)


class PostgresDatabase(CommitListeners):
    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        super().__init__()
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, pool_size: int = 10) -> PostgresDatabase:
        import asyncpg

        async def connect() -> Any:
            return await asyncpg.connect(
                dsn,
                statement_cache_size=512,
                server_settings={"lock_timeout": "10000", "statement_timeout": "30000"},
            )

        pool = PostgresPool(connect, pool_size)
        try:
            await pool.start()
        except (OSError, asyncpg.PostgresError) as error:
            raise DatabaseUnavailable(str(error)) from error
        return cls(pool)

    def transaction(self) -> _Transaction:
        return _Transaction(self._pool)

    def reader(self) -> _Reading:
        return _Reading(self._pool)

    async def close(self) -> None:
        await self._pool.close()


#: Driver errors that mean the server is away, starting, stopping or out of connections: the
#: request may succeed later (503). Matched by class name along the MRO, so that storage does not
#: import asyncpg. ``PostgresConnectionError`` is SQLSTATE class 08 and also a connection lost in
#: the middle of an operation; ``InternalClientError`` is what asyncpg raises when it reuses a
#: pooled connection that the server terminated while it was idle (a restart), and an
#: ``InterfaceError`` about a closed connection is what ending a transaction on it raises.
_UNAVAILABLE = frozenset(
    {
        "PostgresConnectionError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "InternalClientError",
    }
)


def _raise_translated(error: BaseException) -> None:
    """Turn driver errors that carry meaning into ours; leave the rest alone."""
    if is_unique_violation(error):
        raise Uniqueness(_uniqueness_detail(str(error))) from error
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        raise DatabaseUnavailable(str(error)) from error
    names = {cls.__name__ for cls in type(error).__mro__}
    closed = "InterfaceError" in names and "connection is closed" in str(error)
    if names & _UNAVAILABLE or closed or isinstance(error, OSError):
        raise DatabaseUnavailable(type(error).__name__) from error


def _uniqueness_detail(message: str) -> str:
    from storage.indexed import uniqueness_detail

    return uniqueness_detail(message)


async def open_database(
    raw_url: str, *, pool_size: int = 10, busy_timeout_ms: int = 5000, shared_loop: bool = True
) -> SQLiteDatabase | PostgresDatabase:
    """Open the database of ``raw_url``. ``shared_loop=False`` is for a thread that uses its
    own event loop for its own work (``storage.blocking``): on SQLite it then waits for the
    write lock in SQLite's busy handler and runs WAL checkpoints."""
    url = parse_url(raw_url)
    if url.dialect == "sqlite":
        assert url.path is not None
        return SQLiteDatabase(url.path, busy_timeout_ms, shared_loop=shared_loop)
    return await PostgresDatabase.connect(url.asyncpg_dsn, pool_size)


__all__ = [
    "Connection",
    "Database",
    "DatabaseURL",
    "PostgresDatabase",
    "Row",
    "SQLiteDatabase",
    "open_database",
    "parse_url",
]
