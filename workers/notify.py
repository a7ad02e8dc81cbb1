"""Failure digests and recovery mails, one job run at a time.

Each run (:func:`run_once`) looks at every tenant:

1. It reads the tenant's health (:mod:`storage.health`); the results also feed the
   ``printsync_tenant_health`` gauge through a :class:`storage.health.HealthBoard`.
2. A **digest** is due when the tenant has dead effects that no digest has reported yet, or when
   its health is ``failing``. It is created only if no digest was created in the last
   ``notify_window_seconds`` (``PRINTSYNC_NOTIFY_WINDOW_SECONDS``, default one hour) and the
   tenant has notification recipients. Its key ``digest:{tenant}:{window}`` is unique, and the
   dead effects it lists are recorded as reported in the same transaction, so no failure is
   mailed twice, whatever the number of runs or redeliveries.
3. A **recovery** mail is due when the tenant is ``healthy`` again, its latest digest has no
   recovery yet (key ``recovery:{tenant}:{window of that digest}``) and, when that digest
   reported dead effects, an effect of the tenant has succeeded since it was sent: dead effects
   made pending again by hand while the print system is still down are no recovery. It names
   the effects still dead and the command that sends them again.
4. Every pending notification (of any tenant) is leased and sent over SMTP. A transient failure
   (server unreachable, 4xx) leaves it pending for the next run; a permanent one (5xx, every
   recipient refused) marks it failed.

The worker process runs the job periodically with :func:`notify_loop` (on an asyncio loop) or
:func:`run_blocking` (on a thread of its own); both stop when their stop event is set.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import structlog

from metrics import catalog
from metrics.redaction import clean_error
from storage import clock, health, notifications, outbox, provisioning_log, tenants
from storage.database import Database, open_database
from storage.health import Health, HealthBoard, HealthPolicy
from storage.outbox import Failure as DeadEffect
from storage.provisioning_log import Entry, LogQuery
from storage.tenants import Tenant
from workers import held_mail, mail
from workers.errors import PermanentError, TransientError
from workers.mail import Digest, Failure, render_digest, render_recovery
from workers.settings import NotifySettings

_log = structlog.get_logger(__name__)

#: Failed SCIM requests quoted in a mail about a failing tenant.
MAX_LISTED_REQUESTS = 20


class Sender(Protocol):
    """What delivers a message (``SmtpSender``)."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(slots=True)
class RunReport:
    """What one run did: health per tenant and notification keys by outcome."""

    healths: list[Health] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def run_once(
    db: Database,
    sender: Sender | None,
    *,
    settings: NotifySettings | None = None,
    policy: HealthPolicy | None = None,
    board: HealthBoard | None = None,
    now: datetime | None = None,
) -> RunReport:
    """One pass over all tenants: read health, create due notifications, send pending ones.

    With ``sender`` None only health is read (and published on ``board``).
    """
    settings = settings or NotifySettings()
    policy = policy or HealthPolicy()
    moment = now or clock.now()
    report = RunReport()
    for tenant in await tenants.list_all(db):
        try:
            state = await health.read(db, tenant, policy, moment)
            report.healths.append(state)
            if sender is not None and tenant.notify:
                key = await _plan(db, tenant, state, settings, moment)
                if key is not None:
                    report.created.append(key)
                held = await held_mail.plan(db, tenant, settings, moment)
                if held is not None:
                    report.created.append(held)
        except Exception:
            _log.exception("notify_tenant_failed", tenant=tenant.name)
    if board is not None:
        board.update(report.healths)
    if sender is not None:
        await _deliver(db, sender, settings, moment, report)
    return report


