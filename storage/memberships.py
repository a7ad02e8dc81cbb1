"""Memberships: the rows that make users members of groups, inside the caller's transaction.

A group's document never holds its members: each membership is a row, so adding or removing
members touches only those rows, and concurrent changes of one group's members cannot lose each
other's. Every function here takes the connection of the transaction that changes the group (or
deletes the user) and names users by their SCIM ids and rows by their primary keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from storage import outbox
from storage.changes import Member
from storage.database import Connection, Row
from storage.records import groups, memberships, users
from storage.sql import Dialect, Statement, compile_core, compile_text


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    # The member ids drive the lookup through the unique index on users.id, so resolving and
    # adding members costs the same whatever the tenant's size (SQLite would otherwise pick the
    # tenant index and scan every user of the tenant).
    if dialect == "postgresql":
        by_ids = "users u WHERE u.tenant_id = :tenant AND u.id = ANY(CAST(:ids AS text[]))"
    else:
        by_ids = (
            "json_each(:ids) j CROSS JOIN users u WHERE u.id = j.value AND u.tenant_id = :tenant"
        )
    by_pks = (
        " (SELECT value FROM json_each(:pks))"
        if dialect == "sqlite"
        else " (SELECT unnest(CAST(:pks AS integer[])))"
    )
    return {
        "members": compile_core(
            sa.select(users.c.id, users.c.display_name)
            .select_from(memberships.join(users, users.c.pk == memberships.c.user_pk))
            .where(memberships.c.group_pk == p("pk"))
            .order_by(memberships.c.user_pk),
            dialect,
        ),
        "resolve": compile_text(f"SELECT u.pk, u.id FROM {by_ids}", dialect),
        "add": compile_text(
            "INSERT INTO memberships (group_pk, user_pk, tenant_id)"
            f" SELECT :group, u.pk, :tenant FROM {by_ids}"
            " ON CONFLICT (group_pk, user_pk) DO NOTHING RETURNING user_pk",
            dialect,
        ),
        "remove": compile_text(
            "DELETE FROM memberships WHERE group_pk = :group AND user_pk IN"
            f" (SELECT u.pk FROM {by_ids})"
            " RETURNING user_pk",
            dialect,
        ),
        "keep_only": compile_text(
            "DELETE FROM memberships WHERE group_pk = :group AND user_pk NOT IN"
            f" (SELECT u.pk FROM {by_ids})"
            " RETURNING user_pk",
            dialect,
        ),
        "ids_of": compile_text(
            "SELECT u.pk, u.id, u.user_name FROM users u WHERE u.tenant_id = :tenant AND u.pk IN"
            " (SELECT value FROM json_each(:pks))"
            if dialect == "sqlite"
            else "SELECT u.pk, u.id, u.user_name FROM users u WHERE u.tenant_id = :tenant"
            " AND u.pk = ANY(CAST(:pks AS integer[]))",
            dialect,
        ),
        "groups_of": compile_text(
            "SELECT m.user_pk, g.id, g.display_name FROM memberships m"
            " JOIN groups g ON g.pk = m.group_pk WHERE m.user_pk IN"
            + (
                " (SELECT value FROM json_each(:pks))"
                if dialect == "sqlite"
                else " (SELECT unnest(CAST(:pks AS integer[])))"
            )
            + " ORDER BY m.user_pk, g.pk",
            dialect,
        ),
        # One user (a GET or a write's answer): without json_each, half the cost on SQLite.
        "groups_of_one": compile_text(
            "SELECT m.user_pk, g.id, g.display_name FROM memberships m"
            " JOIN groups g ON g.pk = m.group_pk WHERE m.user_pk = :pk ORDER BY g.pk",
            dialect,
        ),
        "drop_group": compile_core(
            sa.delete(memberships).where(memberships.c.group_pk == p("pk")), dialect
        ),
        "group_names": compile_core(
            sa.select(groups.c.display_name)
            .select_from(memberships.join(groups, groups.c.pk == memberships.c.group_pk))
            .where(memberships.c.user_pk == p("pk"))
            .order_by(groups.c.display_name_ci),
            dialect,
        ),
        "leave": compile_text(
            "DELETE FROM memberships WHERE user_pk = :pk RETURNING group_pk", dialect
        ),
        "leave_counts": compile_text(
            "UPDATE groups SET member_count = member_count - 1 WHERE pk IN" + by_pks, dialect
        ),
        "names_of": compile_text(
            "SELECT display_name FROM groups WHERE pk IN" + by_pks + " ORDER BY display_name_ci",
            dialect,
        ),
    }


def _array(dialect: Dialect, values: Sequence[Any]) -> Any:
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


async def resolve(
    conn: Connection, dialect: Dialect, tenant_id: int, ids: Sequence[str]
) -> set[str]:
    """Which of ``ids`` are users of the tenant."""
    rows = await conn.fetchall(
        _statements(dialect)["resolve"], {"tenant": tenant_id, "ids": _array(dialect, ids)}
    )
    return {row[1] for row in rows}


async def _members_changed(
    conn: Connection,
    dialect: Dialect,
    name: str,
    tenant_id: int,
    group_pk: int,
    ids: Sequence[str],
) -> list[int]:
    rows = await conn.fetchall(
        _statements(dialect)[name],
        {"group": group_pk, "tenant": tenant_id, "ids": _array(dialect, ids)},
    )
    return [row[0] for row in rows]


async def add(
    conn: Connection, dialect: Dialect, tenant_id: int, group_pk: int, ids: Sequence[str]
) -> list[int]:
    """Make the users ``ids`` members of the group; the primary keys of the new members."""
    return await _members_changed(conn, dialect, "add", tenant_id, group_pk, ids)


async def remove(
    conn: Connection, dialect: Dialect, tenant_id: int, group_pk: int, ids: Sequence[str]
) -> list[int]:
    """End the membership of the users ``ids``; the primary keys of the former members."""
    return await _members_changed(conn, dialect, "remove", tenant_id, group_pk, ids)


async def keep_only(
    conn: Connection, dialect: Dialect, tenant_id: int, group_pk: int, ids: Sequence[str]
) -> list[int]:
    """End every membership but those of the users ``ids``; the primary keys of the former
    members."""
    return await _members_changed(conn, dialect, "keep_only", tenant_id, group_pk, ids)


async def members(conn: Connection, dialect: Dialect, group_pk: int) -> list[Row]:
    """The group's members, rows of (id, displayName) in the order they joined."""
    return await conn.fetchall(_statements(dialect)["members"], {"pk": group_pk})


