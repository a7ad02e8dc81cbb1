"""Failure e-mails: digest rendering and an SMTP sender.

Failures are not mailed one by one. The notification logic collects the failed
effects of a tenant into a :class:`Digest` per recipient and window, and
:func:`render_digest` turns it into one plain-text message; once the tenant's
effects succeed again, :func:`render_recovery` says so. Messages name the
affected user (``userName``) or group (``displayName``) and the error text, but
never tokens, PINs or card numbers: the callers fill the fields accordingly and
connector error texts never contain them.

:class:`SmtpSender` delivers with :mod:`smtplib` from a worker thread, with a
timeout. SMTP delivers at least once (a retry after a client-side timeout can
deliver a second copy), so callers keep a unique key per notification. Its
failures are :mod:`workers.errors` classes: unreachable servers, 4xx replies and
dropped connections are transient; 5xx replies, such as every recipient being
refused, are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from storage import clock, notifications
from storage.database import Database
from storage.outbox import Failure as DeadEffect
from storage.tenants import Tenant
from workers.errors import AuthenticationError, DownstreamError, PermanentError, TransientError

__all__ = ["Digest", "Failure", "SmtpSender", "render_digest", "render_recovery"]

_log = structlog.get_logger(__name__)

#: Failures listed in one digest; the rest are counted.
MAX_LISTED_FAILURES = 50
_MAX_ERROR_TEXT = 500
_MAX_HEADER_TEXT = 200
_PERMANENT_REPLY = 500
_TEMPORARY_REPLY = 400
_TEMPORARY_AUTH_FAILURE = 454
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Failure:
    """One effect that has stopped retrying.

    ``effect`` is the effect kind (``print-account:revoke``), ``subject`` the
    user's ``userName`` or the group's ``displayName``, ``error`` the last
    error text, ``attempts`` how often it was tried and ``failed_at`` when it
    was given up (naive datetimes are taken as UTC).
    """

    effect: str
    subject: str
    error: str
    attempts: int
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class Digest:
    """The failures of one tenant to report to ``recipients`` in one mail."""

    tenant: str
    recipients: tuple[str, ...]
    failures: tuple[Failure, ...]


def render_digest(digest: Digest, *, now: datetime | None = None) -> EmailMessage:
    """Render a plain-text mail that lists the digest's failures, oldest first."""
    if not digest.failures:
        raise ValueError("a digest needs at least one failure")
    tenant = _one_line(digest.tenant, _MAX_HEADER_TEXT)
    count = len(digest.failures)
    noun = "failure" if count == 1 else "failures"
    changes = "change" if count == 1 else "changes"
    failures = sorted(digest.failures, key=lambda failure: _as_utc(failure.failed_at))

    lines = [
        f'printsync could not apply {count} {changes} to the print system for tenant "{tenant}".',
        "",
        "They have stopped retrying, usually because the print system refused them",
        "(invalid data, a bad auth token) or stayed unreachable for hours, and they",
        "stay undone until they are sent again. After fixing the cause, send them",
        "through again with",
        "",
        f"    printsync effects retry --dead --tenant {tenant}",
        "",
        "(or from the tenant's page of the admin console). Nothing has to be",
        "resubmitted from Entra ID.",
        "",
        "Failures, oldest first:",
    ]
    for number, failure in enumerate(failures[:MAX_LISTED_FAILURES], start=1):
        attempts = "1 attempt" if failure.attempts == 1 else f"{failure.attempts} attempts"
        lines += [
            "",
            f"{number}. {_one_line(failure.effect, _MAX_HEADER_TEXT)} for "
            f'"{_one_line(failure.subject, _MAX_HEADER_TEXT)}"',
            f"   Given up: {_format_time(failure.failed_at)}, after {attempts}",
            f"   Error: {_one_line(failure.error, _MAX_ERROR_TEXT) or '(no error text)'}",
        ]
    if count > MAX_LISTED_FAILURES:
        lines += ["", f"...and {count - MAX_LISTED_FAILURES} more not listed here."]
    lines += _footer()
    return _message(
        subject=f"printsync: {count} provisioning {noun} for tenant {tenant}",
        recipients=digest.recipients,
        body="\n".join(lines),
        now=now,
    )


def render_recovery(
    tenant: str,
    recipients: Sequence[str],
    *,
    failing_since: datetime | None = None,
    still_dead: int = 0,
    now: datetime | None = None,
) -> EmailMessage:
    """Render the mail that says a tenant's changes are applied again; ``still_dead`` counts
    the changes that gave up and have not been sent again (they are named with the command that
    sends them)."""
    name = _one_line(tenant, _MAX_HEADER_TEXT)
    lines = [f'Changes for tenant "{name}" are being applied to the print system again.']
    if failing_since is not None:
        lines += ["", f"Failures had been reported since {_format_time(failing_since)}."]
    if still_dead:
        changes = "change that" if still_dead == 1 else "changes that"
        lines += [
            "",
            f"{still_dead} {changes} gave up earlier are still undone; send them",
            "through again with",
            "",
            f"    printsync effects retry --dead --tenant {name}",
        ]
    else:
        lines += ["", "No change is waiting after a failure; no further action is needed."]
    lines += _footer()
    return _message(
        subject=f"printsync: provisioning recovered for tenant {name}",
        recipients=tuple(recipients),
        body="\n".join(lines),
        now=now,
    )


