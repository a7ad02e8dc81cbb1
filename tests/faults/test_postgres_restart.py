"""PostgreSQL restarts while Entra provisions and the workers apply effects.

While the database is away the API answers 503 with Retry-After (never a 500, never a dropped
connection), and Entra retries. A request whose commit outcome is unknown is retried too, and
the 409 or 404 that follows tells that the first attempt committed. The workers' database work
fails as transient and is retried; the relays resume sweeping. Afterwards every acknowledged
write is there, and every committed change has had its effect once.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from storage import outbox
from storage.database import PostgresDatabase
from storage.errors import DatabaseUnavailable
from tests.fakes.papercut import FakePaperCutServer
from tests.faults.conftest import (
    OUTAGE_SECONDS,
    PrivatePostgres,
    PrivateRedis,
    Probe,
    ScimLoad,
    assert_api_answered,
    assert_converged,
    assert_recorded,
    fault_env,
    start_worker,
)
from tests.harness import Start, eventually, start_api


@pytest.mark.slow
def test_provision_postgres_restarted_under_load_answers_503_and_loses_no_write(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    processes: Start,
    papercut_server: FakePaperCutServer,
) -> None:
    url = private_postgres.create_database()
    setup = Probe(url)
    refs = [setup.tenant(), setup.tenant("papercut", papercut=papercut_server)]
    env = fault_env(url, PRINTSYNC_BROKER_URL=private_redis.url)
    worker = start_worker(processes, env)
    api, base = start_api(processes, env)

    with ScimLoad(base, refs, threads=3, pause=0.01) as load:
        load.wait_for_users(10)
        eventually(lambda: all(setup.effects(ref.id, outbox.DONE) for ref in refs), timeout=30)
        setup.close()  # its connection would not survive the restart
        down = time.monotonic()
        private_postgres.stop("fast")
        time.sleep(max(1.0, OUTAGE_SECONDS / 2))
        private_postgres.start()
        up = time.monotonic()
        done_before = len([plan for plan in load.plans if plan.complete])
        load.wait_for_users(done_before + 10)

    during = load.answers_between(down, up)
    assert 503 in {answer.status for answer in during}
    assert [answer for answer in load.answers if answer.status is None] == []
    assert_api_answered(load, allow_unavailable=True)
    assert api.popen.poll() is None and worker.popen.poll() is None
    probe = Probe(url)
    probe.wait_settled(refs, worker, api)
    assert_converged(probe, load.plans, refs, papercut_server)
    assert_recorded(base, load.plans)
    probe.close()


class _FailingPool:
    """A pool stand-in that fails with ``error`` when asked for a connection."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def take(self) -> None:
        raise self.error


#: What asyncpg raised in the restart test, and must therefore mean "retry later".
RESTART_ERRORS = [
    asyncpg.exceptions.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    ),
    asyncpg.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed"
    ),
    asyncpg.exceptions.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    ConnectionRefusedError(111, "Connect call failed"),
]


@pytest.mark.parametrize("error", RESTART_ERRORS, ids=lambda error: type(error).__name__)
def test_transaction_connection_lost_in_restart_raises_database_unavailable(
    error: BaseException,
) -> None:
    async def begin() -> None:
        async with PostgresDatabase(_FailingPool(error)).transaction():
            pass

    with pytest.raises(DatabaseUnavailable):
        asyncio.run(begin())


def test_transaction_misuse_of_live_connection_is_not_unavailable() -> None:
    misuse = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    async def begin() -> None:
        async with PostgresDatabase(_FailingPool(misuse)).transaction():
            pass

    with pytest.raises(asyncpg.InterfaceError):  # a bug of ours: a 500, not a retry
        asyncio.run(begin())
