"""Users: the user resource for the engine (``storage.resources``), and what only a user's
delete does.

A user's writes record ``account.sync``; its delete takes the user out of its groups and records
``account.delete`` with the userName and the names of those groups, which the worker needs once
the row is gone. A disable and a delete pass the deprovisioning guard (``storage.guard``), which
may record their effect held. A user's ``groups`` (readOnly, RFC 7643 §4.1.2) are its membership
rows, read into a response that shows them: every group it is a direct member of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage import memberships, outbox, records
from storage.database import Connection
from storage.documents import with_references
from storage.resources import Computed, Effects, Spec
from storage.scim.schema import USER_TYPE
from storage.sql import Dialect


async def _leave_groups(conn: Connection, dialect: Dialect, pk: int) -> dict[str, Any]:
    return {"groups": await memberships.leave_all(conn, dialect, pk)}


async def with_groups(
    conn: Connection, dialect: Dialect, rows: Sequence[tuple[int, str]]
) -> list[str]:
    """The stored documents of the users ``rows`` (primary key, document) with their
    ``groups`` (before ``meta``), read in one statement."""
    found = await memberships.groups_of(conn, dialect, [pk for pk, _ in rows])
    return [
        with_references(text, "groups", "/Groups", found.get(pk, ()), "direct") for pk, text in rows
    ]


SPEC = Spec(
    type=USER_TYPE,
    table=records.users,
    name_attribute="userName",
    effects=Effects(sync=outbox.ACCOUNT_SYNC, delete=outbox.ACCOUNT_DELETE, guarded=True),
    before_delete=_leave_groups,
    computed=Computed("groups", with_groups, listed=False, at_create=False),
)
