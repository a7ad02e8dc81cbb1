"""What printsync knows about a tenant's print system: who owns each print username, and whether
the print system refuses printsync's credentials, and the connection tests asked for from the
console.

**Print names.** A connector may map several userNames to one print-system username (PaperCut's
``local-part`` mapping makes ``adele@contoso.com`` and ``adele@fabrikam.com`` both ``adele``).
The first user whose account lives under a name owns it (:func:`claim`); a second user mapping to
it is refused by the worker, naming both, and the account is never merged or overwritten. A
user owns one name per connector: claiming a new one (after a rename) gives up the old.

**Pauses.** When the print system refuses the credentials (a wrong auth token, an address not on
its allow-list) nothing the tenant's effects send can succeed, so they wait instead of burning
their retries (:func:`pause`). One attempt at a time probes again once ``retry_at`` has passed
(:func:`take_probe`); the first success, a passing connection test or a change of the tenant's
connector configuration ends the pause and makes the waiting effects due at once
(:func:`resume`).

**Connection tests.** The console cannot call a print system (the API never talks to one), so its
"Test connection" records a request and a ``connector.test`` effect (:func:`request_check`); the
worker that runs the effect records what it found (:func:`record_check`) for the page to show.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage import clock
from storage.database import Connection, Database
from storage.outbox.effects import CONNECTOR_TEST
from storage.outbox.recording import record
from storage.records import connector_checks, connector_pauses, print_names, users
from storage.sql import Dialect, Statement, compile_core, compile_text


@dataclass(frozen=True, slots=True)
class Owner:
    """The user who holds a print name: their id, the userName they claimed it under, and
    their userName now (None if the user no longer exists)."""

    user_id: str
    user_name: str
    current_user_name: str | None


@dataclass(frozen=True, slots=True)
class Check:
    """The latest connection test asked for: when, and once a worker ran it, what it found."""

    requested_at: str
    checked_at: str | None
    ok: bool | None
    message: str | None

    @property
    def waiting(self) -> bool:
        return self.checked_at is None


@dataclass(frozen=True, slots=True)
class Pause:
    """Why a tenant's effects wait, since when, and when one of them tries again."""

    reason: str
    since: str
    checked_at: str
    retry_at: str

    def summary(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "since": self.since,
            "checked_at": self.checked_at,
            "retry_at": self.retry_at,
        }