class SmtpSender:
    """Sends messages through one SMTP server.

    ``smtp_url`` is ``smtp://host[:port]`` (port 25, or 587 with STARTTLS) or
    ``smtps://host[:port]`` (implicit TLS, port 465), optionally with
    ``user:password@`` before the host (percent-encoded) and
    ``?starttls=true`` on ``smtp://``. ``sender`` is the envelope sender and
    the ``From`` header of messages that have none.
    """

    def __init__(
        self,
        smtp_url: str,
        sender: str,
        timeout: float = 10.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("the SMTP URL must be smtp://host[:port] or smtps://host[:port]")
        starttls = False
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key != "starttls" or value.lower() not in _TRUE | _FALSE:
                raise ValueError("the SMTP URL accepts only ?starttls=true or ?starttls=false")
            starttls = value.lower() in _TRUE
        if starttls and parts.scheme == "smtps":
            raise ValueError("starttls does not apply to smtps://, which is TLS from the start")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if not sender or "@" not in sender:
            raise ValueError("the sender must be an e-mail address")
        self._implicit_tls = parts.scheme == "smtps"
        self._starttls = starttls
        self._host = parts.hostname
        default_port = 465 if self._implicit_tls else 587 if starttls else 25
        self._port = parts.port or default_port
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self._sender = sender
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname

    @property
    def sender(self) -> str:
        return self._sender

    def __repr__(self) -> str:
        scheme = "smtps" if self._implicit_tls else "smtp"
        tls = "?starttls=true" if self._starttls else ""
        return f"SmtpSender('{scheme}://{self._host}:{self._port}{tls}', sender={self._sender!r})"

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to its To, Cc and Bcc recipients.

        Sets ``From`` and ``Message-ID`` when missing. Recipients refused while
        others were accepted are logged, not raised: the message went out, and
        sending it again would duplicate it for the others.
        """
        recipients = [
            address
            for _, address in getaddresses(
                [
                    str(value)
                    for header in ("To", "Cc", "Bcc")
                    for value in message.get_all(header, [])
                ]
            )
            if address
        ]
        if not recipients:
            raise PermanentError("the message has no recipients", operation="send_mail")
        if message["From"] is None:
            message["From"] = self._sender
        if message["Message-ID"] is None:
            message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2])
        try:
            refused = self._deliver(message)
        except OSError as exc:  # smtplib's and ssl's errors too
            kind, detail = _failure(exc)
            raise kind(detail, operation="send_mail") from None
        if refused:
            _log.warning(
                "mail_recipients_refused",
                refused=len(refused),
                accepted=len(set(recipients)) - len(refused),
            )

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        context = self._ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if self._implicit_tls:
            client = smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
            )
        with client:
            if self._starttls:
                client.starttls(context=context)
            if self._username is not None:
                client.login(self._username, self._password)
            return client.send_message(message, from_addr=self._sender)


def _message(
    *, subject: str, recipients: Sequence[str], body: str, now: datetime | None
) -> EmailMessage:
    addresses = [address.strip() for address in recipients if address.strip()]
    if not addresses:
        raise ValueError("a notification needs at least one recipient")
    message = EmailMessage()
    message["Subject"] = subject
    message["To"] = ", ".join(addresses)
    message["Date"] = format_datetime(_as_utc(now or datetime.now(UTC)))
    # RFC 3834: keeps vacation responders and ticket systems from answering.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body + "\n")
    return message


def _footer() -> list[str]:
    return [
        "",
        "-- ",
        "Sent by printsync. Failures of a tenant are collected and sent together,",
        "at most one mail per recipient and digest window.",
    ]


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _format_time(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _failure(exc: OSError) -> tuple[type[DownstreamError], str]:
    """What a failed delivery means for the effect (retry or give up), and the words for it."""
    text = _one_line(str(exc), _MAX_ERROR_TEXT)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        temporary = any(_TEMPORARY_REPLY <= code < _PERMANENT_REPLY for code in codes)
        replies = "; ".join(
            f"{code} {_reply_text(reply)}" for code, reply in exc.recipients.values()
        )
        detail = f"all {len(codes)} recipients refused ({replies})"
        return (TransientError if temporary else PermanentError), detail
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        if exc.smtp_code == _TEMPORARY_AUTH_FAILURE:
            return TransientError, _reply(exc)
        return AuthenticationError, f"SMTP login rejected ({_reply(exc)})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError, f"SMTP server closed the connection ({text})"
    if isinstance(exc, smtplib.SMTPResponseException):
        temporary = exc.smtp_code < _PERMANENT_REPLY
        return (TransientError if temporary else PermanentError), _reply(exc)
    if isinstance(exc, smtplib.SMTPException):
        # Not supported extensions (STARTTLS, AUTH) and other refusals without a reply code.
        return PermanentError, f"SMTP failed ({type(exc).__name__}: {text})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError, f"TLS certificate rejected ({text})"
    return TransientError, f"SMTP server unreachable ({type(exc).__name__}: {text})"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        return flat[: limit - 3] + "..."
    return flat


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return _one_line(text, _MAX_ERROR_TEXT)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"SMTP {exc.smtp_code} {_reply_text(exc.smtp_error)}"


async def record(
    db: Database,
    tenant: Tenant,
    *,
    kind: str,
    key: str,
    message: EmailMessage,
    now: datetime,
    covers: Sequence[DeadEffect] = (),
    **about: object,
) -> str | None:
    """Queue ``message`` for the tenant's notification addresses under ``key`` (once: None if
    a mail with that key exists already), logging what was queued and ``about`` it."""
    created = await notifications.create(
        db,
        tenant_id=tenant.id,
        key=key,
        kind=kind,
        recipients=tenant.notify,
        message=message.as_string(),
        covers=covers,
        now=clock.stamp(now),
    )
    if created is None:
        return None
    _log.info("notification_created", kind=kind, tenant=tenant.name, **about)
    return key
