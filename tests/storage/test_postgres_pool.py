"""The PostgreSQL connection pool: reuse, waiting, and dropping connections it cannot trust.

Fake connections stand in for asyncpg's, so each rule is checked without a server (the HTTP
tests exercise the pool on a real PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from storage.database import PostgresPool
from storage.errors import DatabaseUnavailable, ResourceNotFound


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.terminated = False
        self.in_transaction = False

    def is_closed(self) -> bool:
        return self.closed or self.terminated

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.terminated = True

    async def close(self, **_options: float) -> None:
        self.closed = True


class Opener:
    """The pool's ``connect``: numbered fake connections, or ``failure`` when set."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.failure: BaseException | None = None

    async def __call__(self) -> FakeConnection:
        await asyncio.sleep(0)
        if self.failure is not None:
            raise self.failure
        connection = FakeConnection(len(self.opened))
        self.opened.append(connection)
        return connection


Scenario = Callable[[Opener, PostgresPool], Awaitable[None]]


def run(scenario: Scenario, max_size: int = 1) -> None:
    """Await ``scenario`` on a new pool of ``max_size`` over a new :class:`Opener`."""

    async def main() -> None:
        opener = Opener()
        await scenario(opener, PostgresPool(opener, max_size=max_size))

    asyncio.run(main())


async def raise_inside_lease(pool: PostgresPool, error: BaseException) -> None:
    """Lease a connection and leave the lease by raising ``error``."""
    with pytest.raises(type(error)):
        async with pool.acquire():
            raise error


def test_lease_reuses_idle_connection() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        await pool.start()
        for _ in range(3):
            async with pool.acquire() as connection:
                assert connection is opener.opened[0]
        assert len(opener.opened) == 1

    run(scenario, max_size=4)


def test_request_beyond_max_size_waits_for_a_release() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        first, second = pool.acquire(), pool.acquire()
        a, b = await first.__aenter__(), await second.__aenter__()
        third = asyncio.ensure_future(pool.take())
        await asyncio.sleep(0.01)
        assert not third.done()
        await second.__aexit__(None, None, None)
        assert await third is b
        assert len(opener.opened) == 2
        await first.__aexit__(None, None, None)
        assert await pool.take() is a

    run(scenario, max_size=2)


def test_connection_closed_while_idle_is_replaced() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        await pool.start()
        opener.opened[0].closed = True  # the server restarted
        async with pool.acquire() as connection:
            assert connection is opener.opened[1]

    run(scenario)


@pytest.mark.parametrize(
    "error",
    [
        ResourceNotFound("User", "x"),
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_is_kept_after_errors_that_leave_it_in_sync(error: Exception) -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        await raise_inside_lease(pool, error)
        async with pool.acquire() as connection:
            assert connection is opener.opened[0]

    run(scenario)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        ConnectionResetError(104, "reset"),
        asyncio.CancelledError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_is_dropped_after_errors_that_may_leave_it_out_of_sync(
    error: BaseException,
) -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        await raise_inside_lease(pool, error)
        assert opener.opened[0].terminated
        async with pool.acquire() as connection:
            assert connection is opener.opened[1]

    run(scenario)


def test_connection_left_in_a_transaction_is_dropped() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        async with pool.acquire() as connection:
            connection.in_transaction = True
        assert opener.opened[0].terminated

    run(scenario)


def test_failed_open_frees_its_place_for_a_waiting_request() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        lease = pool.acquire()
        held = await lease.__aenter__()
        waiting = asyncio.ensure_future(pool.take())
        await asyncio.sleep(0)
        held.closed = True
        await lease.__aexit__(None, None, None)  # dropped: the waiter may open a new one
        assert await waiting is opener.opened[1]
        pool.give(opener.opened[1], None)
        opener.opened[1].closed = True
        opener.failure = ConnectionRefusedError(111, "refused")
        with pytest.raises(ConnectionRefusedError):
            await pool.take()
        opener.failure = None
        assert await pool.take() is opener.opened[2]

    run(scenario)


def test_cancelled_waiter_passes_on_the_connection_handed_to_it() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        held = await pool.take()
        cancelled = asyncio.ensure_future(pool.take())
        patient = asyncio.ensure_future(pool.take())
        await asyncio.sleep(0)
        pool.give(held, None)  # handed to the first waiter...
        cancelled.cancel()  # ...which is cancelled before it resumes
        assert await patient is held
        assert cancelled.cancelled()

    run(scenario)


def test_closed_pool_refuses_leases_and_closes_connections() -> None:
    async def scenario(opener: Opener, pool: PostgresPool) -> None:
        lent = await pool.take()
        await pool.start()
        idle = opener.opened[1]
        await pool.close()
        assert idle.closed
        with pytest.raises(DatabaseUnavailable):
            await pool.take()
        pool.give(lent, None)
        assert lent.terminated

    run(scenario, max_size=2)