def _insert(dialect: Dialect, table: sa.Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    names = print_names
    name_key = sa.and_(
        names.c.tenant_id == p("tenant"),
        names.c.connector == p("connector"),
        names.c.name_ci == p("name_ci"),
    )
    pause_insert = _insert(dialect, connector_pauses).values(
        tenant_id=p("tenant"),
        reason=p("reason"),
        since=p("now"),
        checked_at=p("now"),
        retry_at=p("retry_at"),
    )
    return {
        "owner": compile_core(
            sa.select(names.c.user_id, names.c.user_name, users.c.user_name)
            .select_from(
                names.outerjoin(
                    users,
                    sa.and_(users.c.tenant_id == names.c.tenant_id, users.c.id == names.c.user_id),
                )
            )
            .where(name_key),
            dialect,
        ),
        "drop_others": compile_core(
            sa.delete(names).where(
                names.c.tenant_id == p("tenant"),
                names.c.connector == p("connector"),
                names.c.user_id == p("user_id"),
                names.c.name_ci != p("name_ci"),
            ),
            dialect,
        ),
        "add": compile_core(
            _insert(dialect, names)
            .values(
                tenant_id=p("tenant"),
                connector=p("connector"),
                name_ci=p("name_ci"),
                user_id=p("user_id"),
                user_name=p("user_name"),
                updated_at=p("now"),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "connector", "name_ci"]),
            dialect,
        ),
        "take": compile_core(
            sa.update(names)
            .where(
                name_key, sa.or_(names.c.user_id == p("user_id"), names.c.user_id == p("take_from"))
            )
            .values(user_id=p("user_id"), user_name=p("user_name"), updated_at=p("now")),
            dialect,
        ),
        "release": compile_core(sa.delete(names).where(name_key), dialect),
        "pause_of": compile_core(
            sa.select(
                connector_pauses.c.reason,
                connector_pauses.c.since,
                connector_pauses.c.checked_at,
                connector_pauses.c.retry_at,
            ).where(connector_pauses.c.tenant_id == p("tenant")),
            dialect,
        ),
        "pause": compile_core(
            pause_insert.on_conflict_do_update(
                index_elements=["tenant_id"],
                set_={
                    "reason": pause_insert.excluded.reason,
                    "checked_at": pause_insert.excluded.checked_at,
                    "retry_at": pause_insert.excluded.retry_at,
                },
            ),
            dialect,
        ),
        "probe": compile_core(
            sa.update(connector_pauses)
            .where(
                connector_pauses.c.tenant_id == p("tenant"), connector_pauses.c.retry_at <= p("now")
            )
            .values(checked_at=p("now"), retry_at=p("retry_at")),
            dialect,
        ),
        "check_of": compile_core(
            sa.select(
                connector_checks.c.requested_at,
                connector_checks.c.checked_at,
                connector_checks.c.ok,
                connector_checks.c.message,
            ).where(connector_checks.c.tenant_id == p("tenant")),
            dialect,
        ),
        "request_check": compile_core(
            _insert(dialect, connector_checks)
            .values(tenant_id=p("tenant"), requested_at=p("now"))
            .on_conflict_do_update(
                index_elements=["tenant_id"],
                set_={
                    "requested_at": p("now"),
                    "checked_at": sa.null(),
                    "ok": sa.null(),
                    "message": sa.null(),
                },
            ),
            dialect,
        ),
        "checked": compile_core(
            sa.update(connector_checks)
            .where(connector_checks.c.tenant_id == p("tenant"))
            .values(checked_at=p("now"), ok=p("ok"), message=p("message")),
            dialect,
        ),
        "unpause": compile_core(
            sa.delete(connector_pauses).where(connector_pauses.c.tenant_id == p("tenant")), dialect
        ),
        # Effects that wait for the pause: pending, not claimed, not scheduled for later (a
        # scheduled effect is created when it falls due), not yet due.
        "wake": compile_text(
            "UPDATE outbox SET next_attempt_at = :now WHERE tenant_id = :tenant"
            " AND state = 'pending' AND claimed_until IS NULL AND created_at <= :now"
            " AND next_attempt_at > :now",
            dialect,
        ),
        # Only while the tenant is paused: an effect never waits for a pause that has ended.
        "postpone": compile_text(
            "UPDATE outbox SET next_attempt_at = :retry_at, claimed_until = NULL,"
            " last_error = :error, updated_at = :now WHERE id = :id AND state = 'pending'"
            " AND EXISTS (SELECT 1 FROM connector_pauses"
            " WHERE connector_pauses.tenant_id = outbox.tenant_id)",
            dialect,
        ),
    }


# Print names ------------------------------------------------------------------------------------


async def owner(db: Database, tenant_id: int, connector: str, name: str) -> Owner | None:
    """Who holds print name ``name`` (any case) of the tenant's ``connector``, if anyone."""
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["owner"],
            {"tenant": tenant_id, "connector": connector, "name_ci": name.lower()},
        )
    return None if row is None else Owner(row[0], row[1], row[2])


async def claim(
    db: Database,
    tenant_id: int,
    connector: str,
    name: str,
    *,
    user_id: str,
    user_name: str,
    take_from: str | None = None,
) -> bool:
    """Make ``user_id`` the owner of print name ``name``, giving up any other name it held.

    The name is taken only when it is free, already the user's, or held by ``take_from`` (a
    holder the caller found stale). Returns whether the user holds it now."""
    statements = _statements(db.dialect)
    params = {
        "tenant": tenant_id,
        "connector": connector,
        "name_ci": name.lower(),
        "user_id": user_id,
        "user_name": user_name,
        "take_from": take_from or user_id,
        "now": clock.stamp(),
    }
    async with db.transaction() as conn:
        await conn.execute(statements["drop_others"], params)
        await conn.execute(statements["add"], params)
        taken = await conn.execute(statements["take"], params)
    return bool(taken)


