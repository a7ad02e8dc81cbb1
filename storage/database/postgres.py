"""PostgreSQL: connections leased from the pool, for one read or one write transaction."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from storage.database.base import CommitListeners, Row
from storage.database.pool import PostgresPool
from storage.database.translation import raise_translated
from storage.errors import DatabaseUnavailable
from storage.sql import Dialect, Statement


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


async def _take(pool: PostgresPool) -> Any:
    """A connection of the pool, with a failure to get one translated (503 when unavailable)."""
    try:
        return await pool.take()
    except BaseException as error:
        raise_translated(error)
        raise


class _Reading:
    """``PostgresDatabase.reader()``: a pooled connection, no transaction (each statement is
    its own snapshot), errors translated. A class rather than a generator-based context
    manager: it is entered on every read request."""

    __slots__ = ("_pool", "_raw")

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._raw: Any = None

    async def __aenter__(self) -> PostgresConnection:
        self._raw = await _take(self._pool)
        return PostgresConnection(self._raw)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        raw, self._raw = self._raw, None
        self._pool.give(raw, error)
        if error is not None:
            raise_translated(error)


class _Transaction(_Reading):
    """``PostgresDatabase.transaction()``: a pooled connection inside one transaction, committed
    when the block ends normally and rolled back otherwise; errors translated."""

    __slots__ = ("_transaction",)

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._transaction: Any = None

    async def __aenter__(self) -> PostgresConnection:
        raw = await _take(self._pool)
        transaction = raw.transaction()
        try:
            await transaction.__aenter__()
        except BaseException as error:
            self._pool.give(raw, error)
            raise_translated(error)
            raise
        self._raw, self._transaction = raw, transaction
        return PostgresConnection(raw)

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        """Commit or roll back, then give the connection back as :class:`_Reading` does."""
        transaction, self._transaction = self._transaction, None
        try:
            await transaction.__aexit__(kind, error, traceback)
        except BaseException as ending:
            raw, self._raw = self._raw, None
            self._pool.give(raw, ending)
            raise_translated(ending)
            raise
        await super().__aexit__(kind, error, traceback)


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

    def single(self) -> _Reading:
        """One write statement, committed on its own (see ``Database.single``)."""
        return _Reading(self._pool)

    async def close(self) -> None:
        await self._pool.close()
