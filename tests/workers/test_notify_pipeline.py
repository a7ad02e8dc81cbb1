"""The failure mails of a PaperCut tenant whose print system is down, through the pipeline: its
effects die and a digest goes out; sending them again by hand while PaperCut is still down is
no recovery (no mail, and no second digest); once PaperCut answers and they are applied, one
recovery mail says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from click.testing import CliRunner

from printsync.cli import cli
from storage import clock
from tests.builders import mail_text, print_user
from tests.fakes.papercut import FakePaperCutServer
from tests.fakes.smtp import FakeSmtpServer, smtp_server_fixture  # noqa: F401
from tests.harness import eventually, run
from tests.workers.test_notify import once
from tests.workers.test_pipeline import (  # noqa: F401
    Site,
    papercut_config,
    papercut_server_fixture,
    papercut_token,
    probe,
    settings,
)
from tests.workers.test_pipeline import make_site as make_site


def retry_dead(name: str) -> str:
    result = CliRunner().invoke(cli, ["effects", "retry", "--dead", "--tenant", name])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("papercut_token")
def test_print_system_down_then_back_one_digest_and_one_true_recovery(
    make_site: Callable[..., Site],
    papercut_server: FakePaperCutServer,
    smtp_server: FakeSmtpServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    site = make_site(settings(max_retries=1))
    client, tenant_id = site.tenant(**papercut_config(papercut_server), notify=("it@acme.example",))
    papercut_server.set_outage(503)
    assert client.post("/Users", json=print_user()).status_code == 201
    [dead] = eventually(lambda: site.probe.effects(tenant_id, "dead"))
    now = clock.now()
    first = run(database_url, lambda db: once(db, smtp_server, now))
    assert len(first.created) == 1 and first.created[0].startswith("digest:")

    # Sent again by hand while PaperCut is still down: it dies again.
    assert retry_dead(client.name).startswith("1 effect pending again")
    eventually(
        lambda: [
            effect
            for effect in site.probe.effects(tenant_id, "dead")
            if effect.updated_at > dead.updated_at
        ]
    )
    for seconds in (30, 90, 600):
        later = run(
            database_url, lambda db, s=seconds: once(db, smtp_server, now + timedelta(seconds=s))
        )
        assert later.created == [], seconds
    assert len(smtp_server.messages) == 1
    digest = mail_text(smtp_server.messages[0].message)
    assert f"printsync effects retry --dead --tenant {client.name}" in digest

    # PaperCut answers again; the operator sends the effect once more and it is applied.
    papercut_server.set_outage(None)
    retry_dead(client.name)
    eventually(lambda: "jdoe@example.com" in papercut_server.users)
    eventually(lambda: site.probe.settled(tenant_id) and not site.probe.effects(tenant_id, "dead"))
    healed = run(database_url, lambda db: once(db, smtp_server, now + timedelta(minutes=11)))
    assert len(healed.created) == 1 and healed.created[0].startswith("recovery:")
    subjects = [message.message["Subject"] for message in smtp_server.messages]
    assert subjects == [
        f"printsync: 1 provisioning failure for tenant {client.name}",
        f"printsync: provisioning recovered for tenant {client.name}",
    ]
    assert "no further action is needed" in mail_text(smtp_server.messages[1].message)
