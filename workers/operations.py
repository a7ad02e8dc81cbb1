"""What a worker-side process does besides running effects: keep tenant health current, send
failure and recovery digests, export the outbox and health gauges, and record each tenant's
periodic ``tenant.reconcile`` effect (every ``PRINTSYNC_RECONCILE_INTERVAL_SECONDS``; the
effect's key holds the interval's number, so several processes record it once).

One ``Operations`` runs in the embedded ``printsync serve`` process and in the sweeper process
of ``printsync worker``, so exactly one place per deployment mails digests and publishes the
scrape-time gauges.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from metrics import exposition
from metrics.collectors import OutboxCollector, OutboxSnapshot, TenantHealthCollector
from storage import outbox
from storage import reconcile as reconcile_records
from storage.blocking import BlockingDatabase
from storage.health import HealthBoard
from workers import notify
from workers.cycle_gauges import CycleGauges
from workers.settings import WorkerSettings

_log = structlog.get_logger(__name__)

#: How often the outbox gauges are re-read (seconds); a scrape never waits on the database.
GAUGE_REFRESH_SECONDS = 10.0


#: How often the reconcile schedule is looked at (at most; less often for a shorter interval).
RECONCILE_CHECK_SECONDS = 60.0


def refresh_seconds() -> float:
    """Read at each pass so a test can shorten it."""
    return GAUGE_REFRESH_SECONDS


def reconcile_check_seconds(interval: float) -> float:
    """Read at each pass so a test can shorten it."""
    return min(interval, RECONCILE_CHECK_SECONDS)


class Operations:
    def __init__(
        self,
        settings: WorkerSettings,
        database_url: str,
        *,
        busy_timeout_ms: int = 5000,
        serve_metrics: bool = False,
    ) -> None:
        self.settings = settings
        self.board = HealthBoard()
        self.stop_event = threading.Event()
        self._database_url = database_url
        self._busy_timeout_ms = busy_timeout_ms
        self._store = BlockingDatabase(database_url, busy_timeout_ms=busy_timeout_ms)
        self._snapshot = OutboxSnapshot()
        self._serve_metrics = serve_metrics
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._cycles = CycleGauges()
        self._collectors = (
            OutboxCollector(lambda: self._snapshot, kinds=outbox.KINDS),
            TenantHealthCollector(self.board.rows),
            *self._cycles.collectors,
        )

    def start(self) -> None:
        for collector in self._collectors:
            exposition.register_scrape_collector(collector)
        self._spawn("printsync-gauges", self._refresh_gauges)
        self._spawn("printsync-notify", self._notify)
        self._spawn("printsync-reconcile", self._schedule_reconciles)
        if self._serve_metrics and self.settings.worker_metrics_port:
            self._server, _ = exposition.serve_metrics(
                self.settings.worker_metrics_host, self.settings.worker_metrics_port
            )

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout)
        for collector in self._collectors:
            exposition.unregister_scrape_collector(collector)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._store.close()

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _refresh_gauges(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._snapshot = self._store.run(outbox.pending_stats).snapshot()
                self._cycles.refresh(self._store)
            except Exception:
                _log.exception("gauge_refresh_failed")
            self.stop_event.wait(refresh_seconds())

    def _schedule_reconciles(self) -> None:
        # The first look comes after one check interval: a process that starts and stops
        # (a restart loop, a test) does not compare print systems on every start.
        interval = self.settings.reconcile_interval_seconds
        while not self.stop_event.wait(reconcile_check_seconds(interval)):
            try:
                self._store.run(reconcile_records.schedule_due, interval)
            except Exception:
                _log.exception("reconcile_schedule_failed")

    def _notify(self) -> None:
        try:
            notify.run_blocking(
                self.stop_event,
                self.settings.notify,
                database_url=self._database_url,
                busy_timeout_ms=self._busy_timeout_ms,
                policy=self.settings.health,
                board=self.board,
            )
        except Exception:
            _log.exception("notify_loop_failed")
