"""The resource engine: create, read, list, replace, patch and delete, written once.

Each write is one short transaction that changes the resource's row (its SCIM document as JSON
text, its version and the indexed columns of ``storage.indexed``) and records the effects the
change implies in the outbox, all in one COMMIT. The row is locked (``FOR UPDATE`` on
PostgreSQL; SQLite writes are serialised) for the read-modify-write of a replace, patch or
delete; on PostgreSQL a user's replace or patch that leaves ``active`` as it was is instead
one statement that writes only if the version read is still the row's (see
:func:`rewrite`).

What differs between users and groups is a ``Spec``, kept by ``storage.users`` and
``storage.groups``: the resource type and its table, the effects a write records, what a delete
must remove first, for a resource with members (a group) the hooks that validate, change and drop
the membership rows, and the attribute its document never holds but a response may show, read
from those rows (a group's ``members``, a user's ``groups``).

Lists and searches run ``storage.paging`` over one resource type, or over several for a search
at the server root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal, Protocol

import orjson
import sqlalchemy as sa

from storage import clock, counts, cursors, guard, indexed, outbox
from storage.changes import (
    NO_CHANGES,
    Changes,
    Member,
    MembershipChange,
    active_change,
    diff,
)
from storage.database import Connection, Database, Row
from storage.documents import assemble, check_version, client_attributes, dump
from storage.errors import ResourceNotFound
from storage.ids import new_id
from storage.outbox import recording
from storage.paging import ListQuery, Page, Source, list_page, page_marks
from storage.scim import patch as scim_patch
from storage.scim.patch import MemberChange
from storage.scim.resources import validate as validate_document
from storage.scim.schema import ResourceType
from storage.sql import Dialect, Statement, chained, compile_core

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Stored:
    """A resource as stored: its id, version and document (JSON text), and its row's primary
    key when the engine knows it."""

    id: str
    version: int
    doc: str
    changes: Changes = NO_CHANGES
    """What the write that returned it changed (a read changes nothing)."""
    pk: int | None = None


Validate = Callable[[object], tuple[dict[str, Any], list[str] | None]]
"""A body's canonical client attributes, and the member ids it lists (None when it lists
none)."""


class ChangeMembers(Protocol):
    """Apply member changes, in order, to the resource of row ``pk`` inside the write's
    transaction (``version`` is the resource's version after the write); what changed."""

    def __call__(
        self,
        conn: Connection,
        dialect: Dialect,
        tenant_id: int,
        pk: int,
        resource_id: str,
        version: int,
        changes: Sequence[MemberChange],
        now: str,
        /,
    ) -> Awaitable[MembershipChange]: ...


class ReadComputed(Protocol):
    """The stored documents of ``rows`` (primary key and document of each) with the computed
    attribute in them, in order."""

    def __call__(
        self, conn: Connection, dialect: Dialect, rows: Sequence[tuple[int, str]], /
    ) -> Awaitable[list[str]]: ...


class DropMembers(Protocol):
    """Remove the membership rows of the resource of row ``pk`` about to be deleted."""

    def __call__(self, conn: Connection, dialect: Dialect, pk: int, /) -> Awaitable[None]: ...


class BeforeDelete(Protocol):
    """Remove what refers to the row ``pk`` about to be deleted; what the delete effect's
    payload carries besides the resource's name."""

    def __call__(
        self, conn: Connection, dialect: Dialect, pk: int, /
    ) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Effects:
    """The effects a resource's writes record."""

    sync: str
    """Recorded by a create, and by a change of the resource's attributes."""
    delete: str
    previous_name: bool = False
    """The change effect carries the name the resource had before (``previous``)."""
    guarded: bool = False
    """A delete, and a change to inactive, pass the deprovisioning guard (``storage.guard``),
    which may record their effect held; a change back to active supersedes held effects."""


@dataclass(frozen=True, slots=True)
class Members:
    """A resource whose members are rows of their own."""

    validate: Validate
    change: ChangeMembers
    counter: str
    """The column of the resource's table that counts its members."""
    drop: DropMembers


@dataclass(frozen=True, slots=True)
class Computed:
    """An attribute the resource's document never holds, read from other rows (the
    memberships) into a response that shows it."""

    attribute: str
    read: ReadComputed
    listed: bool
    """Lists show it unless the projection leaves it out (a group's ``members``); otherwise
    only when ``attributes`` names it, so lists keep answering stored bytes."""
    at_create: bool
    """A new resource may have it (a group created with members; a user joins groups only
    through them)."""


@dataclass(frozen=True, slots=True, eq=False)
class Spec:
    """What the engine needs to know about one resource type."""

    type: ResourceType
    table: sa.Table
    name_attribute: str
    """The attribute that names a resource (the delete effect carries it, the log shows it)."""
    effects: Effects
    before_delete: BeforeDelete | None = None
    members: Members | None = None
    computed: Computed | None = None

    def location(self, base: str, resource_id: str) -> str:
        return f"{base}{self.type.endpoint}/{resource_id}"


@lru_cache(maxsize=8)
def _statements(spec: Spec, dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    table = spec.table
    derived: dict[str, Any] = {name: p(name) for name in indexed.derived_columns(spec.type.name)}
    first_count: dict[str, Any] = {}
    count_step: dict[str, Any] = {}
    if spec.members is not None:
        counter = spec.members.counter
        first_count[counter] = 0
        count_step[counter] = table.c[counter] + p("delta")
    insert = sa.insert(table).values(
        tenant_id=p("tenant"),
        id=p("id"),
        version=p("version"),
        created_at=p("now"),
        last_modified=p("now"),
        doc=p("doc"),
        **first_count,
        **derived,
    )
    if spec.members is not None:
        # The membership rows of a new resource need its key. Only then: on SQLite an INSERT
        # with RETURNING costs a create measurably more CPU than one without.
        insert = insert.returning(table.c.pk)
    by_id = sa.and_(table.c.tenant_id == p("tenant"), table.c.id == p("id"))
    compiled_insert = compile_core(insert, dialect)
    delete = compile_core(sa.delete(table).where(table.c.pk == p("pk")), dialect)
    update = compile_core(
        sa.update(table)
        .where(table.c.pk == p("pk"))
        .values(
            version=p("version"),
            last_modified=p("now"),
            doc=p("doc"),
            **count_step,
            **derived,
        ),
        dialect,
    )
    chains: dict[str, Statement] = {}
    if dialect == "postgresql":
        # A write with its effect (and a create or delete with its count change): one round
        # trip (the insert last, for the key it returns).
        effect, count = recording.insert_statement(dialect), counts.add_statement(dialect)
        # A PATCH or PUT read without a lock: the update only if the row still has the
        # version read, its effect only if the update happened, and how many rows it updated.
        updated = compile_core(
            sa.update(table)
            .where(table.c.pk == p("pk"), table.c.version == p("expected"))
            .values(version=p("version"), last_modified=p("now"), doc=p("doc"), **derived)
            .returning(table.c.pk),
            dialect,
        )
        chains = {
            "create_recorded": chained([effect, count, compiled_insert]),
            "update_recorded": chained([effect, update]),
            "delete_recorded": chained([effect, count, delete]),
            "update_if_version": chained(
                [
                    updated,
                    recording.insert_if_statement(dialect, "step_0"),
                    Statement("SELECT count(*) FROM step_0", (), {}),
                ]
            ),
        }
    return {
        **chains,
        "insert": compiled_insert,
        "get": compile_core(
            sa.select(table.c.pk, table.c.version, table.c.doc).where(by_id), dialect
        ),
        "read": compile_core(
            sa.select(table.c.pk, table.c.version, table.c.doc, table.c.created_at).where(by_id),
            dialect,
        ),
        "lock": compile_core(
            sa.select(table.c.pk, table.c.version, table.c.doc, table.c.created_at)
            .where(by_id)
            .with_for_update(),
            dialect,
        ),
        "update": update,
        "lock_name": compile_core(
            sa.select(
                table.c.pk,
                table.c.version,
                table.c[indexed.kept_as_sent(spec.type.name, spec.name_attribute)],
                table.c.active if "active" in table.c else sa.true(),
            )
            .where(by_id)
            .with_for_update(),
            dialect,
        ),
        "delete": delete,
    }


def validate(spec: Spec, body: object) -> tuple[dict[str, Any], list[str] | None]:
    """A body's canonical client attributes, and the member ids it lists (None when it lists
    none, and always for a resource without members)."""
    if spec.members is None:
        return validate_document(spec.type, body), None
    return spec.members.validate(body)


def new_document(
    spec: Spec, attrs: dict[str, Any], *, base: str, resource_id: str, now: str
) -> dict[str, Any]:
    """The stored document of a new resource: its validated attributes with its id and first
    meta."""
    return assemble(
        attrs,
        resource_type=spec.type.name,
        resource_id=resource_id,
        created=now,
        modified=now,
        version=1,
        location=spec.location(base, resource_id),
    )


async def create(db: Database, spec: Spec, tenant_id: int, body: object, *, base: str) -> Stored:
    """Validate and store a new resource (with the members its body lists); record its effect."""
    attrs, member_ids = validate(spec, body)
    resource_id = new_id()
    now = clock.stamp()
    doc = new_document(spec, attrs, base=base, resource_id=resource_id, now=now)
    text = dump(doc)
    statements = _statements(spec, db.dialect)
    params = {"tenant": tenant_id, "id": resource_id, "version": 1, "now": now, "doc": text}
    params.update(indexed.columns(spec.type.name, doc))
    pk: int | None = None
    joined: tuple[Member, ...] = ()
    recorded = statements.get("create_recorded")
    if recorded is not None:
        # PostgreSQL: the row, its effect and the count in one statement; in a transaction only
        # when members follow.
        params.update(_effect_params(tenant_id, spec.effects.sync, resource_id, 1, now=now))
        params.update(counts.add_params(tenant_id, spec.type.name, resource_id, 1))
    writing = db.single() if recorded is not None and not member_ids else db.transaction()
    async with writing as conn:
        if recorded is not None:
            row = await conn.fetchone(recorded, params)
            pk = row[0] if row is not None and spec.members is not None else None
        elif spec.members is None:
            await conn.execute(statements["insert"], params)
        else:
            row = await conn.fetchone(statements["insert"], params)
            assert row is not None
            pk = row[0]
        if recorded is None:
            effect = _effect_params(tenant_id, spec.effects.sync, resource_id, 1, now=now)
            await _record(conn, db.dialect, effect)
            await counts.add(conn, db.dialect, tenant_id, spec.type.name, resource_id, 1)
        if pk is not None and member_ids and spec.members is not None:
            added = (MemberChange("add", tuple(member_ids)),)
            membership = await spec.members.change(
                conn, db.dialect, tenant_id, pk, resource_id, 1, added, now
            )
            joined = membership.added
            await conn.execute(
                statements["update"], {**params, "pk": pk, "delta": membership.delta}
            )
    db.effects_committed()
    changes = Changes(
        name=_name(spec, attrs),
        active=active_change(None, attrs),
        added=joined,
        created=True,
    )
    return Stored(resource_id, 1, text, changes, pk)


async def get(
    db: Database, spec: Spec, tenant_id: int, resource_id: str, *, computed: bool = False
) -> Stored:
    """The resource; with ``computed`` its computed attribute is read into it."""
    statements = _statements(spec, db.dialect)
    async with db.reader() as conn:
        row = await _row(conn, statements["get"], spec, tenant_id, resource_id)
        text = row[2]
        if computed and spec.computed is not None:
            (text,) = await spec.computed.read(conn, db.dialect, [(row[0], text)])
    return Stored(resource_id, row[1], text, pk=row[0])


async def with_computed(db: Database, spec: Spec, tenant_id: int, stored: Stored) -> Stored:
    """A resource just written, with its computed attribute read into it."""
    if spec.computed is None:
        return stored
    async with db.reader() as conn:
        pk = stored.pk
        if pk is None:
            statement = _statements(spec, db.dialect)["get"]
            pk = (await _row(conn, statement, spec, tenant_id, stored.id))[0]
        (text,) = await spec.computed.read(conn, db.dialect, [(pk, stored.doc)])
    return replace(stored, doc=text, pk=pk)


async def list_(
    db: Database, spec: Spec, tenant_id: int, query: ListQuery, *, computed: bool = False
) -> Page:
    """One page of the tenant's resources; with ``computed`` each with its computed
    attribute."""
    return await search(db, (spec,), tenant_id, query, computed=(computed,))


async def search(
    db: Database,
    specs: Sequence[Spec],
    tenant_id: int,
    query: ListQuery,
    *,
    computed: Sequence[bool],
) -> Page:
    """One page of the tenant's resources of the types ``specs``, listed as one (the rank of
    each resource is the index of its spec); ``computed`` says, for each, whether its computed
    attribute is read into its documents."""
    keys = await cursors.keys(db) if query.cursor is not None else None
    sources = [
        Source(spec.type, spec.table.name, indexed.ALIASES[spec.type.name]) for spec in specs
    ]
    async with db.reader() as conn:
        page = await list_page(
            conn,
            db.dialect,
            sources,
            tenant_id=tenant_id,
            query=query,
            default_count=DEFAULT_PAGE_SIZE,
            marks=page_marks(db),
            keys=keys,
        )
        docs = page.docs
        for rank, (spec, wanted) in enumerate(zip(specs, computed, strict=True)):
            if not wanted or spec.computed is None:
                continue
            places = [index for index, of in enumerate(page.ranks) if of == rank]
            if not places:
                continue
            rows = [(page.pks[index], docs[index]) for index in places]
            read = await spec.computed.read(conn, db.dialect, rows)
            for index, text in zip(places, read, strict=True):
                docs[index] = text
    return page


Edit = Callable[[str], tuple[dict[str, Any], Sequence[MemberChange]]]
"""What a PUT or PATCH does to the stored document (its JSON text): the new client attributes
and the member changes, in order."""


def replacing(spec: Spec, body: object) -> Edit:
    """PUT: the body (validated now) replaces the document whole; the members are replaced when
    the body lists them."""
    attrs, member_ids = validate(spec, body)
    changes = () if member_ids is None else (MemberChange("replace", tuple(member_ids)),)
    return lambda _old: (attrs, changes)


def patching(spec: Spec, body: object) -> Edit:
    """PATCH: the body's operations applied to the document, all or nothing."""

    def edit(old: str) -> tuple[dict[str, Any], Sequence[MemberChange]]:
        # A document of its own to patch in place: parsing the text again costs a fraction of
        # a deep copy of the parsed one.
        result = scim_patch.apply(spec.type, orjson.loads(old), body, owned=True)
        return client_attributes(result.doc), result.members

    return edit


async def rewrite(
    db: Database,
    spec: Spec,
    tenant_id: int,
    resource_id: str,
    edit: Edit,
    *,
    base: str,
    if_match: str | None = None,
) -> Stored:
    """The read-modify-write of a PUT or PATCH; an unchanged resource keeps its version.

    On PostgreSQL a change of a resource without members that leaves ``active`` as it was is
    read without a lock and written by one statement that checks the version read (two round
    trips instead of four: BEGIN, the locking read, the write, COMMIT); a write that lost the
    race reads and applies the edit again. Everything else takes the row's lock in a
    transaction (a group's changes are mostly member changes: it takes the lock at once)."""
    job = _Rewrite(db, spec, tenant_id, resource_id, edit, base, if_match)
    if spec.members is None and "update_if_version" in _statements(spec, db.dialect):
        for _ in range(_UNLOCKED_TRIES):
            outcome = await job.without_lock()
            if isinstance(outcome, Stored):
                return outcome
            if outcome == "lock":
                break
    return await job.with_lock()


#: How often a PostgreSQL PUT or PATCH tries the write without a lock before it takes one.
_UNLOCKED_TRIES = 2

#: Why :meth:`_Rewrite.without_lock` did not write: another write came first (read and try
#: again), or the change needs the row's lock (the deprovisioning guard).
_NotWritten = Literal["lost", "lock"]


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """What :func:`rewrite` was asked: the resource, the edit, the base URL of its location
    and the client's ``If-Match``."""

    db: Database
    spec: Spec
    tenant_id: int
    resource_id: str
    edit: Edit
    base: str
    if_match: str | None

    async def with_lock(self) -> Stored:
        """Read the row under its lock, apply the edit, write the row, its member changes and
        its effect (held by the deprovisioning guard when it says so) in one transaction."""
        db, spec, tenant_id, resource_id = self.db, self.spec, self.tenant_id, self.resource_id
        statements = _statements(spec, db.dialect)
        async with db.transaction() as conn:
            row = await _row(conn, statements["lock"], spec, tenant_id, resource_id)
            edited = _Edited.of(row, self.edit, self.if_match)
            now = clock.stamp()
            membership = MembershipChange()
            if edited.member_changes and spec.members is not None:
                membership = await spec.members.change(
                    conn,
                    db.dialect,
                    tenant_id,
                    edited.pk,
                    resource_id,
                    edited.version + 1,
                    edited.member_changes,
                    now,
                )
            if not edited.changed and not membership.touched:
                return edited.unchanged(spec, resource_id)
            text, params = edited.new_row(spec, resource_id, self.base, now)
            params["delta"] = membership.delta
            recorded = statements.get("update_recorded") if edited.changed else None
            if recorded is None:
                await conn.execute(statements["update"], params)
            if edited.changed:
                held = False
                if spec.effects.guarded:
                    held = await _guard(conn, db, tenant_id, resource_id, edited.active, now)
                effect = edited.effect(spec, tenant_id, resource_id, now, held)
                if recorded is not None:  # PostgreSQL: the row and its effect in one statement
                    await conn.execute(recorded, {**params, **effect})
                else:
                    await _record(conn, db.dialect, effect)
        db.effects_committed()
        return edited.stored(spec, resource_id, text, membership)

    async def without_lock(self) -> Stored | _NotWritten:
        """PostgreSQL: :meth:`with_lock` without a lock, for a resource without members
        (:func:`rewrite` calls it for those only) and a change that leaves ``active`` as it was
        (a change of ``active`` needs the transaction: the deprovisioning guard); ``"lock"``
        when the change needs the locking path, ``"lost"`` when another write changed the row
        since it was read."""
        db, spec, tenant_id, resource_id = self.db, self.spec, self.tenant_id, self.resource_id
        statements = _statements(spec, db.dialect)
        async with db.reader() as conn:
            row = await _row(conn, statements["read"], spec, tenant_id, resource_id)
        edited = _Edited.of(row, self.edit, self.if_match)
        if not edited.changed:
            return edited.unchanged(spec, resource_id)
        if spec.effects.guarded and edited.active is not None:
            return "lock"
        now = clock.stamp()
        text, params = edited.new_row(spec, resource_id, self.base, now)
        params["expected"] = edited.version
        params.update(edited.effect(spec, tenant_id, resource_id, now))
        async with db.single() as conn:
            written = await conn.fetchone(statements["update_if_version"], params)
        if written is None or written[0] != 1:
            return "lost"  # another write came first: read it and apply the edit again
        db.effects_committed()
        return edited.stored(spec, resource_id, text, MembershipChange())


@dataclass(frozen=True, slots=True)
class _Edited:
    """A PUT's or PATCH's edit applied to the row read: the row's key, version, text and
    creation time, the client attributes before and after, and the member changes asked."""

    pk: int
    version: int
    old_text: str
    created: str
    old: dict[str, Any]
    before: dict[str, Any]
    attrs: dict[str, Any]
    member_changes: Sequence[MemberChange]

    @classmethod
    def of(cls, row: Row, edit: Edit, if_match: str | None) -> _Edited:
        """Check ``If-Match`` against the row's version, then apply ``edit`` to its text."""
        pk, version, old_text, created = row[0], row[1], row[2], row[3]
        check_version(if_match, version)
        old = orjson.loads(old_text)
        attrs, member_changes = edit(old_text)
        return cls(
            pk, version, old_text, created, old, client_attributes(old), attrs, member_changes
        )

    @property
    def changed(self) -> bool:
        return self.before != self.attrs

    @property
    def active(self) -> tuple[bool | None, bool | None] | None:
        return active_change(self.before, self.attrs)

    def unchanged(self, spec: Spec, resource_id: str) -> Stored:
        """Nothing to write: the resource as it is, at its version."""
        changes = Changes(name=_name(spec, self.attrs), rewrite=True)
        return Stored(resource_id, self.version, self.old_text, changes, self.pk)

    def new_row(
        self, spec: Spec, resource_id: str, base: str, now: str
    ) -> tuple[str, dict[str, Any]]:
        """The next version's document (JSON text) and the parameters of its row's update."""
        version = self.version + 1
        doc = assemble(
            self.attrs,
            resource_type=spec.type.name,
            resource_id=resource_id,
            created=self.created,
            modified=now,
            version=version,
            location=spec.location(base, resource_id),
        )
        text = dump(doc)
        params = {"pk": self.pk, "version": version, "now": now, "doc": text}
        params.update(indexed.columns(spec.type.name, doc))
        return text, params

    def effect(
        self, spec: Spec, tenant_id: int, resource_id: str, now: str, held: bool = False
    ) -> dict[str, Any]:
        """The parameters of the next version's effect (with the name it had, for a
        resource whose effect needs it)."""
        previous = None
        if spec.effects.previous_name:
            previous = {"previous": self.old.get(spec.name_attribute)}
        return _effect_params(
            tenant_id, spec.effects.sync, resource_id, self.version + 1, previous, now, held
        )

    def stored(
        self, spec: Spec, resource_id: str, text: str, membership: MembershipChange
    ) -> Stored:
        """The resource as written at the next version, with what the write changed."""
        changed = self.changed
        changes = Changes(
            name=_name(spec, self.attrs),
            attributes=diff(self.before, self.attrs) if changed else (),
            active=self.active if changed else None,
            added=membership.added,
            removed=membership.removed,
            rewrite=True,
        )
        return Stored(resource_id, self.version + 1, text, changes, self.pk)


async def delete(
    db: Database, spec: Spec, tenant_id: int, resource_id: str, *, if_match: str | None = None
) -> Changes:
    """Delete the resource and what refers to it; record the deletion with what the worker needs
    once the row is gone (the resource's name, and what ``before_delete`` adds). Returns the
    deleted resource's name and, for a user, the groups it left."""
    statements = _statements(spec, db.dialect)
    async with db.transaction() as conn:
        # The name and ``active`` from their columns (the document's values): no document to
        # read.
        row = await _row(conn, statements["lock_name"], spec, tenant_id, resource_id)
        pk, version, name = row[0], row[1], row[2]
        check_version(if_match, version)
        payload = {spec.name_attribute: name}
        if spec.members is not None:
            await spec.members.drop(conn, db.dialect, pk)
        if spec.before_delete is not None:
            payload.update(await spec.before_delete(conn, db.dialect, pk))
        kind = spec.effects.delete
        now = clock.stamp()
        held = spec.effects.guarded and not await guard.admit(
            conn,
            db.dialect,
            tenant_id,
            default=guard.policy_of(db),
            was_active=bool(row[3]),
            now=now,
        )
        recorded = statements.get("delete_recorded")
        effect = _effect_params(tenant_id, kind, resource_id, version, payload, now, held)
        if recorded is not None:  # PostgreSQL: the row, its effect and the count at once
            await conn.execute(
                recorded,
                {
                    "pk": pk,
                    **effect,
                    **counts.add_params(tenant_id, spec.type.name, resource_id, -1),
                },
            )
        else:
            await conn.execute(statements["delete"], {"pk": pk})
            await _record(conn, db.dialect, effect)
            await counts.add(conn, db.dialect, tenant_id, spec.type.name, resource_id, -1)
    page_marks(db).forget(spec.table.name, tenant_id)
    db.effects_committed()
    left = payload.get("groups")
    return Changes(
        name=name if isinstance(name, str) else None,
        groups=tuple(left) if isinstance(left, list) else (),
    )


async def _guard(
    conn: Connection,
    db: Database,
    tenant_id: int,
    resource_id: str,
    active: tuple[bool | None, bool | None] | None,
    now: str,
) -> bool:
    """Whether the effect of a change of ``active`` (before, after) is held: a revocation
    passes the guard; a user enabled again supersedes its held effects."""
    if active is None:
        return False
    before, after = active
    if after is False:
        default = guard.policy_of(db)
        return not await guard.admit(
            conn, db.dialect, tenant_id, default=default, was_active=True, now=now
        )
    if before is False:
        await guard.supersede(conn, db.dialect, tenant_id, resource_id)
    return False


def _name(spec: Spec, attrs: dict[str, Any]) -> str | None:
    name = attrs.get(spec.name_attribute)
    return name if isinstance(name, str) else None


async def _row(
    conn: Connection, statement: Statement, spec: Spec, tenant_id: int, resource_id: str
) -> Row:
    """The row of the tenant's resource ``resource_id``; ResourceNotFound without one."""
    row = await conn.fetchone(statement, {"tenant": tenant_id, "id": resource_id})
    if row is None:
        raise ResourceNotFound(spec.type.name, resource_id)
    return row


def _effect_params(
    tenant_id: int,
    kind: str,
    resource_id: str,
    version: int,
    payload: dict[str, Any] | None = None,
    now: str | None = None,
    held: bool = False,
) -> dict[str, Any]:
    """The parameters of the effect ``kind`` of the resource's ``version``, for ``_record`` or a
    statement that records it as part of its own (``held``: waiting for an operator's
    approval)."""
    stamp = now or clock.stamp()
    key = _effect_key(kind, resource_id, version)
    effect = outbox.Scheduled(kind, resource_id, key, payload or {}, due_at=stamp)
    return recording.insert_params(tenant_id, effect, stamp, held=held)


def _effect_key(kind: str, resource_id: str, version: int) -> str:
    return f"{kind}:{resource_id}:v{version}"


async def _record(conn: Connection, dialect: Dialect, effect: dict[str, Any]) -> None:
    """Record an effect, in a statement of its own, from the parameters ``_effect_params`` made
    (a statement that records it as part of its own takes the same parameters)."""
    await conn.execute(recording.insert_statement(dialect), effect)
