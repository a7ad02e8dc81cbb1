"""What the effect workers read back: the current user or group an effect is about, and the
tenant's connector.

Effects are level-triggered, so a worker never trusts what an effect says about a user; it reads
the user as it is now through these functions and converges the print system to that. A print
account is keyed by username, so users are also found by ``userName`` (case-insensitively, as
SCIM compares it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from storage.database import Connection, Database, Row
from storage.downstream import Pause
from storage.errors import TenantNotFound
from storage.memberships import group_names
from storage.records import connector_pauses, groups, tenants, users
from storage.scim.schema import ENTERPRISE_USER, PRINTSYNC_USER
from storage.sql import Dialect, Statement, compile_core
from storage.tenants import COLUMNS as tenant_columns
from storage.tenants import Tenant, tenant_of


@dataclass(frozen=True, slots=True)
class UserState:
    """A user as the print account should reflect it."""

    id: str
    user_name: str
    active: bool
    doc: dict[str, Any]
    groups: tuple[str, ...]
    print_username: str | None

    @property
    def full_name(self) -> str:
        name = self.doc.get("name")
        if isinstance(name, dict):
            formatted = name.get("formatted")
            if isinstance(formatted, str) and formatted.strip():
                return formatted.strip()
        display = self.doc.get("displayName")
        if isinstance(display, str) and display.strip():
            return display.strip()
        if isinstance(name, dict):
            parts = [name.get(key) for key in ("givenName", "familyName")]
            joined = " ".join(part.strip() for part in parts if isinstance(part, str))
            if joined.strip():
                return joined.strip()
        return ""

    @property
    def email(self) -> str:
        emails = self.doc.get("emails")
        if not isinstance(emails, list):
            return ""
        values = [
            item for item in emails if isinstance(item, dict) and isinstance(item.get("value"), str)
        ]
        for test in (
            lambda item: item.get("primary") is True,
            lambda item: item.get("type") == "work",
            lambda item: True,
        ):
            for item in values:
                if test(item):
                    return str(item["value"])
        return ""

    @property
    def department(self) -> str:
        return _text(self.doc.get(ENTERPRISE_USER), "department")

    @property
    def office(self) -> str:
        return _text(self.doc.get(PRINTSYNC_USER), "office")

    @property
    def card_number(self) -> str:
        return _text(self.doc.get(PRINTSYNC_USER), "cardNumber")

    @property
    def secondary_card_number(self) -> str:
        return _text(self.doc.get(PRINTSYNC_USER), "secondaryCardNumber")


@dataclass(frozen=True, slots=True)
class GroupState:
    id: str
    display_name: str


def _text(extension: object, key: str) -> str:
    if not isinstance(extension, dict):
        return ""
    value = extension.get(key)
    return value if isinstance(value, str) else ""


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    user_columns = (
        users.c.pk,
        users.c.id,
        users.c.user_name,
        users.c.active,
        users.c.doc,
        users.c.print_username,
    )
    return {
        "user": compile_core(
            sa.select(*user_columns).where(users.c.tenant_id == p("tenant"), users.c.id == p("id")),
            dialect,
        ),
        "user_by_name": compile_core(
            sa.select(*user_columns).where(
                users.c.tenant_id == p("tenant"), users.c.user_name_ci == p("name_ci")
            ),
            dialect,
        ),
        "set_print_username": compile_core(
            sa.update(users)
            .where(
                users.c.tenant_id == p("tenant"),
                users.c.id == p("id"),
                users.c.user_name == p("name"),
            )
            .values(print_username=p("name")),
            dialect,
        ),
        "group": compile_core(
            sa.select(groups.c.id, groups.c.display_name).where(
                groups.c.tenant_id == p("tenant"), groups.c.id == p("id")
            ),
            dialect,
        ),
        "group_by_name": compile_core(
            sa.select(groups.c.id, groups.c.display_name).where(
                groups.c.tenant_id == p("tenant"), groups.c.display_name_ci == p("name_ci")
            ),
            dialect,
        ),
        "tenant": compile_core(
            sa.select(*tenant_columns).where(tenants.c.id == p("id")),
            dialect,
        ),
        "tenant_paused": compile_core(
            sa.select(
                *tenant_columns,
                connector_pauses.c.reason,
                connector_pauses.c.since,
                connector_pauses.c.checked_at,
                connector_pauses.c.retry_at,
            )
            .select_from(
                tenants.outerjoin(connector_pauses, connector_pauses.c.tenant_id == tenants.c.id)
            )
            .where(tenants.c.id == p("id")),
            dialect,
        ),
    }


async def _user(conn: Connection, dialect: Dialect, row: Row | None) -> UserState | None:
    if row is None:
        return None
    names = await group_names(conn, dialect, row[0])
    return UserState(
        id=row[1],
        user_name=row[2],
        active=bool(row[3]),
        doc=orjson.loads(row[4]),
        groups=tuple(names),
        print_username=row[5],
    )


async def user_by_id(db: Database, tenant_id: int, user_id: str) -> UserState | None:
    """The user with its group names, or None if it no longer exists."""
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        row = await conn.fetchone(statements["user"], {"tenant": tenant_id, "id": user_id})
        return await _user(conn, db.dialect, row)


async def user_by_name(db: Database, tenant_id: int, user_name: str) -> UserState | None:
    """The tenant's user whose ``userName`` matches case-insensitively, or None."""
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        row = await conn.fetchone(
            statements["user_by_name"], {"tenant": tenant_id, "name_ci": user_name.lower()}
        )
        return await _user(conn, db.dialect, row)


async def set_print_username(db: Database, tenant_id: int, user_id: str, name: str) -> None:
    """Remember the username the user's print account now lives under, unless the user has
    been renamed again meanwhile (the newer name's effect records that one)."""
    async with db.transaction() as conn:
        await record_print_username(conn, db.dialect, tenant_id, user_id, name)


async def record_print_username(
    conn: Connection, dialect: Dialect, tenant_id: int, user_id: str, name: str
) -> None:
    """:func:`set_print_username` inside the caller's transaction."""
    await conn.execute(
        _statements(dialect)["set_print_username"],
        {"tenant": tenant_id, "id": user_id, "name": name},
    )


async def group_by_id(db: Database, tenant_id: int, group_id: str) -> GroupState | None:
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["group"], {"tenant": tenant_id, "id": group_id}
        )
    return None if row is None else GroupState(row[0], row[1])


async def group_by_name(db: Database, tenant_id: int, name: str) -> GroupState | None:
    """The tenant's group whose ``displayName`` matches case-insensitively, or None."""
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["group_by_name"], {"tenant": tenant_id, "name_ci": name.lower()}
        )
    return None if row is None else GroupState(row[0], row[1])


async def tenant_connector(db: Database, tenant_id: int) -> Tenant:
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["tenant"], {"id": tenant_id})
    if row is None:
        raise TenantNotFound(str(tenant_id))
    return tenant_of(row)


async def tenant_and_pause(db: Database, tenant_id: int) -> tuple[Tenant, Pause | None]:
    """:func:`tenant_connector` and :func:`storage.downstream.pause_of` in one read."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["tenant_paused"], {"id": tenant_id})
    if row is None:
        raise TenantNotFound(str(tenant_id))
    pause = row[len(tenant_columns) :]
    paused = None if pause[0] is None else Pause(*pause)
    return tenant_of(row), paused
