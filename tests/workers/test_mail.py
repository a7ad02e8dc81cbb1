"""Failure digests and the SMTP sender, delivered to the fake SMTP server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.builders import mail_text
from tests.fakes.smtp import FakeSmtpServer, free_port, smtp_server_fixture  # noqa: F401
from workers.errors import AuthenticationError, PermanentError, TransientError
from workers.mail import (
    MAX_LISTED_FAILURES,
    Digest,
    Failure,
    SmtpSender,
    render_digest,
    render_recovery,
)

SENDER = "printsync@example.org"
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def failure(
    subject: str = "jdoe@example.com",
    minutes_ago: int = 10,
    *,
    effect: str = "print-account:ensure",
    error: str = "setUserProperties: PaperCut refused the call (fault 1: invalid email)",
    attempts: int = 9,
    failed_at: datetime | None = None,
) -> Failure:
    return Failure(
        effect=effect,
        subject=subject,
        error=error,
        attempts=attempts,
        failed_at=failed_at or NOW - timedelta(minutes=minutes_ago),
    )


def digest(*failures: Failure, recipients: tuple[str, ...] = ("ops@acme.example",)) -> Digest:
    return Digest(
        tenant="acme",
        recipients=recipients,
        failures=failures or (failure(),),
    )


# Rendering


def test_render_digest_three_failures_subject_counts_failures_and_names_tenant() -> None:
    message = render_digest(
        digest(failure("ann"), failure("bob"), failure("Finance Printers")), now=NOW
    )

    assert message["Subject"] == "printsync: 3 provisioning failures for tenant acme"
    assert message.get_content_type() == "text/plain"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Fri, 14 Mar 2025 09:30:00 +0000"


def test_render_digest_one_failure_subject_is_singular() -> None:
    message = render_digest(digest(failure()), now=NOW)

    assert message["Subject"] == "printsync: 1 provisioning failure for tenant acme"
    assert "1 change to the print system" in mail_text(message)


def test_render_digest_failures_listed_oldest_first_with_details() -> None:
    newer = failure("bob", minutes_ago=5, effect="print-account:revoke", attempts=1)
    older = failure("ann", minutes_ago=60, error="HTTP 503 Service Unavailable")

    text = mail_text(render_digest(digest(newer, older), now=NOW))

    assert text.index('"ann"') < text.index('"bob"')
    assert '1. print-account:ensure for "ann"' in text
    assert "Given up: 2025-03-14 08:30:00 UTC, after 9 attempts" in text
    assert "Error: HTTP 503 Service Unavailable" in text
    assert '2. print-account:revoke for "bob"' in text
    assert "after 1 attempt\n" in text
    assert 'tenant "acme"' in text


def test_render_digest_recipients_become_to_header() -> None:
    message = render_digest(digest(recipients=("ops@acme.example", " it@acme.example ")), now=NOW)

    assert message["To"] == "ops@acme.example, it@acme.example"


def test_render_digest_many_failures_lists_limit_and_counts_rest() -> None:
    failures = tuple(failure(f"user{index}", minutes_ago=index) for index in range(60))

    text = mail_text(render_digest(digest(*failures), now=NOW))

    assert f"{MAX_LISTED_FAILURES}. " in text
    assert f"{MAX_LISTED_FAILURES + 1}. " not in text
    assert f"...and {60 - MAX_LISTED_FAILURES} more not listed here." in text


def test_render_digest_multiline_texts_are_flattened() -> None:
    odd = failure("ann", error="line one\nline two\r\n\tline three")
    tenant = "acme\r\nBcc: victim@example.com"
    message = render_digest(
        Digest(tenant=tenant, recipients=("ops@x.example",), failures=(odd,)), now=NOW
    )

    assert message["Bcc"] is None
    assert message["Subject"] == (
        "printsync: 1 provisioning failure for tenant acme Bcc: victim@example.com"
    )
    assert "Error: line one line two line three" in mail_text(message)


def test_render_digest_naive_and_offset_times_are_shown_in_utc() -> None:
    naive = failure("ann", failed_at=datetime(2025, 3, 14, 8, 0))
    plus_two = timezone(timedelta(hours=2))
    offset = failure("bob", failed_at=datetime(2025, 3, 14, 10, 5, tzinfo=plus_two))

    text = mail_text(render_digest(digest(naive, offset), now=NOW))

    ann, bob = text.split('"ann"')[1].split('"bob"')
    assert "Given up: 2025-03-14 08:00:00 UTC" in ann
    assert "Given up: 2025-03-14 08:05:00 UTC" in bob


def test_render_digest_without_failures_raises_value_error() -> None:
    with pytest.raises(ValueError, match="failure"):
        render_digest(Digest(tenant="acme", recipients=("ops@x.example",), failures=()))


def test_render_digest_without_recipients_raises_value_error() -> None:
    with pytest.raises(ValueError, match="recipient"):
        render_digest(digest(recipients=(" ",)))


def test_render_recovery_names_tenant_and_failing_since() -> None:
    message = render_recovery(
        "acme", ["ops@acme.example"], failing_since=NOW - timedelta(hours=2), now=NOW
    )

    assert message["Subject"] == "printsync: provisioning recovered for tenant acme"
    assert message["To"] == "ops@acme.example"
    text = mail_text(message)
    assert 'tenant "acme" are being applied to the print system again' in text
    assert "since 2025-03-14 07:30:00 UTC" in text


# Sending


def test_send_digest_delivers_to_fake_server(smtp_server: FakeSmtpServer) -> None:
    sender = SmtpSender(smtp_server.url, SENDER, timeout=5.0)

    sender.send(render_digest(digest(failure("ann"), failure("bob")), now=NOW))

    [received] = smtp_server.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ("ops@acme.example",)
    assert received.login is None
    assert received.message["From"] == SENDER
    assert received.message["Subject"] == "printsync: 2 provisioning failures for tenant acme"
    assert received.message["Message-ID"].endswith("@example.org>")
    assert '"ann"' in mail_text(received.message)


def test_send_several_recipients_delivers_one_message_to_all(
    smtp_server: FakeSmtpServer,
) -> None:
    sender = SmtpSender(smtp_server.url, SENDER)
    message = render_recovery("acme", ["a@acme.example", "b@acme.example"], now=NOW)
    message["Bcc"] = "audit@acme.example"

    sender.send(message)

    [received] = smtp_server.messages
    assert set(received.rcpt_tos) == {"a@acme.example", "b@acme.example", "audit@acme.example"}
    assert received.message["Bcc"] is None


def test_send_with_credentials_logs_in(smtp_server: FakeSmtpServer) -> None:
    smtp_server.credentials = ("mailer", "p@ss:word")
    url = f"smtp://mailer:p%40ss%3Aword@127.0.0.1:{smtp_server.port}"

    SmtpSender(url, SENDER).send(render_digest(digest(), now=NOW))

    assert [received.login for received in smtp_server.messages] == ["mailer"]


def test_send_wrong_credentials_raises_authentication_error(
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.credentials = ("mailer", "right")
    url = f"smtp://mailer:wrong@127.0.0.1:{smtp_server.port}"

    with pytest.raises(AuthenticationError, match="535") as caught:
        SmtpSender(url, SENDER).send(render_digest(digest(), now=NOW))

    assert "wrong" not in str(caught.value)
    assert smtp_server.messages == []


def test_send_server_stopped_raises_transient_error(smtp_server: FakeSmtpServer) -> None:
    smtp_server.stop()

    with pytest.raises(TransientError, match="unreachable"):
        SmtpSender(smtp_server.url, SENDER, timeout=2.0).send(render_digest(digest(), now=NOW))


def test_send_after_outage_ends_delivers(smtp_server: FakeSmtpServer) -> None:
    sender = SmtpSender(smtp_server.url, SENDER, timeout=2.0)
    smtp_server.stop()
    with pytest.raises(TransientError):
        sender.send(render_digest(digest(), now=NOW))

    smtp_server.start()
    sender.send(render_digest(digest(), now=NOW))

    assert len(smtp_server.messages) == 1


def test_send_all_recipients_refused_permanently_raises_permanent_error(
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.refuse_recipient("ops@acme.example")

    with pytest.raises(PermanentError, match="550") as caught:
        SmtpSender(smtp_server.url, SENDER).send(render_digest(digest(), now=NOW))

    assert not isinstance(caught.value, AuthenticationError)
    assert smtp_server.messages == []


def test_send_all_recipients_refused_temporarily_raises_transient_error(
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.refuse_recipient("ops@acme.example", "450 4.2.1 Mailbox busy, try later")

    with pytest.raises(TransientError, match="450"):
        SmtpSender(smtp_server.url, SENDER).send(render_digest(digest(), now=NOW))


def test_send_some_recipients_refused_delivers_to_the_others(
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.refuse_recipient("gone@acme.example")
    message = render_digest(digest(recipients=("ops@acme.example", "gone@acme.example")), now=NOW)

    SmtpSender(smtp_server.url, SENDER).send(message)

    [received] = smtp_server.messages
    assert received.rcpt_tos == ("ops@acme.example",)


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [
        ("451 4.3.0 Temporary local problem", TransientError),
        ("554 5.6.0 Message content rejected", PermanentError),
    ],
)
def test_send_data_refused_raises_error_by_reply_class(
    smtp_server: FakeSmtpServer, reply: str, error_class: type[Exception]
) -> None:
    smtp_server.data_reply = reply

    with pytest.raises(error_class, match=reply[:3]) as caught:
        SmtpSender(smtp_server.url, SENDER).send(render_digest(digest(), now=NOW))

    assert type(caught.value) is error_class


def test_send_starttls_unsupported_raises_permanent_error(smtp_server: FakeSmtpServer) -> None:
    url = f"smtp://127.0.0.1:{smtp_server.port}?starttls=true"

    with pytest.raises(PermanentError, match=r"STARTTLS|starttls"):
        SmtpSender(url, SENDER).send(render_digest(digest(), now=NOW))


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections but never greets."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


def test_send_server_never_answers_times_out_as_transient_error(silent_server: int) -> None:
    sender = SmtpSender(f"smtp://127.0.0.1:{silent_server}", SENDER, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        sender.send(render_digest(digest(), now=NOW))

    assert time.monotonic() - started < 2.0


def test_send_message_without_recipients_raises_permanent_error(
    smtp_server: FakeSmtpServer,
) -> None:
    message = render_digest(digest(), now=NOW)
    del message["To"]

    with pytest.raises(PermanentError, match="no recipients"):
        SmtpSender(smtp_server.url, SENDER).send(message)


# Configuration


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", "smtp://mail.example:25"),
        ("smtp://mail.example?starttls=true", "smtp://mail.example:587?starttls=true"),
        ("smtp://mail.example:2525?starttls=false", "smtp://mail.example:2525"),
        ("smtps://user:secret@mail.example", "smtps://mail.example:465"),
    ],
)
def test_smtp_sender_url_defaults_port_and_hides_password(url: str, expected: str) -> None:
    text = repr(SmtpSender(url, SENDER))

    assert f"'{expected}'" in text
    assert "secret" not in text


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp://",
        "smtps://mail.example?starttls=true",
        "smtp://mail.example?tls=yes",
        "smtp://mail.example?starttls=maybe",
    ],
)
def test_smtp_sender_invalid_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"SMTP URL|starttls"):
        SmtpSender(url, SENDER)
