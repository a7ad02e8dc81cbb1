"""Seed a printsync database with many users, fast, for the scale benchmarks.

Creating 1,000,000 users through ``POST /Users`` takes the best part of an hour; the scale runs
need the rows, not the requests. This script writes them straight into the tables in big batches
(``executemany`` on SQLite, ``COPY`` on PostgreSQL), but builds every row with the same storage
functions the API uses (each resource's ``validate``, ``resources.new_document``, ``dump``,
``new_id``, ``indexed.columns``), so a seeded user is byte for byte what ``POST /Users`` would
have stored.

What it writes for a new tenant (created through ``storage.tenants``, so it has a token):

- ``--users`` users with Entra's body, ``userName`` ``user0000042.TAG@contoso.example``;
- a group holding the first ``--group-members`` users (membership rows and ``member_count`` as
  ``storage.groups`` keeps them, as if created with its members) and an empty group;
- the tenant's resource counts (``storage.counts``), which unfiltered lists answer from;
- no outbox rows: seeded users count as already synced to the print system. They have no print
  accounts, so a reconcile would "repair" every one of them; :func:`mark_reconciled` records the
  current interval's periodic reconcile as done, which ``bench.scale`` uses so that its phases
  measure the requests, not a reconcile of the whole table running beside them.

It runs the migrations first and prints the tenant as ``printsync tenant create --json`` does,
plus what it seeded::

    python -m bench.seed --database-url sqlite:///var/big.sqlite3 --users 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import psycopg

from api.settings import ApiSettings
from printsync.settings import load_or_exit
from printsync.terminal import Progress
from storage import clock, counts, groups, indexed, migrate, outbox, resources, tenants, users
from storage import reconcile as reconcile_records
from storage.database import connect_sqlite, open_database, parse_url
from storage.documents import dump
from storage.ids import new_id
from storage.scim.schema import ENTERPRISE_USER, GROUP, USER

#: The columns a seeded user row sets, in the order of the bulk statements; the others
#: (``print_username``) stay NULL as after ``POST /Users``.
USER_COLUMNS = (
    "pk",
    "tenant_id",
    "id",
    "version",
    "created_at",
    "last_modified",
    "doc",
    "user_name",
    "user_name_ci",
    "external_id",
    "display_name",
    "work_email_ci",
    "active",
)
GROUP_COLUMNS = (
    "tenant_id",
    "id",
    "version",
    "member_count",
    "created_at",
    "last_modified",
    "doc",
    "display_name",
    "display_name_ci",
    "external_id",
)
MEMBERSHIP_COLUMNS = ("group_pk", "user_pk", "tenant_id")


class SeedError(Exception):
    """The database cannot be seeded as asked."""


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """What to seed: user count, size of the big group, how many users to hand back."""

    users: int
    group_members: int = 100_000
    #: Random (userName, id) pairs returned for the load phases.
    sample: int = 10_000
    #: Users outside the big group returned for the member-add phases.
    outsiders: int = 1_000
    batch: int = 50_000

    @property
    def members(self) -> int:
        return max(0, min(self.group_members, self.users))


@dataclass(slots=True)
class SeedResult:
    """The tenant, its groups, and users picked for the load phases."""

    name: str
    tenant_url: str
    token: str
    tenant_id: int
    tag: str
    users: int
    big_group_id: str
    big_group_members: int
    empty_group_id: str
    seconds: float
    sample: list[tuple[str, str]] = field(default_factory=list)
    outsiders: list[tuple[str, str]] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """``printsync tenant create --json``'s object, plus what was seeded."""
        return {
            "name": self.name,
            "tenant_url": self.tenant_url,
            "token": self.token,
            "notify": [],
            "connector": "ledger",
            "users": self.users,
            "groups": {
                "big": {"id": self.big_group_id, "members": self.big_group_members},
                "empty": {"id": self.empty_group_id, "members": 0},
            },
            "seconds": round(self.seconds, 1),
        }


# --------------------------------------------------------------------------------------
# Rows, built by the storage functions the API uses
# --------------------------------------------------------------------------------------


def user_name(index: int, tag: str) -> str:
    return f"user{index:07d}.{tag}@contoso.example"


