"""The two drivers behind one small async interface.

SQLite (the embedded default) runs on one held ``sqlite3`` connection, inline on the event loop:
its methods are coroutines that never suspend, so a transaction opened with ``transaction()`` runs
from BEGIN to COMMIT without yielding to another request. That is what makes the embedded default
fast (no threadpool hop, no aiosqlite queue) and safe (no interleaving on the shared connection).

PostgreSQL runs through an asyncpg pool; asyncpg prepares each statement once per connection and
caches it. Every write is one short transaction.

Both expose ``Connection.fetchone / fetchall / execute`` taking a compiled ``Statement`` and a
mapping of parameters, so storage code is written once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
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


class SQLiteDatabase(CommitListeners):
    dialect: Dialect = "sqlite"

    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        super().__init__()
        self.path = path
        self._raw = connect_sqlite(path, busy_timeout_ms)
        self._connection = SQLiteConnection(self._raw)
        self._depth = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteConnection]:
        raw = self._raw
        if self._depth:
            # A transaction is already open on this connection (same task): join it.
            yield self._connection
            return
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise DatabaseUnavailable(str(error)) from error
        self._depth = 1
        try:
            yield self._connection
        except BaseException as error:
            self._depth = 0
            raw.execute("ROLLBACK")
            _raise_translated(error)
            raise
        else:
            self._depth = 0
            try:
                raw.execute("COMMIT")
            except sqlite3.OperationalError as error:
                raw.execute("ROLLBACK")
                raise DatabaseUnavailable(str(error)) from error

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


class PostgresDatabase(CommitListeners):
    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        super().__init__()
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, pool_size: int = 10) -> PostgresDatabase:
        import asyncpg

        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                statement_cache_size=512,
                server_settings={"lock_timeout": "10000", "statement_timeout": "30000"},
            )
        except (OSError, asyncpg.PostgresError) as error:
            raise DatabaseUnavailable(str(error)) from error
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresConnection]:
        try:
            async with self._pool.acquire() as raw, raw.transaction():
                yield PostgresConnection(raw)
        except BaseException as error:
            _raise_translated(error)
            raise

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[PostgresConnection]:
        try:
            async with self._pool.acquire() as raw:
                yield PostgresConnection(raw)
        except BaseException as error:
            _raise_translated(error)
            raise

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
    lowered = message.lower()
    if "user_name_ci" in lowered:
        return "userName is already taken"
    if "display_name_ci" in lowered:
        return "displayName is already taken"
    if "external_id" in lowered:
        return "externalId is already taken"
    return "a resource with the same unique attribute already exists"


async def open_database(
    raw_url: str, *, pool_size: int = 10, busy_timeout_ms: int = 5000
) -> SQLiteDatabase | PostgresDatabase:
    url = parse_url(raw_url)
    if url.dialect == "sqlite":
        assert url.path is not None
        return SQLiteDatabase(url.path, busy_timeout_ms)
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
