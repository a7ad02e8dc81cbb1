"""Notification e-mails as rows, so that no mail is sent twice for the same reason.

Each notification has a unique ``key`` that says why it exists:

- ``digest:{tenant}:{window}``: the failure digest of a tenant for one digest window (``window``
  is the window's start, e.g. ``2026-01-02T10:00:00Z``); at most one per tenant and window.
- ``recovery:{tenant}:{window}``: the all-clear that follows the digest of that window.
- ``held:{tenant}:{effect}``: revocations held by the deprovisioning guard (``storage.guard``),
  keyed by the oldest of them; one mail per hold.

Creating a row whose key exists does nothing, so a redelivered or repeated job cannot create a
second mail. The rendered message is stored with the row, so a retry sends the same mail (same
Message-ID) even if the facts have changed since. A row goes ``pending`` -> ``sending`` (leased)
-> ``sent``; a transient SMTP failure puts it back to ``pending`` for the next run, a permanent
one marks it ``failed``. A ``sending`` row whose lease ran out (its sender died) is sent again.

``notification_effects`` records which dead effects a digest reported, keyed by the effect and the
time it died: the same failure is never reported twice, while an effect that is retried and dies
again is a new failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from storage import clock, outbox
from storage.database import Database
from storage.sql import Dialect, Statement, compile_text, row_reader

DIGEST: Final = "digest"
RECOVERY: Final = "recovery"
HELD: Final = "held"
KINDS: Final = (DIGEST, RECOVERY, HELD)

PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
FAILED: Final = "failed"
STATES: Final = (PENDING, SENDING, SENT, FAILED)


def window_start(now: datetime, window_seconds: float) -> str:
    """The start of the digest window ``now`` falls in, as ``2026-01-02T10:00:00Z``."""
    seconds = int(now.timestamp() // window_seconds * window_seconds)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest_key(tenant: str, window: str) -> str:
    return f"{DIGEST}:{tenant}:{window}"


def recovery_key(digest: str) -> str:
    """The key of the recovery that follows the digest keyed ``digest``."""
    return RECOVERY + ":" + digest.removeprefix(DIGEST + ":")


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    tenant_id: int
    key: str
    kind: str
    state: str
    recipients: tuple[str, ...]
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "state": self.state,
            "recipients": list(self.recipients),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
        }


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification claimed for sending: the stored message and where it goes."""

    id: int
    tenant_id: int
    key: str
    kind: str
    message: str
    attempts: int


#: What :func:`_notification` reads, in order: the fields of :class:`Notification`.
_INFO = "id, tenant_id, key, kind, state, recipients, attempts, last_error, created_at, sent_at"
_CLAIMABLE = "(state = 'pending' OR (state = 'sending' AND claimed_until < :now))"


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    sql = {
        "insert": (
            "INSERT INTO notifications (tenant_id, key, kind, state, recipients, message,"
            " attempts, created_at, updated_at) VALUES (:tenant, :key, :kind, 'pending',"
            " :recipients, :message, 0, :now, :now) ON CONFLICT (key) DO NOTHING RETURNING id"
        ),
        "cover": (
            "INSERT INTO notification_effects (effect_id, dead_at, notification_id)"
            " VALUES (:effect, :dead_at, :notification)"
            " ON CONFLICT (effect_id, dead_at) DO NOTHING"
        ),
        "uncovered": (
            f"SELECT {outbox.FAILURE_COLUMNS} FROM outbox o"
            " LEFT JOIN users u ON u.id = o.subject_id"
            " LEFT JOIN groups g ON g.id = o.subject_id"
            " WHERE o.tenant_id = :tenant AND o.state = 'dead' AND NOT EXISTS ("
            "SELECT 1 FROM notification_effects c"
            " WHERE c.effect_id = o.id AND c.dead_at = o.updated_at)"
            " ORDER BY o.updated_at, o.id LIMIT :limit"
        ),
        "latest": (
            f"SELECT {_INFO} FROM notifications WHERE tenant_id = :tenant AND kind = :kind"
            " ORDER BY created_at DESC, id DESC LIMIT 1"
        ),
        "first_digest_after": (
            "SELECT min(created_at) FROM notifications WHERE tenant_id = :tenant"
            " AND kind = 'digest' AND created_at > :after"
        ),
        "effect_succeeded_after": (
            "SELECT 1 FROM outbox WHERE tenant_id = :tenant AND state = 'done'"
            " AND completed_at > :after LIMIT 1"
        ),
        "covered": "SELECT count(*) FROM notification_effects WHERE notification_id = :id",
        "recent": (
            f"SELECT {_INFO} FROM notifications WHERE tenant_id = :tenant"
            " ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        "claim": (
            "UPDATE notifications SET state = 'sending', claimed_until = :until,"
            " attempts = attempts + 1, updated_at = :now"
            f" WHERE id IN (SELECT id FROM notifications WHERE {_CLAIMABLE}"
            f" ORDER BY id LIMIT :limit{lock}) AND {_CLAIMABLE}"
            " RETURNING id, tenant_id, key, kind, message, attempts"
        ),
        "sent": (
            "UPDATE notifications SET state = 'sent', sent_at = :now, claimed_until = NULL,"
            " last_error = NULL, updated_at = :now WHERE id = :id AND state = 'sending'"
        ),
        "release": (
            "UPDATE notifications SET state = 'pending', claimed_until = NULL,"
            " last_error = :error, updated_at = :now WHERE id = :id AND state = 'sending'"
        ),
        "failed": (
            "UPDATE notifications SET state = 'failed', claimed_until = NULL,"
            " last_error = :error, updated_at = :now WHERE id = :id AND state = 'sending'"
        ),
    }
    return {name: compile_text(text, dialect) for name, text in sql.items()}


