"""What reconciling a tenant's print system needs from the records: which users printsync
manages, which groups the print system could not hold, and when each tenant's periodic
reconcile falls due.

- **Skipped groups** (table ``skipped_groups``): a SCIM group whose name the print system cannot
  hold (for PaperCut: not in its user directory source). The worker records it with the reason
  when it gives up on adding the group, and forgets it when the group is added after all or is
  deleted. ``printsync tenant status`` lists them.
- **Periodic reconcile**: :func:`schedule_due` records one ``tenant.reconcile`` effect per tenant
  per interval. The key holds the interval's number (``tenant.reconcile:{tenant}:t{n}``), so any
  number of processes calling it at any time record each one once.
- **Repairs**: a ``tenant.reconcile`` effect records an ``account.repair`` effect per account
  that drifted, keyed ``account.repair:{user}:r{reconcile effect id}``, and a ``group.sync`` per
  skipped group (``group.sync:{group}:r{id}``); :func:`repairs_of` finds them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from storage import clock, outbox
from storage.database import Connection, Database
from storage.outbox.effects import COLUMNS, effect_of
from storage.records import groups, memberships, skipped_groups, tenants, users
from storage.sql import Dialect, Statement, compile_core, compile_text


@dataclass(frozen=True, slots=True)
class SkippedGroup:
    """A group the print system could not hold, and why."""

    group_id: str
    display_name: str
    reason: str
    skipped_at: str

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.group_id,
            "display_name": self.display_name,
            "reason": self.reason,
            "skipped_at": self.skipped_at,
        }


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    mine = sa.and_(skipped_groups.c.tenant_id == p("tenant"), skipped_groups.c.group_id == p("id"))
    return {
        "forget": compile_core(sa.delete(skipped_groups).where(mine), dialect),
        "remember": compile_core(
            sa.insert(skipped_groups).values(
                tenant_id=p("tenant"),
                group_id=p("id"),
                display_name=p("name"),
                reason=p("reason"),
                skipped_at=p("now"),
            ),
            dialect,
        ),
        "skipped": compile_core(
            sa.select(
                skipped_groups.c.group_id,
                skipped_groups.c.display_name,
                skipped_groups.c.reason,
                skipped_groups.c.skipped_at,
            )
            .where(skipped_groups.c.tenant_id == p("tenant"))
            .order_by(skipped_groups.c.display_name),
            dialect,
        ),
        "user_names": compile_core(
            sa.select(users.c.id, users.c.user_name)
            .where(users.c.tenant_id == p("tenant"))
            .order_by(users.c.user_name_ci),
            dialect,
        ),
        "member_names": compile_core(
            sa.select(users.c.user_name)
            .select_from(
                memberships.join(groups, groups.c.pk == memberships.c.group_pk).join(
                    users, users.c.pk == memberships.c.user_pk
                )
            )
            .where(groups.c.tenant_id == p("tenant"), groups.c.id == p("id"))
            .order_by(users.c.user_name_ci),
            dialect,
        ),
        "tenant_ids": compile_core(
            sa.select(tenants.c.id).where(tenants.c.disabled == sa.false()).order_by(tenants.c.id),
            dialect,
        ),
        "by_key": compile_text(f"SELECT {COLUMNS} FROM outbox WHERE effect_key = :key", dialect),
        "repairs": compile_text(
            f"SELECT {COLUMNS} FROM outbox WHERE tenant_id = :tenant AND kind = :kind"
            " AND effect_key LIKE :pattern ORDER BY id",
            dialect,
        ),
    }


# Skipped groups -------------------------------------------------------------------------------


async def mark_skipped(
    db: Database, tenant_id: int, group_id: str, display_name: str, reason: str
) -> None:
    """Record that the group could not be added to the print system, and why (replacing an
    earlier record of it)."""
    statements = _statements(db.dialect)
    params = {"tenant": tenant_id, "id": group_id}
    async with db.transaction() as conn:
        await conn.execute(statements["forget"], params)
        await conn.execute(
            statements["remember"],
            {**params, "name": display_name, "reason": reason, "now": clock.stamp()},
        )


async def forget_skipped(db: Database, tenant_id: int, group_id: str) -> None:
    """The group is in the print system after all, or is gone: no longer skipped."""
    async with db.transaction() as conn:
        await conn.execute(_statements(db.dialect)["forget"], {"tenant": tenant_id, "id": group_id})


async def skipped(db: Database, tenant_id: int) -> list[SkippedGroup]:
    """The tenant's skipped groups, by name."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["skipped"], {"tenant": tenant_id})
    return [SkippedGroup(row[0], row[1], row[2], row[3]) for row in rows]


