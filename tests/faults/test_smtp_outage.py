"""The SMTP server is down when a failure digest falls due.

Effects that fail permanently go dead, and the worker's notification job creates the tenant's
digest (one row with a unique key, its message rendered once). Sending it fails while the server
refuses connections, and again while it answers with a temporary 4xx; each failure leaves the row
pending for the next run. When the server takes mail again the digest is delivered once, and
later runs send nothing more.
"""

from __future__ import annotations

import time

import pytest

from storage import notifications, outbox
from tests.fakes.papercut import FakePaperCutServer
from tests.fakes.smtp import FakeSmtpServer
from tests.faults.conftest import (
    ACTIVE,
    OUTAGE_SECONDS,
    PrivateRedis,
    Probe,
    ScimLoad,
    assert_api_answered,
    fault_env,
    start_worker,
)
from tests.harness import Start, eventually, start_api

RECIPIENT = "it-admin@acme.example"
MISSING_TOKEN_ENV = "TEST_FAULTS_UNSET_PAPERCUT_TOKEN"


@pytest.mark.slow
def test_notify_smtp_down_when_digest_due_delivers_it_once_after_recovery(
    private_redis: PrivateRedis,
    postgres_url: str,
    processes: Start,
    papercut_server: FakePaperCutServer,
    smtp_server: FakeSmtpServer,
) -> None:
    probe = Probe(postgres_url)
    # The tenant's PaperCut token variable is unset: each effect fails permanently.
    ref = probe.tenant(
        "papercut", papercut=papercut_server, notify=(RECIPIENT,), token_env=MISSING_TOKEN_ENV
    )
    smtp_server.stop()
    env = fault_env(
        postgres_url,
        PRINTSYNC_BROKER_URL=private_redis.url,
        PRINTSYNC_SMTP_URL=smtp_server.url,
        PRINTSYNC_MAIL_FROM="printsync@acme.example",
    )
    env.pop(MISSING_TOKEN_ENV, None)
    _, base = start_api(processes, env)
    first = start_worker(processes, env, sweeper=False)  # applies effects, sends no mail
    load = ScimLoad(base, [ref])
    plans = [load.run_one(ref, ACTIVE) for _ in range(3)]
    assert_api_answered(load)
    dead = eventually(
        lambda: len(probe.effects(ref.id, outbox.DEAD)) == 2 * len(plans), describe=first.output
    )
    assert dead

    mailer = start_worker(processes, env)  # its sweeper process runs the notification job
    refused = eventually(
        lambda: digest_row(probe, ref.id, min_attempts=2), timeout=30, describe=mailer.output
    )
    assert refused.state != notifications.SENT and refused.last_error  # connection refused
    time.sleep(max(0.0, OUTAGE_SECONDS - 2.0))

    smtp_server.data_reply = "451 4.3.0 Mail system temporarily unavailable"
    smtp_server.start()
    deferred = eventually(lambda: deferred_row(probe, ref.id), timeout=30, describe=mailer.output)
    deferred = eventually(
        lambda: deferred_row(probe, ref.id, deferred.attempts + 1),
        timeout=30,
        describe=mailer.output,
    )  # and deferred again on the next run
    assert smtp_server.messages == []
    smtp_server.data_reply = None

    eventually(lambda: smtp_server.messages, timeout=30, describe=mailer.output)
    time.sleep(2.0)  # several more runs of the notification job

    [received] = smtp_server.messages
    assert received.rcpt_tos == (RECIPIENT,)
    text = received.message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert all(plan.user_name in content for plan in plans)
    [sent] = probe.store.run(notifications.recent, ref.id, 10)
    assert (sent.kind, sent.key, sent.state) == (
        notifications.DIGEST,
        refused.key,
        notifications.SENT,
    )
    assert sent.attempts > deferred.attempts
    assert first.popen.poll() is None and mailer.popen.poll() is None
    probe.close()


def digest_row(
    probe: Probe,
    tenant_id: int,
    *,
    min_attempts: int,
) -> notifications.Notification | None:
    rows = [
        row
        for row in probe.store.run(notifications.recent, tenant_id, 10)
        if row.kind == notifications.DIGEST and row.attempts >= min_attempts
    ]
    return rows[0] if rows else None


def deferred_row(
    probe: Probe,
    tenant_id: int,
    min_attempts: int = 0,
) -> notifications.Notification | None:
    """The digest, once a send was answered with the temporary 451 and it is pending again."""
    row = digest_row(probe, tenant_id, min_attempts=min_attempts)
    if row is None or row.state != notifications.PENDING or "451" not in (row.last_error or ""):
        return None
    return row