async def _plan(
    db: Database, tenant: Tenant, state: Health, settings: NotifySettings, now: datetime
) -> str | None:
    """Create the digest or recovery the tenant is due, if any; return its key."""
    last_digest = await notifications.latest(db, tenant.id, notifications.DIGEST)
    dead = await notifications.uncovered_failures(db, tenant.id)
    if dead or state.state == health.FAILING:
        window_open = clock.later(-settings.notify_window_seconds, now)
        if last_digest is not None and last_digest.created_at > window_open:
            return None  # one digest per window; these failures wait for the next one
        key = notifications.digest_key(
            tenant.name, notifications.window_start(now, settings.notify_window_seconds)
        )
        requests = (
            await _failed_requests(db, tenant.id, now, state.numbers.window_seconds)
            if state.state == health.FAILING
            else []
        )
        message = compose_digest(tenant, state, dead, requests, settings.mail_from, now)
        return await mail.record(
            db,
            tenant,
            kind=notifications.DIGEST,
            key=key,
            message=message,
            now=now,
            covers=dead,
            effects=len(dead),
            state=state.state,
        )
    if (
        state.state != health.HEALTHY
        or last_digest is None
        or last_digest.state == notifications.FAILED
    ):
        return None
    last_recovery = await notifications.latest(db, tenant.id, notifications.RECOVERY)
    if last_recovery is not None and last_recovery.created_at >= last_digest.created_at:
        return None
    if not await notifications.recovered_since(db, last_digest):
        return None  # healthy by the numbers, but nothing has been applied since the failures
    after = last_recovery.created_at if last_recovery is not None else ""
    first = await notifications.first_digest_after(db, tenant.id, after)
    message = render_recovery(
        tenant.name,
        tenant.notify,
        failing_since=clock.parse(first) if first else None,
        still_dead=await outbox.count_dead(db, tenant.id),
        now=now,
    )
    _stamp_id(message, settings.mail_from)
    key = notifications.recovery_key(last_digest.key)
    return await mail.record(
        db, tenant, kind=notifications.RECOVERY, key=key, message=message, now=now
    )


async def _failed_requests(
    db: Database, tenant_id: int, now: datetime, window_seconds: float
) -> list[Entry]:
    """The tenant's latest failed SCIM requests in the health window, newest first."""
    since = clock.later(-window_seconds, now)
    found: list[Entry] = []
    for result in (provisioning_log.SERVER_ERROR, provisioning_log.CLIENT_ERROR):
        found += await provisioning_log.search(
            db, LogQuery(tenant_id=tenant_id, result=result, since=since, limit=MAX_LISTED_REQUESTS)
        )
    found.sort(key=lambda entry: (entry.time, entry.id or 0), reverse=True)
    return found[:MAX_LISTED_REQUESTS]


def compose_digest(
    tenant: Tenant,
    state: Health,
    dead: Sequence[DeadEffect],
    requests: Sequence[Entry],
    sender: str,
    now: datetime,
) -> EmailMessage:
    """The digest mail: the dead effects (through :func:`workers.mail.render_digest`) and,
    when the tenant is failing, why, with its latest failed SCIM requests."""
    failing = state.state == health.FAILING
    section = _failing_section(tenant.name, state, requests) if failing else []
    if dead:
        message = render_digest(
            Digest(
                tenant=tenant.name,
                recipients=tenant.notify,
                failures=tuple(
                    Failure(
                        effect=item.kind,
                        subject=item.subject,
                        error=clean_error(item.last_error) or "",
                        attempts=item.attempts,
                        failed_at=clock.parse(item.updated_at),
                    )
                    for item in dead
                ),
            ),
            now=now,
        )
        if section:
            body = message.get_content()
            message.set_content("\n".join(section) + "\n\n" + body)
    else:
        message = EmailMessage()
        message["Subject"] = f"printsync: provisioning is failing for tenant {tenant.name}"
        message["To"] = ", ".join(tenant.notify)
        message["Date"] = format_datetime(now)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content("\n".join([*section, *_footer()]) + "\n")
    _stamp_id(message, sender)
    return message


def _failing_section(name: str, state: Health, requests: Sequence[Entry]) -> list[str]:
    lines = [f'Provisioning for tenant "{name}" is failing.', "", state.reason]
    if requests:
        lines += ["", "Latest failed SCIM requests, newest first:"]
        for number, entry in enumerate(requests, start=1):
            target = entry.target_name or entry.target_id
            about = f' for "{target}"' if target else ""
            status = f", HTTP {entry.status}" if entry.status is not None else ""
            when = clock.parse(entry.time).strftime("%Y-%m-%d %H:%M:%S UTC")
            lines += [
                "",
                f"{number}. {entry.operation}{about}",
                f"   At: {when}{status}",
                f"   Error: {entry.error or '(no error text)'}",
            ]
    lines += [
        "",
        "Entra ID quarantines a provisioning job whose requests keep failing; see the",
        f"job's provisioning logs in Entra ID and `printsync log --tenant {name}` for details.",
    ]
    return lines


