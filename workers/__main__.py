"""The effects pipeline of one process: relay, broker and (embedded) worker.

``printsync serve`` runs a :class:`Pipeline` in a child process (``python -m workers --wake-fd``,
see ``printsync.pipeline_process``), woken through a pipe after each commit:

- embedded mode (no ``PRINTSYNC_BROKER_URL``): an in-memory ``StubBroker``, a Dramatiq ``Worker``
  with ``embedded_worker_threads`` threads, and the relay, so ``printsync serve`` with SQLite is
  the whole system;
- with a broker URL: only the relay, which enqueues into Redis or RabbitMQ for the
  ``printsync worker`` processes.

``python -m workers`` alone runs the embedded pipeline without an API, e.g. to drain the outbox
of a SQLite database.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Mapping
from types import FrameType

import dramatiq
import structlog

from storage.blocking import BlockingDatabase
from storage.database import Database
from storage.settings import get_settings as get_database_settings
from workers.actors import Actors, declare
from workers.broker import build_broker
from workers.effects import Effects
from workers.operations import Operations
from workers.relay import Relay
from workers.settings import DAY_SECONDS, WorkerSettings, get_settings

_log = structlog.get_logger(__name__)

#: How long the in-process consumer waits for a message before looking again (ms).
CONSUMER_TIMEOUT_MS = 100


class Pipeline:
    """Relay (always) plus broker and worker threads (embedded mode) in this process."""

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
            settings, database_url, environ, busy_timeout_ms=busy_timeout_ms
        )
        self.actors: Actors = declare(self.broker, self.effects, settings)
        self.store = BlockingDatabase(database_url, busy_timeout_ms=busy_timeout_ms)
        self.relay = Relay(
            self.store,
            self.actors.send,
            lease_seconds=settings.lease_seconds,
            sweep_interval_seconds=settings.sweep_interval_seconds,
            batch_size=settings.relay_batch_size,
            prune_after_seconds=settings.done_retention_days * DAY_SECONDS,
            after_pass=self._forget_dead_letters,
        )
        self.worker: dramatiq.Worker | None = None
        self.operations: Operations | None = None
        if self.run_worker:
            self.operations = Operations(
                settings, database_url, busy_timeout_ms=busy_timeout_ms, serve_metrics=True
            )

    @classmethod
    def from_environment(cls) -> Pipeline:
        database = get_database_settings()
        return cls(
            get_settings(),
            database.database_url,
            environ=os.environ,
            busy_timeout_ms=database.database_busy_timeout_ms,
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


def watch_parent(fd: int, pipeline: Pipeline, stop: threading.Event) -> threading.Thread:
    """Read the wake-up pipe of ``printsync serve``: each byte asks the relay for a pass; the end
    of the pipe (the API process is gone) stops this process."""

    def run() -> None:
        try:
            while os.read(fd, 4096):
                pipeline.relay.wake()
        except OSError:
            pass
        finally:
            stop.set()

    thread = threading.Thread(target=run, name="printsync-parent", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    """Run the pipeline until SIGINT, SIGTERM or, with ``--wake-fd``, the end of that pipe.

    Alone (``python -m workers``) it is the embedded pipeline without an API, e.g. to drain the
    outbox of a SQLite database. Started by ``printsync serve`` it is that process's effects
    pipeline: the relay, plus the worker in the embedded mode.
    """
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--wake-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pipeline = Pipeline.from_environment()
    if args.wake_fd is None and not pipeline.run_worker:
        raise SystemExit("PRINTSYNC_BROKER_URL is set: run `printsync worker` instead")
    if pipeline.settings.pipeline_nice:
        os.nice(pipeline.settings.pipeline_nice)
    stop = threading.Event()

    def finish(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    pipeline.start()
    if args.wake_fd is not None:
        watch_parent(args.wake_fd, pipeline, stop)
    try:
        while not stop.wait(3600):
            pass
    finally:
        pipeline.stop()


if __name__ == "__main__":
    main()
