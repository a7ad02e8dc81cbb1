"""The health model's input from the provisioning log: a tenant's recent SCIM results."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database
from storage.provisioning_log.entries import CLIENT_ERROR, SERVER_ERROR, SUCCESS
from storage.sql import compile_text


@dataclass(frozen=True, slots=True)
class ScimActivity:
    """A tenant's SCIM requests in a window, and its last success and first request ever."""

    total: int
    success: int
    client_errors: int
    server_errors: int
    last_success_at: str | None
    first_seen_at: str | None


_COUNTS = (
    "SELECT result, count(*) FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time >= :since AND source = 'scim' GROUP BY result"
)
_LAST_SUCCESS = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant AND source = 'scim'"
    " AND result = 'success' ORDER BY time DESC LIMIT 1"
)
_FIRST_SEEN = (
    "SELECT time FROM provisioning_log WHERE tenant_id = :tenant AND source = 'scim'"
    " ORDER BY time LIMIT 1"
)


async def scim_activity(db: Database, tenant_id: int, since: str) -> ScimActivity:
    """Counts of the tenant's SCIM results since ``since``, for the health model."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            compile_text(_COUNTS, db.dialect), {"tenant": tenant_id, "since": since}
        )
        last = await conn.fetchone(compile_text(_LAST_SUCCESS, db.dialect), {"tenant": tenant_id})
        first = await conn.fetchone(compile_text(_FIRST_SEEN, db.dialect), {"tenant": tenant_id})
    counts = {row[0]: int(row[1]) for row in rows}
    return ScimActivity(
        total=sum(counts.values()),
        success=counts.get(SUCCESS, 0),
        client_errors=counts.get(CLIENT_ERROR, 0),
        server_errors=counts.get(SERVER_ERROR, 0),
        last_success_at=last[0] if last else None,
        first_seen_at=first[0] if first else None,
    )
