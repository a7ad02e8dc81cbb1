"""Users: each write is one short transaction that also records the effects it implies."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from storage import clock, counts, indexed, outbox
from storage.database import Connection, Database
from storage.documents import assemble, check_version, client_attributes, dump, new_id
from storage.errors import ResourceNotFound
from storage.paging import ListQuery, Page, list_page, page_marks
from storage.records import groups, memberships, users
from storage.scim import patch as scim_patch
from storage.scim import resources
from storage.scim.schema import USER_TYPE
from storage.sql import Dialect, Statement, compile_core

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Stored:
    """A user as stored: its id, version and document (JSON text)."""

    id: str
    version: int
    doc: str


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    derived: dict[str, Any] = {name: p(name) for name in indexed.derived_columns("User")}
    by_id = sa.and_(users.c.tenant_id == p("tenant"), users.c.id == p("id"))
    return {
        "insert": compile_core(
            sa.insert(users).values(
                tenant_id=p("tenant"),
                id=p("id"),
                version=p("version"),
                created_at=p("now"),
                last_modified=p("now"),
                doc=p("doc"),
                **derived,
            ),
            dialect,
        ),
        "get": compile_core(sa.select(users.c.version, users.c.doc).where(by_id), dialect),
        "lock": compile_core(
            sa.select(users.c.pk, users.c.version, users.c.doc, users.c.created_at, users.c.active)
            .where(by_id)
            .with_for_update(),
            dialect,
        ),
        "update": compile_core(
            sa.update(users)
            .where(users.c.pk == p("pk"))
            .values(version=p("version"), last_modified=p("now"), doc=p("doc"), **derived),
            dialect,
        ),
        "group_names": compile_core(
            sa.select(groups.c.display_name)
            .select_from(memberships.join(groups, groups.c.pk == memberships.c.group_pk))
            .where(memberships.c.user_pk == p("pk"))
            .order_by(groups.c.display_name),
            dialect,
        ),
        "drop_memberships": compile_core(
            sa.delete(memberships).where(memberships.c.user_pk == p("pk")), dialect
        ),
        "touch_groups": compile_core(
            sa.update(groups)
            .where(
                groups.c.pk.in_(
                    sa.select(memberships.c.group_pk).where(memberships.c.user_pk == p("pk"))
                )
            )
            .values(member_count=groups.c.member_count - 1),
            dialect,
        ),
        "delete": compile_core(sa.delete(users).where(users.c.pk == p("pk")), dialect),
    }


def _location(base: str, user_id: str) -> str:
    return f"{base}/Users/{user_id}"


def _row_params(doc: dict[str, Any]) -> dict[str, Any]:
    return indexed.columns("User", doc)


def new_document(body: object, *, base: str, user_id: str, now: str) -> dict[str, Any]:
    """The stored document of a new user: the validated body with its id and first meta."""
    return assemble(
        resources.validate(USER_TYPE, body),
        resource_type="User",
        resource_id=user_id,
        created=now,
        modified=now,
        version=1,
        location=_location(base, user_id),
    )


async def create(db: Database, tenant_id: int, body: object, *, base: str) -> Stored:
    """Validate and store a new user; record its print-account effect."""
    user_id = new_id()
    now = clock.stamp()
    doc = new_document(body, base=base, user_id=user_id, now=now)
    text = dump(doc)
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        await conn.execute(
            statements["insert"],
            {
                "tenant": tenant_id,
                "id": user_id,
                "version": 1,
                "now": now,
                "doc": text,
                **_row_params(doc),
            },
        )
        await outbox.record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=outbox.ACCOUNT_SYNC,
            subject_id=user_id,
            key=f"{outbox.ACCOUNT_SYNC}:{user_id}:v1",
            now=now,
        )
        await counts.add(conn, db.dialect, tenant_id, "User", user_id, 1)
    db.effects_committed()
    return Stored(user_id, 1, text)


async def get(db: Database, tenant_id: int, user_id: str) -> Stored:
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["get"], {"tenant": tenant_id, "id": user_id}
        )
    if row is None:
        raise ResourceNotFound("User", user_id)
    return Stored(user_id, row[0], row[1])


async def list_(db: Database, tenant_id: int, query: ListQuery) -> Page:
    async with db.reader() as conn:
        return await list_page(
            conn,
            db.dialect,
            USER_TYPE,
            table="users",
            alias="u",
            tenant_id=tenant_id,
            query=query,
            default_count=DEFAULT_PAGE_SIZE,
            marks=page_marks(db),
        )


async def replace(
    db: Database,
    tenant_id: int,
    user_id: str,
    body: object,
    *,
    base: str,
    if_match: str | None = None,
) -> Stored:
    """PUT: the new document replaces the old one whole."""
    attrs = resources.validate(USER_TYPE, body)
    return await _rewrite(db, tenant_id, user_id, base, if_match, lambda _old: attrs)


async def patch(
    db: Database,
    tenant_id: int,
    user_id: str,
    body: object,
    *,
    base: str,
    if_match: str | None = None,
) -> Stored:
    """PATCH: operations applied to the current document, all or nothing."""

    def change(old: dict[str, Any]) -> dict[str, Any]:
        return client_attributes(scim_patch.apply(USER_TYPE, old, body).doc)

    return await _rewrite(db, tenant_id, user_id, base, if_match, change)


async def _rewrite(
    db: Database, tenant_id: int, user_id: str, base: str, if_match: str | None, change: Any
) -> Stored:
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(statements["lock"], {"tenant": tenant_id, "id": user_id})
        if row is None:
            raise ResourceNotFound("User", user_id)
        pk, version, old_text, created = row[0], row[1], row[2], row[3]
        check_version(if_match, version)
        old = orjson.loads(old_text)
        attrs = change(old)
        if client_attributes(old) == attrs:
            return Stored(user_id, version, old_text)
        now = clock.stamp()
        version += 1
        doc = assemble(
            attrs,
            resource_type="User",
            resource_id=user_id,
            created=created,
            modified=now,
            version=version,
            location=_location(base, user_id),
        )
        text = dump(doc)
        await conn.execute(
            statements["update"],
            {
                "pk": pk,
                "version": version,
                "now": now,
                "doc": text,
                **_row_params(doc),
            },
        )
        await outbox.record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=outbox.ACCOUNT_SYNC,
            subject_id=user_id,
            key=f"{outbox.ACCOUNT_SYNC}:{user_id}:v{version}",
            now=now,
        )
    db.effects_committed()
    return Stored(user_id, version, text)


async def delete(
    db: Database, tenant_id: int, user_id: str, *, if_match: str | None = None
) -> None:
    """Delete the user and its memberships; record the account deletion with what the worker
    needs once the row is gone."""
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(statements["lock"], {"tenant": tenant_id, "id": user_id})
        if row is None:
            raise ResourceNotFound("User", user_id)
        pk, version, text = row[0], row[1], row[2]
        check_version(if_match, version)
        names = [r[0] for r in await conn.fetchall(statements["group_names"], {"pk": pk})]
        await _drop(conn, statements, pk)
        await outbox.record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=outbox.ACCOUNT_DELETE,
            subject_id=user_id,
            key=f"{outbox.ACCOUNT_DELETE}:{user_id}:v{version}",
            payload={"userName": orjson.loads(text).get("userName"), "groups": names},
        )
        await counts.add(conn, db.dialect, tenant_id, "User", user_id, -1)
    page_marks(db).forget("users", tenant_id)
    db.effects_committed()


async def _drop(conn: Connection, statements: dict[str, Statement], pk: int) -> None:
    await conn.execute(statements["touch_groups"], {"pk": pk})
    await conn.execute(statements["drop_memberships"], {"pk": pk})
    await conn.execute(statements["delete"], {"pk": pk})