# Whom printsync manages -------------------------------------------------------------------------


async def user_names(db: Database, tenant_id: int) -> list[tuple[str, str]]:
    """The id and userName of every user of the tenant (active or not): the accounts
    printsync manages are theirs."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["user_names"], {"tenant": tenant_id})
    return [(row[0], row[1]) for row in rows]


async def member_names(db: Database, tenant_id: int, group_id: str) -> list[str]:
    """The userNames of the group's members."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["member_names"], {"tenant": tenant_id, "id": group_id}
        )
    return [row[0] for row in rows]


# The periodic reconcile -------------------------------------------------------------------------


def reconcile_key(tenant_id: int, tag: str) -> str:
    """The idempotency key of one ``tenant.reconcile`` effect."""
    return f"{outbox.TENANT_RECONCILE}:{tenant_id}:{tag}"


async def schedule_due(
    db: Database, interval_seconds: float, *, now: datetime | None = None
) -> int:
    """Record the ``tenant.reconcile`` effect of the current interval for every enabled tenant
    that has none yet; returns how many statements ran (one per tenant)."""
    moment = now or clock.now()
    slot = math.floor(moment.timestamp() / interval_seconds)
    stamp = clock.stamp(moment)
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        ids = [row[0] for row in await conn.fetchall(statements["tenant_ids"], {})]
        for tenant_id in ids:
            await record_reconcile(conn, db.dialect, tenant_id, f"t{slot}", now=stamp)
    return len(ids)


async def record_reconcile(
    conn: Connection, dialect: Dialect, tenant_id: int, tag: str, *, now: str | None = None
) -> str:
    """Record one ``tenant.reconcile`` effect (a no-op if its key exists); returns the key."""
    key = reconcile_key(tenant_id, tag)
    await outbox.record(
        conn,
        dialect,
        tenant_id=tenant_id,
        kind=outbox.TENANT_RECONCILE,
        subject_id=str(tenant_id),
        key=key,
        now=now,
    )
    return key


async def repairs_of(
    db: Database, tenant_id: int, reconcile_id: int, kind: str = outbox.ACCOUNT_REPAIR
) -> list[outbox.Effect]:
    """The effects of ``kind`` a ``tenant.reconcile`` effect recorded: its ``account.repair``
    effects, or (``group.sync``) the new tries of skipped groups."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["repairs"],
            {"tenant": tenant_id, "kind": kind, "pattern": f"{kind}:%:r{reconcile_id}"},
        )
    return [effect_of(row) for row in rows]


async def record_now(db: Database, tenant_id: int, tag: str) -> outbox.Effect:
    """Record a ``tenant.reconcile`` effect tagged ``tag`` (``printsync reconcile``) and
    return it."""
    async with db.transaction() as conn:
        key = await record_reconcile(conn, db.dialect, tenant_id, tag)
        row = await conn.fetchone(_statements(db.dialect)["by_key"], {"key": key})
    assert row is not None
    return effect_of(row)


def repair_key(user_id: str, reconcile_id: int) -> str:
    return f"{outbox.ACCOUNT_REPAIR}:{user_id}:r{reconcile_id}"


__all__ = [
    "SkippedGroup",
    "forget_skipped",
    "mark_skipped",
    "member_names",
    "reconcile_key",
    "record_now",
    "record_reconcile",
    "repair_key",
    "repairs_of",
    "schedule_due",
    "skipped",
    "user_names",
]
