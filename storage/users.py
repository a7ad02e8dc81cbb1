"""Users: the user resource for the engine (``storage.resources``), and what only a user's
delete does.

A user's writes record ``account.sync``; its delete takes the user out of its groups and records
``account.delete`` with the userName and the names of those groups, which the worker needs once
the row is gone.
"""

from __future__ import annotations

from typing import Any

from storage import memberships, outbox, records
from storage.database import Connection
from storage.resources import Effects, Spec
from storage.scim.schema import USER_TYPE
from storage.sql import Dialect


async def _leave_groups(conn: Connection, dialect: Dialect, pk: int) -> dict[str, Any]:
    return {"groups": await memberships.leave_all(conn, dialect, pk)}


SPEC = Spec(
    type=USER_TYPE,
    table=records.users,
    name_attribute="userName",
    effects=Effects(sync=outbox.ACCOUNT_SYNC, delete=outbox.ACCOUNT_DELETE),
    before_delete=_leave_groups,
)
