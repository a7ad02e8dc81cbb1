"""Retention of the provisioning log.

Entries older than ``retention_days`` and, per tenant, all but the newest
``max_rows_per_tenant`` are deleted in bounded batches, so pruning never holds the database (or,
on SQLite, the event loop) for long.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from storage import clock
from storage.database import Database
from storage.provisioning_log.query import tenant_ids
from storage.sql import compile_text

_log = structlog.get_logger(__name__)

#: Rows one prune statement deletes at most; small enough to keep each transaction short.
PRUNE_BATCH: Final = 2000

_PRUNE_OLD = (
    "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time < :cutoff ORDER BY time LIMIT :batch)"
)
_NTH_NEWEST = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant"
    " ORDER BY time DESC LIMIT 1 OFFSET :keep"
)
_PRUNE_TENANT = (
    "DELETE FROM provisioning_log WHERE id IN (SELECT id FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time <= :cutoff ORDER BY time LIMIT :batch)"
)


async def prune(
    db: Database,
    *,
    retention_days: float,
    max_rows_per_tenant: int,
    now: datetime | None = None,
    batch: int = PRUNE_BATCH,
    stop: asyncio.Event | None = None,
) -> int:
    """Delete entries older than ``retention_days`` and, per tenant, all but the newest
    ``max_rows_per_tenant``; return how many were deleted. Works tenant by tenant (on the
    (tenant, time) index) in transactions of at most ``batch`` rows, and stops early when
    ``stop`` is set."""
    cutoff = clock.stamp((now or clock.now()) - timedelta(days=retention_days))
    deleted = 0
    for tenant_id in await tenant_ids(db):
        if stop is not None and stop.is_set():
            break
        deleted += await _delete_batches(
            db, _PRUNE_OLD, {"tenant": tenant_id, "cutoff": cutoff}, batch, stop
        )
        async with db.reader() as conn:
            row = await conn.fetchone(
                compile_text(_NTH_NEWEST, db.dialect),
                {"tenant": tenant_id, "keep": max_rows_per_tenant},
            )
        if row is not None:
            deleted += await _delete_batches(
                db, _PRUNE_TENANT, {"tenant": tenant_id, "cutoff": row[0]}, batch, stop
            )
    if deleted:
        _log.info("provisioning_log_pruned", deleted=deleted)
    return deleted


async def _delete_batches(
    db: Database, sql: str, params: dict[str, Any], batch: int, stop: asyncio.Event | None
) -> int:
    statement = compile_text(sql, db.dialect)
    total = 0
    while True:
        async with db.transaction() as conn:
            count: int = await conn.execute(statement, {**params, "batch": batch})
        total += count
        if count < batch or (stop is not None and stop.is_set()):
            return total
        await asyncio.sleep(0)
