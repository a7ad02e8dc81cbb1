"""A print system that refuses printsync's credentials, and the connection test.

When the print system refuses the credentials (an :class:`~workers.errors.AuthenticationError`:
a wrong auth token, an address not on its allow-list), nothing the tenant's effects send can
succeed. The tenant is paused instead of its effects failing (``storage.downstream``): the effect
waits without counting an attempt (:func:`wait`), the tenant's other effects wait for the next
probe (:func:`may_probe`: one attempt per ``PRINTSYNC_AUTH_RETRY_SECONDS`` tries again), and the
first success resumes them all.

The console's "Test connection" is a ``connector.test`` effect (:func:`test_connection`): the
connector's harmless authenticated call, whose outcome is recorded for the page; a passing test
resumes a paused tenant.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from metrics.redaction import clean_error
from storage import downstream, outbox, provisioning_log
from storage.blocking import BlockingDatabase
from storage.database import Connection
from storage.sql import Dialect
from workers.connectors import Connector
from workers.errors import DownstreamError
from workers.settings import WorkerSettings

__all__ = ["may_probe", "test_connection", "wait", "wait_and_log"]

_log = structlog.get_logger(__name__)


def may_probe(store: BlockingDatabase, settings: WorkerSettings, effect: outbox.Effect) -> bool:
    """Whether this attempt tries the paused tenant's print system now (one attempt per
    interval does); otherwise the effect waits for the next probe, no attempt counted."""
    retry_seconds = settings.auth_retry_seconds
    if store.run(downstream.take_probe, effect.tenant_id, retry_seconds=retry_seconds):
        return True
    current = store.run(downstream.pause_of, effect.tenant_id)
    if current is None:
        return True  # resumed meanwhile
    # The pause may end meanwhile: then the effect does not wait but goes ahead.
    return not store.run_in_transaction(
        downstream.postpone, effect.id, retry_at=current.retry_at, error=current.reason
    )


def wait(
    store: BlockingDatabase, settings: WorkerSettings, effect: outbox.Effect, error: str
) -> None:
    """The print system refused the credentials: pause the tenant; this effect waits for the
    next probe without counting an attempt (it is not the effect's fault)."""
    retry_at = store.run(
        downstream.pause, effect.tenant_id, error, retry_seconds=settings.auth_retry_seconds
    )
    waiting = provisioning_log.effect_entry(effect, provisioning_log.RETRIED, error=error)
    store.run_in_transaction(wait_and_log, effect, waiting, retry_at=retry_at, error=error)
    _log.warning("tenant_paused", tenant_id=effect.tenant_id, effect_id=effect.id, error=error)


async def wait_and_log(
    conn: Connection,
    dialect: Dialect,
    effect: outbox.Effect,
    waiting: provisioning_log.Entry,
    *,
    retry_at: str,
    error: str,
) -> None:
    """Let the effect wait for the tenant's next probe (no attempt counted) and log why. If the
    pause ended meanwhile, the effect's claim runs out and the relay sends it again."""
    if await downstream.postpone(conn, dialect, effect.id, retry_at=retry_at, error=error):
        await provisioning_log.insert(conn, dialect, [waiting])


def test_connection(
    store: BlockingDatabase, connector_for: Callable[[int], Connector], effect: outbox.Effect
) -> None:
    """The connection test an operator asked for: its outcome is recorded for the console (a
    failure too: the test is done either way), and a passing test resumes a paused tenant."""
    try:
        message = connector_for(effect.tenant_id).check()
        ok = True
    except DownstreamError as error:
        message, ok = error.message, False
    except Exception as error:  # a fault of ours: still an answer for the operator
        _log.exception("connection_test_crashed", effect_id=effect.id)
        reason = clean_error(str(error))
        message, ok = f"the test could not run ({type(error).__name__}: {reason})", False
    store.run(downstream.record_check, effect.tenant_id, ok=ok, message=message)
    if ok:
        store.run(downstream.resume, effect.tenant_id)
    store.run_in_transaction(_complete, effect)


async def _complete(conn: Connection, dialect: Dialect, effect: outbox.Effect) -> None:
    await outbox.complete(conn, dialect, effect.id)