def _footer() -> list[str]:
    return [
        "",
        "-- ",
        "Sent by printsync. Failures of a tenant are collected and sent together,",
        "at most one mail per digest window.",
    ]


def _stamp_id(message: EmailMessage, sender: str) -> None:
    """A Message-ID fixed when the notification is created, so every retry sends the same one
    and receivers can discard a duplicate delivery."""
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)


async def _deliver(
    db: Database, sender: Sender, settings: NotifySettings, now: datetime, report: RunReport
) -> None:
    claimed = await notifications.claim(db, lease_seconds=settings.notify_lease_seconds, now=now)
    for item in claimed:
        message = email.message_from_string(item.message, policy=email.policy.default)
        try:
            await asyncio.to_thread(sender.send, message)
        except PermanentError as error:
            await notifications.mark_failed(db, item.id, str(error))
            catalog.NOTIFICATIONS.labels(item.kind, "failed").inc()
            report.failed.append(item.key)
            _log.error("notification_failed", kind=item.kind, key=item.key, error=str(error))
            continue
        except Exception as error:  # TransientError, or anything unforeseen: try next run
            text = str(error) if isinstance(error, TransientError) else type(error).__name__
            await notifications.release(db, item.id, text)
            catalog.NOTIFICATIONS.labels(item.kind, "retried").inc()
            report.retried.append(item.key)
            _log.warning(
                "notification_retried",
                kind=item.kind,
                key=item.key,
                error=text,
                attempts=item.attempts,
            )
            continue
        await notifications.mark_sent(db, item.id)
        catalog.NOTIFICATIONS.labels(item.kind, "sent").inc()
        report.sent.append(item.key)
        _log.info("notification_sent", kind=item.kind, key=item.key)


async def notify_loop(
    stop: asyncio.Event,
    settings: NotifySettings,
    db: Database,
    *,
    policy: HealthPolicy | None = None,
    board: HealthBoard | None = None,
    sender: Sender | None = None,
) -> None:
    """Run :func:`run_once` every ``notify_interval_seconds`` until ``stop`` is set.

    Without ``sender`` it sends through ``settings.smtp_url`` (no mail when that is unset).
    """
    mailer = sender if sender is not None else settings.sender()
    if mailer is None:
        _log.warning("notifications_disabled", reason="PRINTSYNC_SMTP_URL is not set")
    while not stop.is_set():
        try:
            await run_once(db, mailer, settings=settings, policy=policy, board=board)
        except Exception:
            _log.exception("notify_run_failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.notify_interval_seconds)
        except TimeoutError:
            continue


def run_blocking(
    stop: threading.Event,
    settings: NotifySettings,
    *,
    database_url: str,
    busy_timeout_ms: int = 5000,
    policy: HealthPolicy | None = None,
    board: HealthBoard | None = None,
) -> None:
    """:func:`notify_loop` for a thread of its own, on a database of its own: runs until
    ``stop`` is set (and sets ``stop`` itself if the loop ends for another reason, such as an
    unreachable database)."""

    async def main() -> None:
        done = asyncio.Event()
        watcher = asyncio.get_running_loop().run_in_executor(None, stop.wait)
        watcher.add_done_callback(lambda _: done.set())
        db = await open_database(database_url, pool_size=2, busy_timeout_ms=busy_timeout_ms)
        try:
            await notify_loop(done, settings, db, policy=policy, board=board)
        finally:
            await db.close()
            stop.set()
            await watcher

    asyncio.run(main())


__all__ = [
    "NotifySettings",
    "RunReport",
    "Sender",
    "compose_digest",
    "notify_loop",
    "run_blocking",
    "run_once",
]
