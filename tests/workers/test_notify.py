"""Failure digests and recovery mails, delivered to a real (aiosmtpd) SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from printsync.cli import cli
from storage import clock, notifications, outbox, provisioning_log, tenants
from storage.database import Database, in_transaction
from storage.health import HealthBoard
from storage.tenants import Tenant
from tests.builders import mail_text
from tests.fakes.smtp import FakeSmtpServer, smtp_server_fixture  # noqa: F401
from tests.harness import run
from tests.support_a import record_effects
from workers.mail import SmtpSender
from workers.notify import NotifySettings, RunReport, notify_loop, run_once

T = TypeVar("T")
SENDER = "printsync@example.org"
RECIPIENTS = ("ops@acme.example", "it@acme.example")
SETTINGS = NotifySettings(notify_window_seconds=3600, mail_from=SENDER)
REFUSED = "PaperCut refused the call (invalid email)"


def sender_for(server: FakeSmtpServer) -> SmtpSender:
    return SmtpSender(server.url, SENDER, timeout=5, local_hostname="printsync.test")


async def dead_effects(
    db: Database,
    tenant: Tenant,
    *names: str,
    error: str = REFUSED,
) -> None:
    """Record one account.delete effect per userName and let it die."""
    for name in names:
        payload = {"userName": name, "groups": []}
        await record_effects(db, tenant.id, outbox.ACCOUNT_DELETE, f"id-{name}", payload=payload)
    for effect in await outbox.list_effects(db, tenant.id, state=outbox.PENDING):
        await in_transaction(db, outbox.give_up, effect.id, error=error)


async def acme_with_dead_effects(db: Database, *names: str, error: str = REFUSED) -> Tenant:
    """The tenant acme, notifying ``RECIPIENTS``, with a dead effect for each userName."""
    acme, _ = await tenants.create(db, "acme", connector="ledger", notify=RECIPIENTS)
    await dead_effects(db, acme, *names, error=error)
    return acme


async def once(
    db: Database, server: FakeSmtpServer, now: datetime, board: HealthBoard | None = None
) -> RunReport:
    return await run_once(db, sender_for(server), settings=SETTINGS, now=now, board=board)


def test_run_once_dead_effects_send_one_digest_to_tenant_recipients(
    database_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> tuple[RunReport, RunReport, RunReport]:
        await acme_with_dead_effects(db, "ada@acme.com", "bob@acme.com")
        await tenants.create(db, "globex", connector="ledger", notify=("ops@globex.example",))
        now = clock.now()
        first = await once(db, smtp_server, now)
        again = await once(db, smtp_server, now + timedelta(seconds=30))
        redelivered = await once(db, smtp_server, now + timedelta(minutes=5))
        return first, again, redelivered

    first, again, redelivered = run(database_url, work)
    assert len(first.created) == 1 and first.created[0].startswith("digest:acme:")
    assert first.sent == first.created
    assert again.created == again.sent == redelivered.created == redelivered.sent == []
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.mail_from == SENDER
    assert sorted(received.rcpt_tos) == sorted(RECIPIENTS)
    message = received.message
    assert message["Subject"] == "printsync: 2 provisioning failures for tenant acme"
    assert message["Auto-Submitted"] == "auto-generated"
    text = mail_text(message)
    assert '"ada@acme.com"' in text and '"bob@acme.com"' in text
    assert "account.delete" in text
    assert "PaperCut refused the call (invalid email)" in text


def test_run_once_smtp_down_then_up_delivers_digest_once(
    sqlite_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> tuple[RunReport, RunReport, RunReport]:
        await acme_with_dead_effects(db, "ada@acme.com")
        now = clock.now()
        smtp_server.stop()
        down = await once(db, smtp_server, now)
        smtp_server.start()
        up = await once(db, smtp_server, now + timedelta(minutes=1))
        after = await once(db, smtp_server, now + timedelta(minutes=2))
        return down, up, after

    down, up, after = run(sqlite_url, work)
    assert len(down.created) == 1
    assert down.retried == down.created and down.sent == []
    assert up.created == [] and up.sent == down.created
    assert after.sent == [] and after.retried == []
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0].message["Subject"] == (
        "printsync: 1 provisioning failure for tenant acme"
    )


def test_run_once_same_message_id_on_retry(sqlite_url: str, smtp_server: FakeSmtpServer) -> None:
    async def work(db: Database) -> list[notifications.Notification]:
        acme = await acme_with_dead_effects(db, "ada@acme.com")
        now = clock.now()
        smtp_server.data_reply = "451 4.3.0 try again later"
        await once(db, smtp_server, now)
        smtp_server.data_reply = None
        await once(db, smtp_server, now + timedelta(minutes=1))
        return await notifications.recent(db, acme.id)

    mails = run(sqlite_url, work)
    assert [(mail.kind, mail.state, mail.attempts) for mail in mails] == [("digest", "sent", 2)]
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0].message["Message-ID"].endswith("@example.org>")


def hour_boundary_after_next() -> datetime:
    hour = 3600
    return datetime.fromtimestamp((clock.now().timestamp() // hour + 2) * hour, tz=UTC)


@pytest.mark.parametrize(
    ("start", "minutes"),
    [
        pytest.param(clock.now, (0, 10, 61), id="within-the-hour"),
        # Still one digest per window length when the clock hour turns in between.
        pytest.param(hour_boundary_after_next, (-1, 1, 60), id="across-window-boundary"),
    ],
)
def test_run_once_new_failures_wait_for_next_window_and_old_ones_are_not_repeated(
    sqlite_url: str,
    smtp_server: FakeSmtpServer,
    start: Callable[[], datetime],
    minutes: tuple[int, int, int],
) -> None:
    """A digest, a new failure, a run within the window length of that digest (nothing sent)
    and one after it (a digest of the new failure only), at ``minutes`` from ``start()``."""

    async def work(db: Database) -> tuple[RunReport, RunReport, RunReport]:
        acme = await acme_with_dead_effects(db, "ada@acme.com")
        moment = start()
        first_at, same_window_at, next_window_at = (
            moment + timedelta(minutes=offset) for offset in minutes
        )
        first = await once(db, smtp_server, first_at)
        await dead_effects(db, acme, "carol@acme.com")
        same_window = await once(db, smtp_server, same_window_at)
        next_window = await once(db, smtp_server, next_window_at)
        return first, same_window, next_window

    first, same_window, next_window = run(sqlite_url, work)
    assert len(first.sent) == 1
    assert same_window.created == []
    assert len(next_window.sent) == 1 and next_window.sent != first.sent
    assert len(smtp_server.messages) == 2
    second = mail_text(smtp_server.messages[1].message)
    assert '"carol@acme.com"' in second
    assert "ada@acme.com" not in second


def retry_dead_by_hand(database_url: str, tenant: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``printsync effects retry --dead --tenant T``, as an operator runs it."""
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["effects", "retry", "--dead", "--tenant", tenant])
    assert result.exit_code == 0, result.output
    return result.output


