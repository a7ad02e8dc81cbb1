"""The effects pipeline of one process: relay, broker and (embedded) worker.

``printsync serve`` runs a :class:`Pipeline` in a child process (see
``printsync.pipeline_process``), woken through a pipe after each commit:

- embedded mode (no broker URL): an in-memory ``StubBroker``, a Dramatiq ``Worker`` with
  ``embedded_worker_threads`` threads, and the relay, so ``printsync serve`` with SQLite is the
  whole system;
- with a broker URL: only the relay, which enqueues into Redis or RabbitMQ for the
  ``printsync worker`` processes.
"""

from __future__ import annotations

from collections.abc import Mapping

import dramatiq
import structlog

from storage.blocking import BlockingDatabase
from storage.database import Database
from workers.actors import Actors, declare
from workers.broker import build_broker
from workers.effects import Effects
from workers.operations import Operations
from workers.relay import Relay
from workers.settings import WorkerSettings

_log = structlog.get_logger(__name__)

#: How long the in-process consumer waits for a message before looking again (ms).
CONSUMER_TIMEOUT_MS = 100


class Pipeline:
    """Relay (always) plus broker and worker threads (embedded mode) in this process.

    ``environ`` holds the variables that tenants' connectors name (PaperCut tokens).
    """

    def __init__(
        self,
        settings: WorkerSettings,
        database_url: str,
        *,
        environ: Mapping[str, str],
        busy_timeout_ms: int = 5000,
        worker: bool | None = None,
    ) -> None:
        self.settings = settings
        self.run_worker = settings.embedded if worker is None else worker
        self.broker = build_broker(settings)
        self.effects = Effects.from_settings(
            settings, database_url, busy_timeout_ms=busy_timeout_ms, environ=environ
        )
        self.actors: Actors = declare(self.broker, self.effects, settings)
        self.store = BlockingDatabase(database_url, busy_timeout_ms=busy_timeout_ms)
        self.relay = Relay.from_settings(
            self.store, self.actors.send, settings, after_pass=self._forget_dead_letters
        )
        self.worker: dramatiq.Worker | None = None
        self.operations: Operations | None = None
        if self.run_worker:
            self.operations = Operations(
                settings, database_url, busy_timeout_ms=busy_timeout_ms, serve_metrics=True
            )

    def start(self) -> None:
        if self.run_worker:
            self.broker.emit_after("process_boot")  # enables time limits in this process
            self.worker = dramatiq.Worker(
                self.broker,
                worker_threads=self.settings.embedded_worker_threads,
                worker_timeout=CONSUMER_TIMEOUT_MS,
            )
            self.worker.start()
        if self.operations is not None:
            self.operations.start()
        self.relay.start()
        self.relay.wake()  # a first pass picks up what a previous process left behind
        _log.info("pipeline_started", broker=self.settings.broker, worker=self.run_worker)

    def attach(self, db: Database) -> None:
        """Wake the relay after each commit of ``db`` that recorded effects (create_app's
        ``on_start`` hook)."""
        db.listeners.append(self.relay.wake)

    def stop(self, timeout: float = 10.0) -> None:
        if self.operations is not None:
            self.operations.stop(timeout)
        self.relay.stop(timeout)
        if self.worker is not None:
            self.worker.stop(timeout=int(timeout * 1000))
            self.worker = None
        self.broker.close()
        self.store.close()
        self.effects.close()

    def _forget_dead_letters(self) -> None:
        """The in-memory broker keeps failed messages forever; the outbox has their record."""
        queues = getattr(self.broker, "dead_letters_by_queue", None)
        if queues is not None:
            queues.clear()