_notification = row_reader(
    Notification, _INFO.split(", "), recipients=lambda recipients: tuple(orjson.loads(recipients))
)


async def uncovered_failures(
    db: Database, tenant_id: int, limit: int = 500
) -> list[outbox.Failure]:
    """The tenant's dead effects that no digest has reported yet, oldest first.

    ``Failure.updated_at`` is when the effect died; pass it back to :func:`create` as the
    coverage key.
    """
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["uncovered"], {"tenant": tenant_id, "limit": limit}
        )
    return [outbox.failure_of(row) for row in rows]


async def create(
    db: Database,
    *,
    tenant_id: int,
    key: str,
    kind: str,
    recipients: Sequence[str],
    message: str,
    covers: Sequence[outbox.Failure] = (),
    now: str | None = None,
) -> int | None:
    """Record a pending notification and the failures it reports, in one transaction.

    Returns its id, or None when a notification with this key already exists (nothing is
    changed then).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        row = await conn.fetchone(
            statements["insert"],
            {
                "tenant": tenant_id,
                "key": key,
                "kind": kind,
                "recipients": orjson.dumps(list(recipients)).decode(),
                "message": message,
                "now": now or clock.stamp(),
            },
        )
        if row is None:
            return None
        notification_id = int(row[0])
        for failure in covers:
            await conn.execute(
                statements["cover"],
                {
                    "effect": failure.id,
                    "dead_at": failure.updated_at,
                    "notification": notification_id,
                },
            )
    return notification_id


async def latest(db: Database, tenant_id: int, kind: str) -> Notification | None:
    """The tenant's most recently created notification of ``kind``."""
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["latest"], {"tenant": tenant_id, "kind": kind}
        )
    return None if row is None else _notification(row)


async def first_digest_after(db: Database, tenant_id: int, after: str) -> str | None:
    """When the first digest created after ``after`` was created (None if there is none)."""
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["first_digest_after"], {"tenant": tenant_id, "after": after}
        )
    return None if row is None else row[0]


async def recovered_since(db: Database, digest: Notification) -> bool:
    """Whether the failures ``digest`` reported are over: an effect of its tenant has succeeded
    since it was created (a digest that reported no dead effect, only failing SCIM requests,
    needs no effect: the health model judges those). Making dead effects pending again
    (``printsync effects retry --dead``) is not a success; only their being applied is."""
    statements = _statements(db.dialect)
    async with db.reader() as conn:
        covered = await conn.fetchone(statements["covered"], {"id": digest.id})
        if covered is None or not covered[0]:
            return True
        row = await conn.fetchone(
            statements["effect_succeeded_after"],
            {"tenant": digest.tenant_id, "after": digest.created_at},
        )
    return row is not None


async def recent(db: Database, tenant_id: int, limit: int = 10) -> list[Notification]:
    """The tenant's latest notifications, newest first."""
    async with db.reader() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["recent"], {"tenant": tenant_id, "limit": limit}
        )
    return [_notification(row) for row in rows]


async def claim(
    db: Database, *, lease_seconds: float, limit: int = 100, now: datetime | None = None
) -> list[Claimed]:
    """Lease pending notifications (and ``sending`` ones whose lease ran out) for sending.

    Each claim counts one attempt. The caller sends, then calls :func:`mark_sent`,
    :func:`release` (try again next run) or :func:`mark_failed`.
    """
    moment = now or clock.now()
    async with db.transaction() as conn:
        rows = await conn.fetchall(
            _statements(db.dialect)["claim"],
            {
                "now": clock.stamp(moment),
                "until": clock.later(lease_seconds, moment),
                "limit": limit,
            },
        )
    claimed = [
        Claimed(
            id=row[0], tenant_id=row[1], key=row[2], kind=row[3], message=row[4], attempts=row[5]
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda item: item.id)


async def _finish(db: Database, name: str, notification_id: int, error: str | None = None) -> bool:
    params: dict[str, Any] = {"id": notification_id, "now": clock.stamp()}
    if name != "sent":
        params["error"] = error
    async with db.transaction() as conn:
        return bool(await conn.execute(_statements(db.dialect)[name], params))


async def mark_sent(db: Database, notification_id: int) -> bool:
    return await _finish(db, "sent", notification_id)


async def release(db: Database, notification_id: int, error: str) -> bool:
    """Back to pending after a transient failure; the next run tries again."""
    return await _finish(db, "release", notification_id, error)


async def mark_failed(db: Database, notification_id: int, error: str) -> bool:
    """A permanent failure (e.g. every recipient refused): not tried again."""
    return await _finish(db, "failed", notification_id, error)


__all__ = [
    "DIGEST",
    "KINDS",
    "RECOVERY",
    "STATES",
    "Claimed",
    "Notification",
    "claim",
    "create",
    "digest_key",
    "first_digest_after",
    "latest",
    "mark_failed",
    "mark_sent",
    "recent",
    "recovered_since",
    "recovery_key",
    "release",
    "uncovered_failures",
    "window_start",
]
