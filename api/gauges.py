"""The database's gauges on the API's ``/metrics``, for the embedded mode.

``printsync serve`` without a broker is one endpoint: its ``/metrics`` carries, besides the
request metrics, what the database says when Prometheus scrapes (``printsync_outbox_pending``,
``printsync_outbox_oldest_pending_age_seconds``, ``printsync_effects_dead``,
``printsync_tenant_health``, and what the composition root adds: Entra's cycles and the effects
the deprovisioning guard holds). :class:`DatabaseGauges` reads them on a scrape when its figures
are older than ``max_age_seconds`` (one outbox query and the health model's few queries per
tenant), so scraping often costs nothing more; a failed read keeps the last figures and is
counted in ``printsync_metrics_source_errors_total{collector="api_gauges"}``. In the
distributed mode the sweeper of ``printsync worker`` exports these gauges instead, once for all
API replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

import structlog
from prometheus_client.registry import Collector

from metrics import catalog, exposition
from metrics.collectors import OutboxCollector, OutboxSnapshot, TenantHealthCollector
from storage import outbox
from storage.database import Database
from storage.health import HealthBoard, HealthPolicy

_log = structlog.get_logger(__name__)

#: How old the figures may be before a scrape reads them again.
MAX_AGE_SECONDS = 10.0


class MoreGauges(Protocol):
    """Gauges of another package the composition root adds (Entra's cycles, held effects):
    their collectors, and how to read their figures from the database."""

    @property
    def collectors(self) -> Sequence[Collector]: ...

    async def refresh_async(self, db: Database) -> None: ...


class DatabaseGauges:
    """The scrape-time gauges of one API process, read from its database at most every
    ``max_age_seconds``."""

    def __init__(
        self,
        policy: HealthPolicy,
        more: Sequence[MoreGauges] = (),
        max_age_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self._policy = policy
        self._more = tuple(more)
        self._max_age = max_age_seconds
        self._snapshot = OutboxSnapshot()
        self._board = HealthBoard()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()
        self._collectors: tuple[Collector, ...] = (
            OutboxCollector(lambda: self._snapshot, kinds=outbox.KINDS, name="api_outbox"),
            TenantHealthCollector(self._board.rows, name="api_tenant_health"),
            *(collector for gauges in self._more for collector in gauges.collectors),
        )

    def register(self) -> None:
        for collector in self._collectors:
            exposition.register_scrape_collector(collector)

    def unregister(self) -> None:
        for collector in self._collectors:
            exposition.unregister_scrape_collector(collector)

    def _fresh(self) -> bool:
        return self._read_at is not None and time.monotonic() - self._read_at < self._max_age

    async def refresh(self, db: Database) -> None:
        """Read the figures again if they are older than ``max_age_seconds``."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            try:
                stats = await outbox.pending_stats(db)
                await self._board.refresh(db, self._policy)
                for gauges in self._more:
                    await gauges.refresh_async(db)
            except Exception:
                _log.exception("metrics_source_failed", collector="api_gauges")
                catalog.METRICS_SOURCE_ERRORS.labels("api_gauges").inc()
                return
            self._snapshot = stats.snapshot()
            self._read_at = time.monotonic()


__all__ = ["MAX_AGE_SECONDS", "DatabaseGauges"]