async def apply_pending(db: Database, tenant: Tenant, error: str | None = None) -> None:
    """The worker's attempt at every pending effect: applied, or (with ``error``) dead again."""
    for effect in await outbox.list_effects(db, tenant.id, state=outbox.PENDING):
        if error is None:
            await in_transaction(db, outbox.complete, effect.id)
        else:
            await in_transaction(db, outbox.give_up, effect.id, error=error)


def test_run_once_tenant_heals_sends_one_recovery_mail(
    database_url: str, smtp_server: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock.now()

    async def fail(db: Database) -> RunReport:
        await acme_with_dead_effects(db, "ada@acme.com", "bob@acme.com")
        await once(db, smtp_server, now)
        return await once(db, smtp_server, now + timedelta(minutes=30))

    still_degraded = run(database_url, fail)
    retry_dead_by_hand(database_url, "acme", monkeypatch)

    async def heal(db: Database) -> tuple[RunReport, RunReport, RunReport]:
        acme = await tenants.get(db, "acme")
        quiet = await once(db, smtp_server, now + timedelta(minutes=31))
        await apply_pending(db, acme)  # the print system is back
        healed = await once(db, smtp_server, now + timedelta(minutes=90))
        later = await once(db, smtp_server, now + timedelta(minutes=200))
        return quiet, healed, later

    quiet, healed, later = run(database_url, heal)
    assert still_degraded.healths[0].state == "degraded"
    assert still_degraded.created == []
    assert quiet.created == []  # pending again is not applied yet
    assert healed.healths[0].state == "healthy"
    assert len(healed.created) == 1 and healed.created[0].startswith("recovery:acme:")
    assert healed.sent == healed.created
    assert later.created == later.sent == []
    assert [m.message["Subject"] for m in smtp_server.messages] == [
        "printsync: 2 provisioning failures for tenant acme",
        "printsync: provisioning recovered for tenant acme",
    ]
    recovery = smtp_server.messages[1]
    assert sorted(recovery.rcpt_tos) == sorted(RECIPIENTS)
    text = mail_text(recovery.message)
    assert "Failures had been reported since" in text
    assert "No change is waiting after a failure; no further action is needed." in text


def test_retry_dead_while_print_system_is_down_sends_no_recovery_and_no_second_digest(
    database_url: str, smtp_server: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock.now()
    down = "connection refused: PaperCut is not answering"

    async def fail(db: Database) -> RunReport:
        await acme_with_dead_effects(db, "ada@acme.com", error=down)
        return await once(db, smtp_server, now)

    first = run(database_url, fail)
    assert len(first.created) == 1 and first.created[0].startswith("digest:acme:")
    said = retry_dead_by_hand(database_url, "acme", monkeypatch)
    assert said.startswith("1 effect pending again: a running `printsync serve`")
    assert "PRINTSYNC_SWEEP_INTERVAL_SECONDS" in said

    async def still_down(db: Database) -> list[RunReport]:
        acme = await tenants.get(db, "acme")
        reports = [await once(db, smtp_server, now + timedelta(seconds=30))]
        await apply_pending(db, acme, error=down)  # dies again
        for minutes in (1, 5, 30, 59):
            reports.append(await once(db, smtp_server, now + timedelta(minutes=minutes)))
        return reports

    reports = run(database_url, still_down)
    assert [report.created for report in reports] == [[]] * len(reports)
    assert [m.message["Subject"] for m in smtp_server.messages] == [
        "printsync: 1 provisioning failure for tenant acme"
    ]
    digest = mail_text(smtp_server.messages[0].message)
    assert "printsync effects retry --dead --tenant acme" in digest
    assert "reconciliation" not in digest

    # Once applied, the recovery names what is still dead and the command that sends it again.
    async def partly_healed(db: Database) -> RunReport:
        acme = await tenants.get(db, "acme")
        await dead_effects(db, acme, "bob@acme.com", error="invalid email")
        cyd = {"userName": "cyd@acme.com"}
        await record_effects(db, acme.id, outbox.ACCOUNT_SYNC, "id-cyd", payload=cyd)
        await once(db, smtp_server, now + timedelta(minutes=61))  # the second digest (bob)
        monkeypatch.setattr(clock, "now", lambda: now + timedelta(minutes=62))
        await apply_pending(db, acme)  # cyd's change is applied after that digest
        return await once(db, smtp_server, now + timedelta(minutes=200))

    healed = run(database_url, partly_healed)
    assert len(healed.created) == 1 and healed.created[0].startswith("recovery:acme:")
    recovery = mail_text(smtp_server.messages[-1].message)
    assert "2 changes that gave up earlier are still undone" in recovery
    assert "printsync effects retry --dead --tenant acme" in recovery
    assert "no further action" not in recovery


def test_run_once_failing_requests_send_digest_with_reason_and_requests(
    sqlite_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> RunReport:
        acme, _ = await tenants.create(db, "acme", connector="ledger", notify=RECIPIENTS)
        now = clock.now()
        stamp = clock.stamp(now - timedelta(minutes=5))
        await provisioning_log.write(
            db,
            [
                provisioning_log.entry(
                    acme.id,
                    "POST /Users",
                    "client_error",
                    source="scim",
                    target_name=f"user{n}@acme.com",
                    status=409,
                    error="userName is already taken",
                    time=stamp,
                )
                for n in range(12)
            ],
        )
        board = HealthBoard()
        report = await once(db, smtp_server, now, board)
        assert [row.state for row in board.rows()] == ["failing"]
        return report

    report = run(sqlite_url, work)
    assert len(report.sent) == 1
    message = smtp_server.messages[0].message
    assert message["Subject"] == "printsync: provisioning is failing for tenant acme"
    text = mail_text(message)
    assert "100% of SCIM requests in the last hour failed (12 of 12; 0 server errors)." in text
    assert 'POST /Users for "user0@acme.com"' in text
    assert "HTTP 409" in text and "userName is already taken" in text


def test_run_once_failing_with_dead_effects_lists_both(
    sqlite_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> RunReport:
        await acme_with_dead_effects(db, *(f"u{n}@acme.com" for n in range(6)))
        return await once(db, smtp_server, clock.now())

    report = run(sqlite_url, work)
    assert report.healths[0].state == "failing"
    text = mail_text(smtp_server.messages[0].message)
    assert text.startswith('Provisioning for tenant "acme" is failing.')
    assert "100% of effects in the last hour failed (6 of 6" in text
    assert '"u5@acme.com"' in text


def test_run_once_without_recipients_or_sender_sends_nothing(
    sqlite_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> tuple[RunReport, RunReport]:
        quiet, _ = await tenants.create(db, "quiet", connector="ledger")
        await dead_effects(db, quiet, "ada@quiet.com")
        await acme_with_dead_effects(db, "ada@acme.com")
        without_sender = await run_once(db, None, settings=SETTINGS)
        with_sender = await once(db, smtp_server, clock.now())
        return without_sender, with_sender

    without_sender, with_sender = run(sqlite_url, work)
    assert without_sender.created == [] and len(without_sender.healths) == 2
    assert [key.split(":")[1] for key in with_sender.created] == ["acme"]
    assert len(smtp_server.messages) == 1


def test_run_once_recipients_refused_marks_failed_and_stops(
    sqlite_url: str, smtp_server: FakeSmtpServer
) -> None:
    async def work(db: Database) -> tuple[RunReport, RunReport, list[notifications.Notification]]:
        acme = await acme_with_dead_effects(db, "ada@acme.com")
        for address in RECIPIENTS:
            smtp_server.refuse_recipient(address)
        now = clock.now()
        first = await once(db, smtp_server, now)
        second = await once(db, smtp_server, now + timedelta(minutes=1))
        return first, second, await notifications.recent(db, acme.id)

    first, second, mails = run(sqlite_url, work)
    assert first.failed == first.created and len(first.failed) == 1
    assert second.failed == second.retried == second.sent == []
    assert mails[0].state == "failed"
    assert mails[0].last_error is not None and "recipients refused" in mails[0].last_error
    assert smtp_server.messages == []


def test_notify_loop_sends_then_stops(sqlite_url: str, smtp_server: FakeSmtpServer) -> None:
    async def work(db: Database) -> None:
        await acme_with_dead_effects(db, "ada@acme.com")
        stop = asyncio.Event()
        settings = NotifySettings(notify_interval_seconds=0.05, mail_from=SENDER)
        task = asyncio.create_task(notify_loop(stop, settings, db, sender=sender_for(smtp_server)))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if smtp_server.messages:
                break
        await asyncio.sleep(0.15)  # a few more runs: still one mail
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    run(sqlite_url, work)
    assert len(smtp_server.messages) == 1


def test_settings_sender_needs_smtp_url() -> None:
    assert NotifySettings(smtp_url=None).sender() is None
    configured = NotifySettings(smtp_url=SecretStr("smtp://127.0.0.1:2525"), mail_from=SENDER)
    sender = configured.sender()
    assert sender is not None and sender.sender == SENDER
