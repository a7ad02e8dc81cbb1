"""The scrape-time gauges of Entra's cycles and the deprovisioning guard, per tenant.

:class:`CycleGauges` keeps the rows read last (``refresh``, run by the gauge thread of
:class:`workers.operations.Operations`), so a scrape never waits on the database.
"""

from __future__ import annotations

from metrics import catalog
from metrics.collectors import GaugeCollector, Row
from storage import clock, cycles, guard
from storage.blocking import BlockingDatabase
from storage.database import Database


async def _read(db: Database) -> dict[str, list[Row]]:
    duration: list[Row] = []
    size: list[Row] = []
    last: list[Row] = []
    for tenant, started, ended, requests in await cycles.latest_by_tenant(db):
        key = (tenant,)
        ended_at = clock.parse(ended)
        duration.append((key, (ended_at - clock.parse(started)).total_seconds()))
        size.append((key, requests))
        last.append((key, ended_at.timestamp()))
    held: list[Row] = [
        ((tenant,), count) for tenant, count in (await guard.held_by_tenant(db)).items()
    ]
    return {"duration": duration, "size": size, "last": last, "held": held}


class CycleGauges:
    def __init__(self) -> None:
        self._rows: dict[str, list[Row]] = {}
        self.collectors = (
            GaugeCollector(catalog.CYCLE_DURATION, lambda: self._rows.get("duration", [])),
            GaugeCollector(catalog.CYCLE_REQUESTS, lambda: self._rows.get("size", [])),
            GaugeCollector(catalog.CYCLE_LAST_REQUEST, lambda: self._rows.get("last", [])),
            GaugeCollector(catalog.EFFECTS_HELD, lambda: self._rows.get("held", [])),
        )

    def refresh(self, store: BlockingDatabase) -> None:
        self._rows = store.run(_read)

    async def refresh_async(self, db: Database) -> None:
        """:meth:`refresh` on an event loop (the embedded API's ``/metrics``)."""
        self._rows = await _read(db)
