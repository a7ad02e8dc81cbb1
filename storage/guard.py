"""The deprovisioning guard: a mass disable or deletion waits for an operator.

A scoping mistake in Entra ID (a group taken off the app, a scoping filter changed) disables or
deletes hundreds of users in one cycle. Within a window (``window_seconds``, default an hour),
once more than ``max(min, percent % of the tenant's enabled users)`` revocations (a user going
from active to inactive) or user deletions have been recorded, the effects of the ones beyond
that threshold are recorded ``held`` instead of ``pending``: the SCIM change itself commits and
Entra gets its normal answer, but nobody loses print access until an operator approves
(:func:`approve`, ``printsync effects approve``), which also starts a new window.

Where the decision is taken: in the API's transaction that records the effect
(:func:`admit`), so the relay and the workers never see a held effect, and the threshold is
taken from the enabled users as they were before the burst (the workers run behind the API and
would count after it). The tenant's ``deprovision_guards`` row is locked (``FOR UPDATE`` on
PostgreSQL; SQLite serialises writers) while the count is read and raised, so concurrent API
processes never let more through than the threshold. Only disables and deletions take this
path; creates, updates and reads never touch the row. The enabled users are counted once per
window, when its first revocation arrives.

Held effects converge like every effect: a user re-enabled by Entra (the scope fixed) makes the
user's held effects done at once (:func:`supersede`, in the re-enabling transaction), and an
approved effect is applied by the level-triggered actors, which read the user as it is then.

Per-tenant overrides live in the tenant's ``guard_*`` columns (NULL: the deployment's
default). A window of 0, or both the minimum and the percentage 0, switches the guard off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from weakref import WeakKeyDictionary

import orjson
from pydantic import BaseModel

from storage import clock
from storage.cycles import when
from storage.database import Connection, Database, Row
from storage.errors import TenantNotFound
from storage.sql import Dialect, Statement, compile_text


class GuardPolicy(BaseModel):
    """The deployment's defaults (``PRINTSYNC_DEPROVISION_GUARD_*``, whose ranges the
    composition root checks)."""

    #: Revocations a window always lets through.
    min: int = 10
    #: … or this share (per cent) of the tenant's enabled users, whichever is more.
    percent: int = 20
    #: The window; 0 switches the guard off.
    window_seconds: int = 3600

    @property
    def active(self) -> bool:
        return self.window_seconds > 0 and (self.min > 0 or self.percent > 0)

    def threshold(self, enabled: int) -> int:
        """How many revocations a window lets through for ``enabled`` enabled users."""
        return max(self.min, enabled * self.percent // 100)

    def with_overrides(
        self, minimum: int | None, percent: int | None, window_seconds: int | None
    ) -> GuardPolicy:
        """This policy with a tenant's overrides (None: keep the default)."""
        return GuardPolicy(
            min=self.min if minimum is None else minimum,
            percent=self.percent if percent is None else percent,
            window_seconds=self.window_seconds if window_seconds is None else window_seconds,
        )


_defaults: WeakKeyDictionary[object, GuardPolicy] = WeakKeyDictionary()
_DEFAULT: Final = GuardPolicy()


def configure(db: Database, policy: GuardPolicy) -> None:
    """Set the deployment's defaults for the writes through ``db`` (the API does at start)."""
    _defaults[db] = policy


def policy_of(db: Database) -> GuardPolicy:
    """The defaults configured for ``db`` (the built-in ones if none were)."""
    return _defaults.get(db, _DEFAULT)


_GUARD = (
    "SELECT g.window_started_at, g.threshold, g.admitted, t.guard_min, t.guard_percent,"
    " t.guard_window_seconds FROM deprovision_guards g JOIN tenants t ON t.id = g.tenant_id"
    " WHERE g.tenant_id = :tenant"
)


