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
- **Pages**: a reconcile compares the tenant's users a page at a time, in the order of their
  rows (:func:`user_page`: keyset on ``users.pk``, never OFFSET). Each page is its own
  ``tenant.reconcile`` effect; the one that completes a page records the next
  (``tenant.reconcile:{tenant}:r{first page's id}:p{n}``, :func:`page_key`) in the same
  transaction, with the cursor in its payload, until the last page.
- **Repairs**: each page records an ``account.repair`` effect per account that drifted, keyed
  ``account.repair:{user}:r{that page's effect id}``, and the first page a ``group.sync`` per
  skipped group (``group.sync:{group}:r{id}``); :func:`repairs_of` finds them again over all
  pages of a reconcile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from storage import clock, counts, outbox
from storage.database import Connection, Database
from storage.outbox.effects import COLUMNS, effect_of
from storage.records import groups, memberships, skipped_groups, tenants, users
from storage.scim.schema import USER_TYPE
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
        "user_page": compile_text(
            "SELECT pk, id, user_name FROM users WHERE tenant_id = :tenant AND pk > :after"
            " ORDER BY pk LIMIT :limit",
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
        "by_id": compile_text(f"SELECT {COLUMNS} FROM outbox WHERE id = :id", dialect),
        "repairs": compile_text(
            f"SELECT {COLUMNS} FROM outbox WHERE tenant_id = :tenant AND kind = :kind"
            " AND effect_key LIKE :pattern ORDER BY id",
            dialect,
        ),
        # Effects of a kind recorded since a moment: the repairs of a reconcile's pages are
        # among them (each page records its own when it completes, after the first began).
        "recorded_since": compile_text(
            f"SELECT {COLUMNS} FROM outbox WHERE tenant_id = :tenant AND kind = :kind"
            " AND created_at >= :since ORDER BY id",
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


@dataclass(frozen=True, slots=True)
class PageUser:
    """A user of one page of a reconcile: its row (the page's cursor), id and userName."""

    pk: int
    user_id: str
    user_name: str


async def user_page(db: Database, tenant_id: int, after: int, limit: int) -> list[PageUser]:
    """Up to ``limit`` users of the tenant (active or not) whose rows come after ``after`` (0:
    from the first), in the order of their rows: the accounts printsync manages are theirs.
    A user renamed meanwhile keeps its place, so a walk meets each user once."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["user_page"],
            {"tenant": tenant_id, "after": after, "limit": limit},
        )
    return [PageUser(row[0], row[1], row[2]) for row in rows]


async def user_count(db: Database, tenant_id: int) -> int:
    """How many users the tenant has (from the per-tenant counts, no scan)."""
    async with db.reader() as conn:
        return await counts.total(conn, db.dialect, tenant_id, USER_TYPE.name)


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


def page_key(tenant_id: int, reconcile_id: int, page: int) -> str:
    """The key of page ``page`` (2 and on) of the reconcile whose first page is the effect
    ``reconcile_id``."""
    return reconcile_key(tenant_id, f"r{reconcile_id}:p{page}")


async def effect_by_key(db: Database, key: str) -> outbox.Effect | None:
    """The effect recorded under ``key``, if any (the next page of a reconcile)."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["by_key"], {"key": key})
    return None if row is None else effect_of(row)


async def repairs_of(
    db: Database, tenant_id: int, reconcile_id: int, kind: str = outbox.ACCOUNT_REPAIR
) -> list[outbox.Effect]:
    """The effects of ``kind`` a reconcile recorded, ``reconcile_id`` being its first page:
    the ``account.repair`` effects of all its pages, or (``group.sync``) the new tries of
    skipped groups, which the first page records."""
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        first = await conn.fetchone(statements["by_id"], {"id": reconcile_id})
        if first is None:
            return []
        pages = await conn.fetchall(
            statements["repairs"],
            {
                "tenant": tenant_id,
                "kind": outbox.TENANT_RECONCILE,
                "pattern": reconcile_key(tenant_id, f"r{reconcile_id}:p%"),
            },
        )
        ids = {reconcile_id, *(effect_of(row).id for row in pages)}
        rows = await conn.fetchall(
            statements["recorded_since"],
            {"tenant": tenant_id, "kind": kind, "since": effect_of(first).created_at},
        )
    # Their keys end in ``:r{page's id}``.
    suffixes = {f":r{page}" for page in ids}
    found = (effect_of(row) for row in rows)
    return [item for item in found if item.effect_key[item.effect_key.rfind(":r") :] in suffixes]


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
    "PageUser",
    "SkippedGroup",
    "effect_by_key",
    "forget_skipped",
    "mark_skipped",
    "member_names",
    "page_key",
    "reconcile_key",
    "record_now",
    "record_reconcile",
    "repair_key",
    "repairs_of",
    "schedule_due",
    "skipped",
    "user_count",
    "user_page",
]
