"""The mail that says the deprovisioning guard holds revocations of print access.

The notification job (:mod:`workers.notify`) calls :func:`plan` for every tenant with
recipients: while the tenant has held effects, one mail says how many, why, and how to release
them. Its key (``held:{tenant}:{oldest held effect}``) makes it one mail per hold, whatever the
number of runs; effects held after an approval make a new hold, and a new mail.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog

from storage import guard, notifications
from storage.database import Database
from storage.guard import GuardStatus
from storage.tenants import Tenant
from workers import mail
from workers.settings import NotifySettings

_log = structlog.get_logger(__name__)


def compose(tenant: Tenant, state: GuardStatus, sender: str, now: datetime) -> EmailMessage:
    """The mail about ``state.held`` held effects of ``tenant``."""
    name = tenant.name
    noun = "revocation or deletion" if state.held == 1 else "revocations and deletions"
    since = state.window_started_at
    window = f" since {since[:19].replace('T', ' ')} UTC" if since else ""
    policy = state.policy
    lines = [
        f'printsync is holding {state.held} {noun} of print access for tenant "{name}".',
        "",
        f"Entra ID disabled or deleted more users{window} than the deprovisioning guard lets",
        f"through at once: more than {state.threshold}, the larger of {policy.min} and",
        f"{policy.percent} % of the tenant's enabled users, within {policy.window_seconds} s.",
        "A scoping mistake in Entra (a group taken off the app, a changed scoping filter) looks",
        "like this. The changes are recorded and Entra was answered as usual, but these users",
        "keep their print access until you decide.",
        "",
        "To see them:",
        f"  printsync effects list --tenant {name} --state held",
        "If they are intended, release them (all, or some by ID):",
        f"  printsync effects approve --tenant {name} [ID ...]",
        "If they are a mistake, fix the scope in Entra ID: users it enables again are dropped",
        "from the held list by themselves. The admin console, where it is on, lists them on",
        "the tenant's effects page with an approve button.",
        "",
        "-- ",
        "Sent by printsync, once per hold.",
    ]
    message = EmailMessage()
    message["Subject"] = f"printsync: {state.held} {noun} of print access held for tenant {name}"
    message["To"] = ", ".join(tenant.notify)
    message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content("\n".join(lines) + "\n")
    return message


async def plan(db: Database, tenant: Tenant, settings: NotifySettings, now: datetime) -> str | None:
    """Create the mail about the tenant's held effects if it is due; return its key."""
    state = await guard.status(db, tenant.id, settings.guard)
    if not state.held or state.first_held is None:
        return None
    key = f"{notifications.HELD}:{tenant.name}:{state.first_held}"
    message = compose(tenant, state, settings.mail_from, now)
    return await mail.record(
        db, tenant, kind=notifications.HELD, key=key, message=message, now=now, held=state.held
    )