def _in_ids(dialect: Dialect) -> str:
    if dialect == "postgresql":
        return "id = ANY(CAST(:ids AS integer[]))"
    return "id IN (SELECT value FROM json_each(:ids))"


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    lock = " FOR UPDATE OF g" if dialect == "postgresql" else ""
    # Released, an effect comes into being as pending (like a scheduled one falling due): it
    # ages, for the health model and the outbox gauges, only from then on.
    release = (
        "UPDATE outbox SET state = 'pending', next_attempt_at = :now, claimed_until = NULL,"
        " created_at = :now, updated_at = :now WHERE tenant_id = :tenant AND state = 'held'"
    )
    sql = {
        "ensure": (
            "INSERT INTO deprovision_guards (tenant_id, threshold, admitted)"
            " VALUES (:tenant, 0, 0) ON CONFLICT (tenant_id) DO NOTHING"
        ),
        "lock": _GUARD + lock,
        "read": _GUARD,
        "enabled": "SELECT count(*) FROM users WHERE tenant_id = :tenant AND active = :yes",
        "update": (
            "UPDATE deprovision_guards SET window_started_at = :started, threshold = :threshold,"
            " admitted = :admitted WHERE tenant_id = :tenant"
        ),
        "reset": (
            "UPDATE deprovision_guards SET window_started_at = NULL, threshold = 0, admitted = 0"
            " WHERE tenant_id = :tenant"
        ),
        "release_all": release,
        "release_some": f"{release} AND {_in_ids(dialect)}",
        "supersede": (
            "UPDATE outbox SET state = 'done', completed_at = :now, updated_at = :now,"
            " last_error = NULL WHERE tenant_id = :tenant AND subject_id = :subject"
            " AND state = 'held'"
        ),
        "held": (
            "SELECT count(*), min(id) FROM outbox WHERE tenant_id = :tenant AND state = 'held'"
        ),
        "held_by_tenant": (
            "SELECT t.name, count(o.id) FROM tenants t LEFT JOIN outbox o"
            " ON o.tenant_id = t.id AND o.state = 'held' GROUP BY t.name"
        ),
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


def _policy(default: GuardPolicy, row: Row) -> GuardPolicy:
    return default.with_overrides(row[3], row[4], row[5])


async def admit(
    conn: Connection,
    dialect: Dialect,
    tenant_id: int,
    *,
    default: GuardPolicy,
    was_active: bool,
    now: str,
) -> bool:
    """Count one revocation or deletion against the tenant's window, inside the caller's
    transaction: True if it applies now, False if its effect is to be held.

    ``was_active``: the user was enabled before this change (it counts among the enabled users
    when a window starts with it)."""
    statements = _statements(dialect)
    params = {"tenant": tenant_id}
    row = await conn.fetchone(statements["lock"], params)
    if row is None:
        await conn.execute(statements["ensure"], params)
        row = await conn.fetchone(statements["lock"], params)
        if row is None:
            raise TenantNotFound(str(tenant_id))
    policy = _policy(default, row)
    if not policy.active:
        return True
    started, threshold, admitted = row[0], int(row[1]), int(row[2])
    if started is None or started < clock.later(-policy.window_seconds, clock.parse(now)):
        found = await conn.fetchone(statements["enabled"], {**params, "yes": True})
        enabled = (int(found[0]) if found is not None else 0) + (1 if was_active else 0)
        started, threshold, admitted = now, policy.threshold(enabled), 0
    applies = admitted < threshold
    await conn.execute(
        statements["update"],
        {
            **params,
            "started": started,
            "threshold": threshold,
            "admitted": admitted + 1 if applies else admitted,
        },
    )
    return applies


async def supersede(conn: Connection, dialect: Dialect, tenant_id: int, subject_id: str) -> int:
    """The user ``subject_id`` is enabled again: its held effects are done without being
    applied (there is nothing left to revoke), inside the caller's transaction."""
    changed = await conn.execute(
        _statements(dialect)["supersede"],
        {"tenant": tenant_id, "subject": subject_id, "now": clock.stamp()},
    )
    return int(changed)


async def approve(db: Database, tenant_id: int, ids: Sequence[int] = ()) -> int:
    """Release the tenant's held effects (all, or those of ``ids``) to be applied, and start a
    new window; returns how many were released."""
    statements = _statements(db.dialect)
    params: dict[str, Any] = {"tenant": tenant_id, "now": clock.stamp()}
    async with db.transaction() as conn:
        await conn.fetchone(statements["lock"], {"tenant": tenant_id})
        if ids:
            values: Any = (
                list(ids) if db.dialect == "postgresql" else orjson.dumps(list(ids)).decode()
            )
            changed = await conn.execute(statements["release_some"], {**params, "ids": values})
        else:
            changed = await conn.execute(statements["release_all"], params)
        await conn.execute(statements["reset"], {"tenant": tenant_id})
    if changed:
        db.effects_committed()
    return int(changed)


@dataclass(frozen=True, slots=True)
class GuardStatus:
    """A tenant's guard: its policy, its current window and the effects it holds."""

    policy: GuardPolicy
    held: int
    window_started_at: str | None
    threshold: int
    admitted: int
    #: The oldest held effect's id: what a mail about this hold is keyed by.
    first_held: int | None = None

    def sentence(self, tenant: str) -> str:
        """The guard in one sentence: what it holds, or how far its window went."""
        policy = self.policy
        if self.held:
            noun = "revocation or deletion" if self.held == 1 else "revocations and deletions"
            why = f"more than {self.threshold}" if self.threshold else "beyond the threshold"
            return (
                f"held: {self.held} {noun} of print access wait for approval ({why} within "
                f"{policy.window_seconds} s); release them with "
                f"`printsync effects approve --tenant {tenant}`."
            )
        if not policy.active:
            return "off."
        if self.window_started_at is None:
            return (
                f"on (more than max({policy.min}, {policy.percent} % of enabled users) "
                f"revocations within {policy.window_seconds} s are held); nothing held."
            )
        return (
            f"on; {self.admitted} of {self.threshold} revocations used in the window since "
            f"{when(self.window_started_at)}; nothing held."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.policy.active,
            "min": self.policy.min,
            "percent": self.policy.percent,
            "window_seconds": self.policy.window_seconds,
            "held": self.held,
            "window_started_at": self.window_started_at,
            "threshold": self.threshold,
            "admitted": self.admitted,
        }


_OVERRIDES = "SELECT guard_min, guard_percent, guard_window_seconds FROM tenants WHERE id = :tenant"


async def status(db: Database, tenant_id: int, default: GuardPolicy | None = None) -> GuardStatus:
    """The tenant's guard as it stands (``default``: the deployment's policy)."""
    statements = _statements(db.dialect)
    base = default or policy_of(db)
    params = {"tenant": tenant_id}
    async with db.reader() as conn:
        held_row = await conn.fetchone(statements["held"], params)
        row = await conn.fetchone(statements["read"], params)
        if row is None:
            overrides = await conn.fetchone(compile_text(_OVERRIDES, db.dialect), params)
            row = (None, 0, 0, *(overrides or (None, None, None)))
    policy = _policy(base, row)
    window = row[0]
    if window is not None and window < clock.later(-policy.window_seconds):
        window = None  # that window is over; the next revocation starts a new one
    return GuardStatus(
        policy=policy,
        held=int(held_row[0]) if held_row is not None else 0,
        window_started_at=window,
        threshold=int(row[1]),
        admitted=int(row[2]) if window is not None else 0,
        first_held=int(held_row[1]) if held_row is not None and held_row[1] is not None else None,
    )


async def held_by_tenant(db: Database) -> dict[str, int]:
    """Held effects per tenant name (0 for a tenant holding none)."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["held_by_tenant"], {})
    return {str(row[0]): int(row[1]) for row in rows}


#: The tenant columns of the overrides, by the name :func:`set_overrides` takes.
OVERRIDES: Final = {
    "min": "guard_min",
    "percent": "guard_percent",
    "window_seconds": "guard_window_seconds",
}


async def set_overrides(db: Database, tenant_id: int, values: dict[str, int | None]) -> None:
    """Set the tenant's overrides named in ``values`` (keys of :data:`OVERRIDES`; a value of
    None goes back to the deployment's default)."""
    unknown = set(values) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown guard settings: {', '.join(sorted(unknown))}")
    if not values:
        return
    assignments = ", ".join(f"{OVERRIDES[name]} = :{name}" for name in sorted(values))
    statement = compile_text(f"UPDATE tenants SET {assignments} WHERE id = :tenant", db.dialect)
    async with db.transaction() as conn:
        await conn.execute(statement, {**values, "tenant": tenant_id})
