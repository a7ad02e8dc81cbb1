"""Groups: the group resource for the engine (``storage.resources``), with its members.

A group's document never holds its members: they are rows in ``memberships``
(``storage.memberships``), so a PATCH that adds or removes members touches only those rows (plus
the group's version and member count), never the whole list, and concurrent PATCHes of one
group's membership cannot lose each other's changes. Members are read into the document only when
a response shows them (a list shows them unless ``excludedAttributes`` leaves them out). A rename
records ``group.sync`` with the previous name.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage import memberships, outbox, records
from storage.changes import MembershipChange
from storage.database import Connection
from storage.documents import with_references
from storage.resources import Computed, Effects, Members, Spec
from storage.scim.errors import InvalidValue
from storage.scim.patch import MemberChange
from storage.scim.resources import validate_group
from storage.scim.schema import GROUP_TYPE
from storage.sql import Dialect

MAX_MEMBERS_PER_REQUEST = 10_000


async def change_members(
    conn: Connection,
    dialect: Dialect,
    tenant_id: int,
    group_pk: int,
    group_id: str,
    version: int,
    changes: Sequence[MemberChange],
    now: str,
) -> MembershipChange:
    """Apply member changes in order; record an account effect for each user whose membership
    changed. Returns what changed: the users that joined or left, net of the whole request."""
    # Per changed user: whether it was a member before the request and is one after it.
    before: dict[int, bool] = {}
    after: dict[int, bool] = {}
    delta = 0
    for change in changes:
        ids = list(dict.fromkeys(change.ids))
        if len(ids) > MAX_MEMBERS_PER_REQUEST:
            raise InvalidValue(f"at most {MAX_MEMBERS_PER_REQUEST} members per request")
        joining = change.op in ("add", "replace") and bool(ids)
        if joining:
            missing = set(ids) - await memberships.resolve(conn, dialect, tenant_id, ids)
            if missing:
                raise InvalidValue(f"member {sorted(missing)[0]} is not a user of this tenant")
        left: list[int] = []
        if change.op == "replace":
            left = await memberships.keep_only(conn, dialect, tenant_id, group_pk, ids)
        elif change.op == "remove" and ids:
            left = await memberships.remove(conn, dialect, tenant_id, group_pk, ids)
        for pk in left:
            before.setdefault(pk, True)
            after[pk] = False
        delta -= len(left)
        if joining:
            added = await memberships.add(conn, dialect, tenant_id, group_pk, ids)
            for pk in added:
                before.setdefault(pk, False)
                after[pk] = True
            delta += len(added)
    if not after:
        return MembershipChange(delta=delta)
    users = await memberships.record_effects(
        conn,
        dialect,
        tenant_id=tenant_id,
        group_id=group_id,
        version=version,
        user_pks=sorted(after),
        now=now,
    )
    joined = tuple(users[pk] for pk in after if after[pk] and not before[pk] and pk in users)
    gone = tuple(users[pk] for pk in after if before[pk] and not after[pk] and pk in users)
    return MembershipChange(touched=True, delta=delta, added=joined, removed=gone)


async def with_members(
    conn: Connection, dialect: Dialect, rows: Sequence[tuple[int, str]]
) -> list[str]:
    """The stored documents of the groups ``rows`` (primary key, document) with their
    ``members`` (before ``meta``)."""
    return [
        with_references(
            text, "members", "/Users", await memberships.members(conn, dialect, pk), "User"
        )
        for pk, text in rows
    ]


SPEC = Spec(
    type=GROUP_TYPE,
    table=records.groups,
    name_attribute="displayName",
    effects=Effects(sync=outbox.GROUP_SYNC, delete=outbox.GROUP_DELETE, previous_name=True),
    members=Members(
        validate=validate_group,
        change=change_members,
        counter="member_count",
        drop=memberships.drop_group,
    ),
    computed=Computed("members", with_members, listed=True, at_create=True),
)