def user_body(index: int, tag: str) -> dict[str, Any]:
    """Entra's POST /Users body for one user (the load generator's shape)."""
    name = user_name(index, tag)
    return {
        "schemas": [USER, ENTERPRISE_USER],
        "externalId": f"{tag}-{index:08d}",
        "userName": name,
        "active": True,
        "displayName": f"Bench User {index}",
        "name": {"givenName": "Bench", "familyName": f"User{index}"},
        "emails": [{"primary": True, "type": "work", "value": name}],
        ENTERPRISE_USER: {"department": "Printing", "employeeNumber": str(index)},
        "meta": {"resourceType": "User"},
        "roles": [],
    }


def user_row(
    body: object, *, pk: int, tenant_id: int, base: str, user_id: str, now: str
) -> tuple[Any, ...]:
    """One ``users`` row in :data:`USER_COLUMNS` order, as ``POST /Users`` writes it."""
    attrs, _ = resources.validate(users.SPEC, body)
    doc = resources.new_document(users.SPEC, attrs, base=base, resource_id=user_id, now=now)
    derived = indexed.columns("User", doc)
    return (
        pk,
        tenant_id,
        user_id,
        1,
        now,
        now,
        dump(doc),
        derived["user_name"],
        derived["user_name_ci"],
        derived["external_id"],
        derived["display_name"],
        derived["work_email_ci"],
        derived["active"],
    )


def group_row(
    display_name: str, *, tenant_id: int, base: str, members: int, now: str
) -> tuple[Any, ...]:
    """One ``groups`` row in :data:`GROUP_COLUMNS` order, as ``POST /Groups`` writes a group
    created with ``members`` members (the document never holds them)."""
    attrs, _ = resources.validate(groups.SPEC, {"schemas": [GROUP], "displayName": display_name})
    group_id = new_id()
    doc = resources.new_document(groups.SPEC, attrs, base=base, resource_id=group_id, now=now)
    derived = indexed.columns("Group", doc)
    return (
        tenant_id,
        group_id,
        1,
        members,
        now,
        now,
        dump(doc),
        derived["display_name"],
        derived["display_name_ci"],
        derived["external_id"],
    )


# --------------------------------------------------------------------------------------
# Drivers: the same bulk operations on SQLite and PostgreSQL
# --------------------------------------------------------------------------------------