async def release(db: Database, tenant_id: int, connector: str, name: str) -> None:
    """Forget who held print name ``name`` (its account was deleted)."""
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["release"],
            {"tenant": tenant_id, "connector": connector, "name_ci": name.lower()},
        )


# Pauses -----------------------------------------------------------------------------------------


async def pause_of(db: Database, tenant_id: int) -> Pause | None:
    """The tenant's pause, if its print system refuses the credentials."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["pause_of"], {"tenant": tenant_id})
    return None if row is None else Pause(row[0], row[1], row[2], row[3])


async def pause(db: Database, tenant_id: int, reason: str, *, retry_seconds: float) -> str:
    """Pause the tenant's effects with ``reason`` (kept since the first refusal); one tries
    again after ``retry_seconds``. Returns when."""
    now = clock.now()
    retry_at = clock.later(retry_seconds, now)
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["pause"],
            {"tenant": tenant_id, "reason": reason, "now": clock.stamp(now), "retry_at": retry_at},
        )
    return retry_at


async def take_probe(db: Database, tenant_id: int, *, retry_seconds: float) -> bool:
    """Whether the caller is the one attempt that tries the paused tenant's print system now
    (its ``retry_at`` has passed); the next probe is then due ``retry_seconds`` later."""
    now = clock.now()
    async with db.transaction() as conn:
        taken = await conn.execute(
            _statements(db.dialect)["probe"],
            {
                "tenant": tenant_id,
                "now": clock.stamp(now),
                "retry_at": clock.later(retry_seconds, now),
            },
        )
    return bool(taken)


async def postpone(
    conn: Connection, dialect: Dialect, effect_id: int, *, retry_at: str, error: str
) -> bool:
    """Let a pending effect wait until ``retry_at`` without counting an attempt, inside the
    caller's transaction, if its tenant is still paused (whether it waits). It is not claimed
    meanwhile: the relay sends it when it is due."""
    changed = await conn.execute(
        _statements(dialect)["postpone"],
        {"id": effect_id, "retry_at": retry_at, "error": error, "now": clock.stamp()},
    )
    return bool(changed)


async def resume(db: Database, tenant_id: int) -> bool:
    """End the tenant's pause and make its waiting effects due now; whether it was paused."""
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        ended = await conn.execute(statements["unpause"], {"tenant": tenant_id})
        if ended:
            await conn.execute(statements["wake"], {"tenant": tenant_id, "now": clock.stamp()})
    return bool(ended)


# Connection tests asked for from the console ------------------------------------------------------


async def request_check(db: Database, tenant_id: int) -> Check:
    """Ask a worker to test the tenant's connection: the request and its ``connector.test``
    effect, in one transaction."""
    now = clock.stamp()
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["request_check"], {"tenant": tenant_id, "now": now}
        )
        await record(
            conn,
            db.dialect,
            tenant_id=tenant_id,
            kind=CONNECTOR_TEST,
            subject_id=str(tenant_id),
            key=f"{CONNECTOR_TEST}:{tenant_id}:{uuid.uuid4().hex}",
            now=now,
        )
    return Check(now, None, None, None)


async def check_of(db: Database, tenant_id: int) -> Check | None:
    """The tenant's latest connection test, if one was asked for."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["check_of"], {"tenant": tenant_id})
    if row is None:
        return None
    return Check(row[0], row[1], None if row[2] is None else bool(row[2]), row[3])


async def record_check(db: Database, tenant_id: int, *, ok: bool, message: str) -> None:
    """What the connection test found."""
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["checked"],
            {"tenant": tenant_id, "now": clock.stamp(), "ok": ok, "message": message},
        )
