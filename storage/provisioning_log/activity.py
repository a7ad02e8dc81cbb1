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
    #: Refusals that are the expected answer (:data:`EXPECTED_REFUSAL`), not failures.
    expected: int
    client_errors: int
    server_errors: int
    last_success_at: str | None
    first_seen_at: str | None


#: A refusal that is the expected answer, not a failure of the target as Entra would count it:
#: 404 for a resource read, changed or deleted by an id that is gone (Entra reads a user after
#: deleting it, deletes twice), 412 for a client's stale If-Match, 499 for a client that went
#: away before its request arrived whole.
EXPECTED_REFUSAL = (
    "(status IN (412, 499) OR (status = 404 AND target_id IS NOT NULL"
    " AND operation NOT LIKE 'POST %'))"
)
_COUNTS = (
    f"SELECT CASE WHEN result = 'client_error' AND {EXPECTED_REFUSAL} THEN 'expected'"
    " ELSE result END AS counted, count(*) FROM provisioning_log"
    " WHERE tenant_id = :tenant AND time >= :since AND source = 'scim' GROUP BY counted"
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
        expected=counts.get("expected", 0),
        client_errors=counts.get(CLIENT_ERROR, 0),
        server_errors=counts.get(SERVER_ERROR, 0),
        last_success_at=last[0] if last else None,
        first_seen_at=first[0] if first else None,
    )