def _insert_sql(table: str, columns: Sequence[str], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


class Bulk(Protocol):
    """One connection, explicit transactions, bulk inserts: the same operations on both
    databases."""

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def next_user_pks(self, count: int) -> list[int]:
        """Primary keys for ``count`` new users, taken inside the open transaction."""
        ...

    def insert_many(
        self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None: ...

    def insert_returning_pk(
        self, table: str, columns: Sequence[str], row: tuple[Any, ...]
    ) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL written with ``?`` placeholders; return its rows (if any)."""
        ...

    def close(self) -> None: ...


class _SQLite:
    def __init__(self, path: str) -> None:
        self.raw = connect_sqlite(path)
        # Bulk-load settings for this connection only: a crash mid-seed means seeding again.
        self.raw.execute("PRAGMA synchronous = OFF")
        self.raw.execute("PRAGMA cache_size = -262144")

    def begin(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def next_user_pks(self, count: int) -> list[int]:
        row = self.raw.execute("SELECT coalesce(max(pk), 0) FROM users").fetchone()
        first = int(row[0]) + 1
        return list(range(first, first + count))

    def insert_many(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        self.raw.executemany(_insert_sql(table, columns, "?"), rows)

    def insert_returning_pk(self, table: str, columns: Sequence[str], row: tuple[Any, ...]) -> int:
        found = self.raw.execute(_insert_sql(table, columns, "?") + " RETURNING pk", row)
        return int(found.fetchone()[0])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.raw.execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        if self.raw.in_transaction:  # a failed batch: keep what was committed before it
            self.raw.execute("ROLLBACK")
        self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.raw.close()


class _Postgres:
    def __init__(self, dsn: str) -> None:
        self.raw = psycopg.connect(dsn, autocommit=False)

    def begin(self) -> None:
        """psycopg opens the transaction on the first statement."""

    def commit(self) -> None:
        self.raw.commit()

    def next_user_pks(self, count: int) -> list[int]:
        rows = self.raw.execute(
            "SELECT nextval(pg_get_serial_sequence('users', 'pk'))"
            " FROM generate_series(1, %s) ORDER BY 1",
            (count,),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def insert_many(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        with (
            self.raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def insert_returning_pk(self, table: str, columns: Sequence[str], row: tuple[Any, ...]) -> int:
        found = self.raw.execute(_insert_sql(table, columns, "%s") + " RETURNING pk", row)
        result = found.fetchone()
        assert result is not None
        return int(result[0])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.raw.execute(sql.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        if self.raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            # Autovacuum would analyze the new rows soon; the first measurements should not
            # run on a planner that thinks the table is empty.
            self.raw.execute("ANALYZE users, groups, memberships")
            self.raw.commit()
        else:
            self.raw.rollback()
        self.raw.close()


def open_bulk(database_url: str) -> Bulk:
    url = parse_url(database_url)
    if url.dialect == "sqlite":
        assert url.path is not None
        if url.path == ":memory:":
            raise SeedError("an in-memory SQLite database would vanish with this process")
        return _SQLite(url.path)
    return _Postgres(url.asyncpg_dsn)


# --------------------------------------------------------------------------------------
# Per-tenant counts
# --------------------------------------------------------------------------------------

#: ``storage.counts``' upsert, in ``?`` placeholders for both drivers.
COUNT_UPSERT = (
    "INSERT INTO resource_counts (tenant_id, resource, slot, n) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, resource, slot) DO UPDATE SET n = resource_counts.n + excluded.n"
)


def add_counts(bulk: Bulk, tenant_id: int, resource: str, ids: Sequence[str]) -> None:
    """Count new resources as ``storage.counts.add`` does, one upsert per slot."""
    per_slot = Counter(counts.slot_of(resource_id) for resource_id in ids)
    for slot, n in sorted(per_slot.items()):
        bulk.execute(COUNT_UPSERT, (tenant_id, resource, slot, n))


# --------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------


def create_tenant(database_url: str, name: str) -> tuple[int, str]:
    """Create the tenant through storage (its token hashed as the CLI does)."""

    async def work() -> tuple[int, str]:
        db = await open_database(database_url, pool_size=1)
        try:
            tenant, token = await tenants.create(db, name, connector="ledger")
            return tenant.id, token
        finally:
            await db.close()

    return asyncio.run(work())


def mark_reconciled(database_url: str, interval_seconds: float) -> int:
    """Record every tenant's periodic ``tenant.reconcile`` of the current interval (as the
    workers' schedule does) and mark it done, so that a server started with the same
    ``PRINTSYNC_RECONCILE_INTERVAL_SECONDS`` records no reconcile before the next interval;
    returns how many were marked."""

    async def work() -> int:
        db = await open_database(database_url, pool_size=1)
        try:
            await reconcile_records.schedule_due(db, interval_seconds)
        finally:
            await db.close()
        bulk = open_bulk(database_url)
        try:
            bulk.begin()
            now = clock.stamp()
            marked = bulk.execute(
                "UPDATE outbox SET state = 'done', completed_at = ?, updated_at = ?"
                " WHERE kind = ? AND state = 'pending' RETURNING id",
                (now, now, outbox.TENANT_RECONCILE),
            )
            bulk.commit()
        finally:
            bulk.close()
        return len(marked)

    return asyncio.run(work())


def _batches(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def seed(
    database_url: str,
    plan: SeedPlan,
    *,
    tenant: str | None = None,
    public_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    rng: random.Random | None = None,
    seeded: Callable[[int], None] | None = None,
) -> SeedResult:
    """Migrate, create the tenant, and bulk-write its users and groups; ``progress`` hears a
    line and ``seeded`` the number of users after each batch."""
    say = progress or (lambda _message: None)
    rng = rng or random.Random()
    started = time.perf_counter()
    migrate.upgrade(database_url)
    name = tenant or f"scale-{secrets.token_hex(4)}"
    tenant_id, token = create_tenant(database_url, name)
    settings = ApiSettings(public_url=public_url or load_or_exit().public_url)
    base = settings.tenant_url(name)
    tag = secrets.token_hex(4)
    members = plan.members
    sampled = set(rng.sample(range(plan.users), min(plan.sample, plan.users)))
    outside = range(members, plan.users)
    chosen_outsiders = set(rng.sample(outside, min(plan.outsiders, len(outside))))
    result = SeedResult(
        name=name,
        tenant_url=base,
        token=token,
        tenant_id=tenant_id,
        tag=tag,
        users=plan.users,
        big_group_id="",
        big_group_members=members,
        empty_group_id="",
        seconds=0.0,
    )
    bulk = open_bulk(database_url)
    try:
        now = clock.stamp()
        bulk.begin()
        big_row = group_row(
            f"Scale Group {members} {tag}", tenant_id=tenant_id, base=base, members=0, now=now
        )
        empty_row = group_row(
            f"Scale Group Empty {tag}", tenant_id=tenant_id, base=base, members=0, now=now
        )
        big_pk = bulk.insert_returning_pk("groups", GROUP_COLUMNS, big_row)
        bulk.insert_returning_pk("groups", GROUP_COLUMNS, empty_row)
        result.big_group_id, result.empty_group_id = str(big_row[1]), str(empty_row[1])
        add_counts(bulk, tenant_id, "Group", [result.big_group_id, result.empty_group_id])
        bulk.commit()
        for indexes in _batches(plan.users, plan.batch):
            bulk.begin()
            pks = bulk.next_user_pks(len(indexes))
            rows: list[tuple[Any, ...]] = []
            joined: list[tuple[int, int, int]] = []
            for index, pk in zip(indexes, pks, strict=True):
                user_id = new_id()
                rows.append(
                    user_row(
                        user_body(index, tag),
                        pk=pk,
                        tenant_id=tenant_id,
                        base=base,
                        user_id=user_id,
                        now=clock.stamp(),
                    )
                )
                if index < members:
                    joined.append((big_pk, pk, tenant_id))
                    if len(result.member_ids) < plan.sample:
                        result.member_ids.append(user_id)
                if index in sampled:
                    result.sample.append((user_name(index, tag), user_id))
                if index in chosen_outsiders:
                    result.outsiders.append((user_name(index, tag), user_id))
            bulk.insert_many("users", USER_COLUMNS, rows)
            add_counts(bulk, tenant_id, "User", [row[2] for row in rows])
            if joined:
                bulk.insert_many("memberships", MEMBERSHIP_COLUMNS, joined)
                bulk.execute(
                    "UPDATE groups SET member_count = member_count + ? WHERE pk = ?",
                    (len(joined), big_pk),
                )
            bulk.commit()
            done = indexes.stop
            elapsed = time.perf_counter() - started
            say(f"{done:,} of {plan.users:,} users ({done / max(elapsed, 1e-9):,.0f}/s)")
            if seeded is not None:
                seeded(len(indexes))
    finally:
        bulk.close()
    rng.shuffle(result.sample)
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed",
        description="Bulk-seed a printsync database with one tenant's users and groups.",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///path or postgresql://... (default: PRINTSYNC_DATABASE_URL)",
    )
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--group-members", type=int, default=100_000)
    parser.add_argument("--tenant", default=None, help="tenant name (default: scale-<random>)")
    parser.add_argument(
        "--public-url", default=None, help="base of the Tenant URL (default: PRINTSYNC_PUBLIC_URL)"
    )
    parser.add_argument("--batch", type=int, default=50_000, help="users per transaction")
    args = parser.parse_args(argv)
    if args.users < 0 or args.batch < 1:
        parser.error("--users must be >= 0 and --batch >= 1")
    database_url = args.database_url or load_or_exit().database_url
    plan = SeedPlan(
        users=args.users, group_members=args.group_members, batch=args.batch, sample=0, outsiders=0
    )
    # On a terminal a progress line; otherwise (a log file) one line per batch.
    terminal = sys.stderr.isatty()
    try:
        with Progress("seeding users", args.users) as bar:
            result = seed(
                database_url,
                plan,
                tenant=args.tenant,
                public_url=args.public_url,
                progress=None
                if terminal
                else lambda m: print(f"[seed] {m}", file=sys.stderr, flush=True),
                seeded=bar.advance,
            )
    except (SeedError, sqlite3.Error, psycopg.Error) as error:
        print(f"seed failed: {error}", file=sys.stderr)
        return 1
    print(orjson.dumps(result.summary()).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
