"""The relay: from the outbox to the broker.

A relay thread claims pending effects that are due (``storage.outbox.claim_due``, with a lease),
sends one message per effect carrying its id, and marks them dispatched. It runs a pass

- right after a commit that recorded effects: the API process hangs :meth:`Relay.wake` on its
  database's commit listeners, so in the common case an effect is sent within milliseconds;
- every ``sweep_interval_seconds`` (the sweeper): effects committed by a process that died
  before its relay ran, effects whose lease ran out because their message was lost (a crashed
  embedded worker, a broker that dropped it), retries that fell due, and scheduled effects.

If the process dies between send and mark, the message is sent again after the lease, and the
actor skips the duplicate once the effect is done. A send that fails (broker down) releases the
claims it could not honour, so the next sweep tries again; until then commits do not wake the
relay, so an outage costs one claim per sweep interval instead of one per commit.

Several relays may run at once (API processes, ``printsync worker``): claims keep their batches
apart. :func:`run_sweeper` is the relay of ``printsync worker``, run in a fork process of Dramatiq's
command line; it only sweeps, since no commit of its own process wakes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from storage import outbox
from storage.blocking import BlockingDatabase
from storage.errors import DatabaseUnavailable
from storage.settings import DatabaseSettings
from workers.actors import Actors
from workers.settings import DAY_SECONDS, WorkerSettings

_log = structlog.get_logger(__name__)

Send = Callable[[str, int], None]

#: How often done effects older than the retention are pruned.
PRUNE_INTERVAL_SECONDS = 3600.0


class Relay:
    """Sends pending effects to the broker; wake it after commits, it sweeps on its own."""

    def __init__(
        self,
        store: BlockingDatabase,
        send: Send,
        *,
        lease_seconds: float,
        sweep_interval_seconds: float,
        batch_size: int = 200,
        prune_after_seconds: float | None = None,
        after_pass: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._send = send
        self._lease = lease_seconds
        self._interval = sweep_interval_seconds
        self._batch = batch_size
        self._prune_after = prune_after_seconds
        self._after_pass = after_pass
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = time.monotonic()
        self._resume_at = 0.0  # after a failed send, wake-ups wait until then
        self.sent = 0

    @classmethod
    def from_settings(
        cls,
        store: BlockingDatabase,
        send: Send,
        settings: WorkerSettings,
        *,
        after_pass: Callable[[], None] | None = None,
    ) -> Relay:
        return cls(
            store,
            send,
            lease_seconds=settings.lease_seconds,
            sweep_interval_seconds=settings.sweep_interval_seconds,
            batch_size=settings.relay_batch_size,
            prune_after_seconds=settings.done_retention_days * DAY_SECONDS,
            after_pass=after_pass,
        )

    def wake(self) -> None:
        """Ask for a pass now (cheap; safe from any thread, including the event loop)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the relay is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="printsync-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._store.close_thread()

    def run(self) -> None:
        """Pass after pass until stopped (the body of the relay thread)."""
        try:
            while not self._stop.is_set():
                self._wake.wait(self._interval)
                self._wake.clear()
                pause = self._resume_at - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)
                if self._stop.is_set():
                    break
                self.safe_pass()
        finally:
            self._store.close_thread()

    def safe_pass(self) -> int:
        """One pass that logs failures instead of raising them (the loop goes on)."""
        try:
            return self.dispatch()
        except DatabaseUnavailable as error:
            _log.warning("relay_database_unavailable", error=str(error))
        except Exception:
            _log.exception("relay_pass_failed")
        return 0

    def dispatch(self) -> int:
        """Send every due effect now; returns how many messages went out."""
        total = 0
        while not self._stop.is_set():
            claimed = self._store.run(
                outbox.claim_due, limit=self._batch, lease_seconds=self._lease
            )
            sent = self._send_all(claimed)
            total += len(sent)
            if len(sent) < len(claimed) or len(claimed) < self._batch:
                break
        self.sent += total
        self._maintain()
        return total

    def _send_all(self, claimed: list[outbox.Claimed]) -> list[int]:
        sent: list[int] = []
        try:
            for effect in claimed:
                self._send(effect.kind, effect.id)
                sent.append(effect.id)
        except Exception as error:
            self._resume_at = time.monotonic() + self._interval
            _log.warning(
                "relay_send_failed",
                error=type(error).__name__,
                sent=len(sent),
                unsent=len(claimed) - len(sent),
            )
            self._store.run(outbox.release, [effect.id for effect in claimed[len(sent) :]])
        finally:
            self._store.run(outbox.mark_dispatched, sent)
        return sent

    def _maintain(self) -> None:
        if self._after_pass is not None:
            self._after_pass()
        if self._prune_after is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
        pruned = self._store.run(outbox.prune, older_than_seconds=self._prune_after)
        if pruned:
            _log.info("outbox_pruned", effects=pruned)


def run_sweeper(settings: WorkerSettings, database: DatabaseSettings, actors: Actors) -> int:
    """The sweeping relay of ``printsync worker``, with the actors of this process: sweep until
    the process is told to stop."""
    store = BlockingDatabase(
        database.database_url, busy_timeout_ms=database.database_busy_timeout_ms
    )
    relay = Relay.from_settings(store, actors.send, settings)
    from workers.operations import Operations

    operations = Operations(
        settings,
        database.database_url,
        busy_timeout_ms=database.database_busy_timeout_ms,
        serve_metrics=True,
    )
    operations.start()
    _log.info("sweeper_started", interval=settings.sweep_interval_seconds)
    try:
        relay.safe_pass()
        relay.run()
    finally:
        operations.stop()
        store.close()
        actors.broker.close()
    return 0
