"""Groups and memberships.

A group's document never holds its members: they are rows in ``memberships``, so a PATCH that
adds or removes members touches only those rows (plus the group's version), never the whole list,
and concurrent PATCHes of one group's membership cannot lose each other's changes. The group row
is locked (``FOR UPDATE`` on PostgreSQL; SQLite writes are serialised) for the read-modify-write of
its attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from storage.scim.errors import InvalidValue
from storage.scim.schema import GROUP_TYPE
from storage.sql import Dialect, Statement, compile_core, compile_text

DEFAULT_PAGE_SIZE = 100
MAX_MEMBERS_PER_REQUEST = 10_000


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    version: int
    doc: str


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    derived: dict[str, Any] = {name: p(name) for name in indexed.derived_columns("Group")}
    by_id = sa.and_(groups.c.tenant_id == p("tenant"), groups.c.id == p("id"))
    # The member ids drive the lookup through the unique index on users.id, so resolving and
    # adding members costs the same whatever the tenant's size (SQLite would otherwise pick the
    # tenant index and scan every user of the tenant).
    if dialect == "postgresql":
        by_ids = "users u WHERE u.tenant_id = :tenant AND u.id = ANY(CAST(:ids AS text[]))"
    else:
        by_ids = (
            "json_each(:ids) j CROSS JOIN users u WHERE u.id = j.value AND u.tenant_id = :tenant"
        )
    return {
        "insert": compile_core(
            sa.insert(groups)
            .values(
                tenant_id=p("tenant"),
                id=p("id"),
                version=1,
                member_count=0,
                created_at=p("now"),
                last_modified=p("now"),
                doc=p("doc"),
                **derived,
            )
            .returning(groups.c.pk),
            dialect,
        ),
        "get": compile_core(
            sa.select(groups.c.pk, groups.c.version, groups.c.doc).where(by_id), dialect
        ),
        "lock": compile_core(
            sa.select(groups.c.pk, groups.c.version, groups.c.doc, groups.c.created_at)
            .where(by_id)
            .with_for_update(),
            dialect,
        ),
        "update": compile_core(
            sa.update(groups)
            .where(groups.c.pk == p("pk"))
            .values(
                version=p("version"),
                last_modified=p("now"),
                doc=p("doc"),
                member_count=groups.c.member_count + p("delta"),
                **derived,
            ),
            dialect,
        ),
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
            "SELECT u.pk, u.id FROM users u WHERE u.tenant_id = :tenant AND u.pk IN"
            " (SELECT value FROM json_each(:pks))"
            if dialect == "sqlite"
            else "SELECT u.pk, u.id FROM users u WHERE u.tenant_id = :tenant"
            " AND u.pk = ANY(CAST(:pks AS integer[]))",
            dialect,
        ),
        "drop_memberships": compile_core(
            sa.delete(memberships).where(memberships.c.group_pk == p("pk")), dialect
        ),
        "delete": compile_core(sa.delete(groups).where(groups.c.pk == p("pk")), dialect),
    }


def _location(base: str, group_id: str) -> str:
    return f"{base}/Groups/{group_id}"


def _array(dialect: Dialect, values: Sequence[Any]) -> Any:
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


def new_document(attrs: dict[str, Any], *, base: str, group_id: str, now: str) -> dict[str, Any]:
    """The stored document of a new group (validated attributes, without members) with its id
    and first meta."""
    return assemble(
        attrs,
        resource_type="Group",
        resource_id=group_id,
        created=now,
        modified=now,
        version=1,
        location=_location(base, group_id),
    )


async def create(db: Database, tenant_id: int, body: object, *, base: str) -> Stored:
    attrs, member_ids = resources.validate_group(body)
    group_id = new_id()
    now = clock.stamp()
    doc = new_document(attrs, base=base, group_id=group_id, now=now)
    text = dump(doc)
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(
            statements["insert"],
            {
                "tenant": tenant_id,
                "id": group_id,
                "now": now,
                "doc": text,
                **indexed.columns("Group", doc),
            },
        )
        assert row is not None
        pk = row[0]
        await outbox.record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=outbox.GROUP_SYNC,
            subject_id=group_id,
            key=f"{outbox.GROUP_SYNC}:{group_id}:v1",
            now=now,
        )
        await counts.add(conn, db.dialect, tenant_id, "Group", group_id, 1)
        if member_ids:
            _, delta = await _change_members(
                conn,
                db.dialect,
                tenant_id,
                pk,
                group_id,
                1,
                [scim_patch.MemberChange("add", tuple(member_ids))],
                now,
            )
            await conn.execute(
                statements["update"],
                {
                    "pk": pk,
                    "version": 1,
                    "now": now,
                    "doc": text,
                    "delta": delta,
                    **indexed.columns("Group", doc),
                },
            )
    db.effects_committed()
    return Stored(group_id, 1, text)


async def get(db: Database, tenant_id: int, group_id: str, *, members: bool) -> Stored:
    """The group; with ``members`` its member list is read from the membership rows."""
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        row = await conn.fetchone(statements["get"], {"tenant": tenant_id, "id": group_id})
        if row is None:
            raise ResourceNotFound("Group", group_id)
        text = row[2]
        if members:
            text = await _with_members(conn, statements, row[0], text)
    return Stored(group_id, row[1], text)


async def _with_members(
    conn: Connection, statements: dict[str, Statement], pk: int, text: str
) -> str:
    rows = await conn.fetchall(statements["members"], {"pk": pk})
    if not rows:
        return text
    doc = orjson.loads(text)
    base = doc["meta"]["location"].rsplit("/Groups/", 1)[0]
    listed = []
    for member_id, display in rows:
        item = {"value": member_id, "$ref": f"{base}/Users/{member_id}", "type": "User"}
        if display:
            item["display"] = display
        listed.append(item)
    meta = doc.pop("meta")
    doc["members"] = listed
    doc["meta"] = meta
    return dump(doc)


async def list_(db: Database, tenant_id: int, query: ListQuery, *, members: bool) -> Page:
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        page = await list_page(
            conn,
            db.dialect,
            GROUP_TYPE,
            table="groups",
            alias="g",
            tenant_id=tenant_id,
            query=query,
            default_count=DEFAULT_PAGE_SIZE,
            marks=page_marks(db),
        )
        if not members or not page.docs:
            return page
        docs = []
        for group_id, text in zip(page.ids, page.docs, strict=True):
            row = await conn.fetchone(statements["get"], {"tenant": tenant_id, "id": group_id})
            docs.append(
                text if row is None else await _with_members(conn, statements, row[0], text)
            )
    return Page(
        total=page.total, start_index=page.start_index, docs=docs, ids=page.ids, pks=page.pks
    )


async def replace(
    db: Database,
    tenant_id: int,
    group_id: str,
    body: object,
    *,
    base: str,
    if_match: str | None = None,
) -> Stored:
    """PUT: attributes replaced; members replaced when the body lists them."""
    attrs, member_ids = resources.validate_group(body)
    changes = [] if member_ids is None else [scim_patch.MemberChange("replace", tuple(member_ids))]
    return await _rewrite(db, tenant_id, group_id, base, if_match, lambda _old: (attrs, changes))


async def patch(
    db: Database,
    tenant_id: int,
    group_id: str,
    body: object,
    *,
    base: str,
    if_match: str | None = None,
) -> Stored:
    def change(old: dict[str, Any]) -> tuple[dict[str, Any], list[scim_patch.MemberChange]]:
        result = scim_patch.apply(GROUP_TYPE, old, body)
        return client_attributes(result.doc), list(result.members)

    return await _rewrite(db, tenant_id, group_id, base, if_match, change)


async def _rewrite(
    db: Database, tenant_id: int, group_id: str, base: str, if_match: str | None, change: Any
) -> Stored:
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(statements["lock"], {"tenant": tenant_id, "id": group_id})
        if row is None:
            raise ResourceNotFound("Group", group_id)
        pk, version, old_text, created = row[0], row[1], row[2], row[3]
        check_version(if_match, version)
        old = orjson.loads(old_text)
        attrs, member_changes = change(old)
        renamed = client_attributes(old) != attrs
        now = clock.stamp()
        touched, delta = await _change_members(
            conn, db.dialect, tenant_id, pk, group_id, version + 1, member_changes, now
        )
        if not renamed and not touched:
            return Stored(group_id, version, old_text)
        version += 1
        doc = assemble(
            attrs,
            resource_type="Group",
            resource_id=group_id,
            created=created,
            modified=now,
            version=version,
            location=_location(base, group_id),
        )
        text = dump(doc)
        await conn.execute(
            statements["update"],
            {
                "pk": pk,
                "version": version,
                "now": now,
                "doc": text,
                "delta": delta,
                **indexed.columns("Group", doc),
            },
        )
        if renamed:
            await outbox.record(
                conn,
                db.dialect,
                tenant_id=tenant_id,
                kind=outbox.GROUP_SYNC,
                subject_id=group_id,
                key=f"{outbox.GROUP_SYNC}:{group_id}:v{version}",
                payload={"previous": old.get("displayName")},
                now=now,
            )
    db.effects_committed()
    return Stored(group_id, version, text)


async def _change_members(
    conn: Connection,
    dialect: Dialect,
    tenant_id: int,
    group_pk: int,
    group_id: str,
    version: int,
    changes: Sequence[scim_patch.MemberChange],
    now: str,
) -> tuple[bool, int]:
    """Apply member changes in order; record an account effect for each user whose
    membership changed. Returns (anything changed, change in member count)."""
    statements = _statements(dialect)
    changed_pks: set[int] = set()
    delta = 0
    for change in changes:
        ids = list(dict.fromkeys(change.ids))
        if len(ids) > MAX_MEMBERS_PER_REQUEST:
            raise InvalidValue(f"at most {MAX_MEMBERS_PER_REQUEST} members per request")
        if change.op in ("add", "replace") and ids:
            found = await conn.fetchall(
                statements["resolve"], {"tenant": tenant_id, "ids": _array(dialect, ids)}
            )
            missing = set(ids) - {row[1] for row in found}
            if missing:
                raise InvalidValue(f"member {sorted(missing)[0]} is not a user of this tenant")
        if change.op == "replace":
            rows = await conn.fetchall(
                statements["keep_only"],
                {"group": group_pk, "tenant": tenant_id, "ids": _array(dialect, ids)},
            )
            changed_pks.update(row[0] for row in rows)
            delta -= len(rows)
        if change.op in ("add", "replace") and ids:
            rows = await conn.fetchall(
                statements["add"],
                {"group": group_pk, "tenant": tenant_id, "ids": _array(dialect, ids)},
            )
            changed_pks.update(row[0] for row in rows)
            delta += len(rows)
        elif change.op == "remove" and ids:
            rows = await conn.fetchall(
                statements["remove"],
                {"group": group_pk, "tenant": tenant_id, "ids": _array(dialect, ids)},
            )
            changed_pks.update(row[0] for row in rows)
            delta -= len(rows)
    if not changed_pks:
        return False, delta
    rows = await conn.fetchall(
        statements["ids_of"], {"tenant": tenant_id, "pks": _array(dialect, sorted(changed_pks))}
    )
    for _, user_id in rows:
        await outbox.record(
            conn,
            dialect,
            tenant_id=tenant_id,
            kind=outbox.ACCOUNT_SYNC,
            subject_id=user_id,
            key=f"{outbox.ACCOUNT_SYNC}:{user_id}:g{group_id}:v{version}",
            now=now,
        )
    return True, delta


async def delete(
    db: Database, tenant_id: int, group_id: str, *, if_match: str | None = None
) -> None:
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(statements["lock"], {"tenant": tenant_id, "id": group_id})
        if row is None:
            raise ResourceNotFound("Group", group_id)
        pk, version, text = row[0], row[1], row[2]
        check_version(if_match, version)
        await conn.execute(statements["drop_memberships"], {"pk": pk})
        await conn.execute(statements["delete"], {"pk": pk})
        await outbox.record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=outbox.GROUP_DELETE,
            subject_id=group_id,
            key=f"{outbox.GROUP_DELETE}:{group_id}:v{version}",
            payload={"displayName": orjson.loads(text).get("displayName")},
        )
        await counts.add(conn, db.dialect, tenant_id, "Group", group_id, -1)
    page_marks(db).forget("groups", tenant_id)
    db.effects_committed()