async def groups_of(
    conn: Connection, dialect: Dialect, user_pks: Sequence[int]
) -> dict[int, list[Row]]:
    """The groups of each of the users ``user_pks``: rows of (id, displayName) by user, in the
    order the groups were made."""
    statements = _statements(dialect)
    if len(user_pks) == 1:
        rows = await conn.fetchall(statements["groups_of_one"], {"pk": user_pks[0]})
    else:
        rows = await conn.fetchall(statements["groups_of"], {"pks": _array(dialect, user_pks)})
    found: dict[int, list[Row]] = {}
    for user_pk, group_id, display in rows:
        found.setdefault(user_pk, []).append((group_id, display))
    return found


async def record_effects(
    conn: Connection,
    dialect: Dialect,
    *,
    tenant_id: int,
    group_id: str,
    version: int,
    user_pks: Sequence[int],
    now: str,
) -> dict[int, Member]:
    """Record an account effect for each user whose membership of the group changed with the
    group's ``version``; those users by primary key (their id and userName, which the
    provisioning log names them by)."""
    rows = await conn.fetchall(
        _statements(dialect)["ids_of"], {"tenant": tenant_id, "pks": _array(dialect, user_pks)}
    )
    users_by_pk: dict[int, Member] = {}
    for pk, user_id, user_name in rows:
        users_by_pk[pk] = Member(user_id, user_name)
        await outbox.record(
            conn,
            dialect,
            tenant_id=tenant_id,
            kind=outbox.ACCOUNT_SYNC,
            subject_id=user_id,
            key=f"{outbox.ACCOUNT_SYNC}:{user_id}:g{group_id}:v{version}",
            now=now,
        )
    return users_by_pk


async def drop_group(conn: Connection, dialect: Dialect, group_pk: int) -> None:
    """Remove every membership of a group that is being deleted."""
    await conn.execute(_statements(dialect)["drop_group"], {"pk": group_pk})


async def group_names(conn: Connection, dialect: Dialect, user_pk: int) -> list[str]:
    """The display names of a user's groups, in case-insensitive order."""
    rows = await conn.fetchall(_statements(dialect)["group_names"], {"pk": user_pk})
    return [row[0] for row in rows]


async def leave_all(conn: Connection, dialect: Dialect, user_pk: int) -> list[str]:
    """Take a user that is being deleted out of its groups (their member counts follow); the
    names of those groups, in order. One statement for a user in no group."""
    statements = _statements(dialect)
    left = [row[0] for row in await conn.fetchall(statements["leave"], {"pk": user_pk})]
    if not left:
        return []
    pks = {"pks": _array(dialect, left)}
    await conn.execute(statements["leave_counts"], pks)
    return [row[0] for row in await conn.fetchall(statements["names_of"], pks)]
