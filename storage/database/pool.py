"""The PostgreSQL pool: up to ``max_size`` asyncpg connections, lent one at a time."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from storage.database.translation import UNAVAILABLE
from storage.errors import DatabaseUnavailable


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

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """``async with pool.acquire() as connection``: one connection, taken back when the block
        ends. The database's own contexts (``storage.database.postgres``), entered on every
        request, call ``take`` and ``give`` themselves."""
        connection = await self.take()
        try:
            yield connection
        except BaseException as error:
            self.give(connection, error)
            raise
        self.give(connection, None)

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
    return "PostgresError" in names and not names & UNAVAILABLE
