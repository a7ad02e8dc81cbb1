"""The small async interface both drivers implement.

SQLite (the embedded default, :mod:`storage.database.sqlite`) runs on one held ``sqlite3``
connection, inline on the event loop: its methods are coroutines that never suspend, so a
transaction opened with ``transaction()`` runs from BEGIN to COMMIT without yielding to another
request. That is what makes the embedded default fast (no threadpool hop, no aiosqlite queue) and
safe (no interleaving on the shared connection).

PostgreSQL (:mod:`storage.database.postgres`) runs on a small pool of asyncpg connections
(:class:`~storage.database.pool.PostgresPool`); asyncpg prepares each statement once per
connection and caches it. A read is one round trip and no transaction; every write is one short
transaction.

Both expose ``Connection.fetchone / fetchall / execute`` taking a compiled ``Statement`` and a
mapping of parameters, so storage code is written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from storage.sql import Dialect, Statement

P = ParamSpec("P")
T = TypeVar("T")

Row = Sequence[Any]


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

    def single(self) -> Any:
        """Async context manager yielding a Connection for one write statement, atomic on its
        own: PostgreSQL runs it outside a transaction (no BEGIN and COMMIT round trips), SQLite
        in a write transaction (its group commit)."""

    async def close(self) -> None: ...


class CommitListeners:
    """Callbacks run after a transaction that recorded effects commits (wakes the relay)."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []

    def effects_committed(self) -> None:
        for listener in self.listeners:
            listener()


async def in_transaction(
    db: Database,
    function: Callable[Concatenate[Connection, Dialect, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``function(conn, dialect, *args, **kwargs)`` in one write transaction of ``db``: the
    way to compose functions that take a connection (``outbox.complete`` and the provisioning
    log's ``insert``, say) into one commit."""
    async with db.transaction() as conn:
        return await function(conn, db.dialect, *args, **kwargs)
