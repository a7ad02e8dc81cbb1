"""Per-tenant counts of users and groups, changed in the writing transaction.

A list without a filter answers ``totalResults`` from these rows instead of ``count(*)``, which
would read the tenant's whole index on every page (tens of milliseconds at a million users).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from storage.database import Connection
from storage.records import resource_counts
from storage.sql import Dialect, Statement, compile_core, insert

#: Slots per count: concurrent creates on PostgreSQL spread their row locks over them.
SLOTS = 8


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    upsert = insert(resource_counts, dialect)
    return {
        "add": compile_core(
            upsert.values(
                tenant_id=p("tenant"), resource=p("resource"), slot=p("slot"), n=p("n")
            ).on_conflict_do_update(
                index_elements=["tenant_id", "resource", "slot"],
                set_={"n": resource_counts.c.n + upsert.excluded.n},
            ),
            dialect,
        ),
        "total": compile_core(
            sa.select(sa.func.coalesce(sa.func.sum(resource_counts.c.n), 0)).where(
                resource_counts.c.tenant_id == p("tenant"),
                resource_counts.c.resource == p("resource"),
            ),
            dialect,
        ),
    }


def slot_of(resource_id: str) -> int:
    """The slot of a resource: from its (random) id, so a create and its delete meet."""
    return int(resource_id[:2], 16) % SLOTS


async def add(
    conn: Connection, dialect: Dialect, tenant_id: int, resource: str, resource_id: str, n: int
) -> None:
    """Count ``n`` (1 or -1) more resources of the tenant, inside the caller's transaction."""
    await conn.execute(add_statement(dialect), add_params(tenant_id, resource, resource_id, n))


def add_statement(dialect: Dialect) -> Statement:
    """The statement :func:`add` runs, for a caller that runs it as part of one of its own."""
    return _statements(dialect)["add"]


def add_params(tenant_id: int, resource: str, resource_id: str, n: int) -> dict[str, Any]:
    return {"tenant": tenant_id, "resource": resource, "slot": slot_of(resource_id), "n": n}


async def total(conn: Connection, dialect: Dialect, tenant_id: int, resource: str) -> int:
    row = await conn.fetchone(
        _statements(dialect)["total"], {"tenant": tenant_id, "resource": resource}
    )
    return int(row[0]) if row else 0
