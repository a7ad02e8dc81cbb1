"""The deprovisioning guard and Entra's cycles, end to end: SCIM requests over HTTP, the effects
pipeline into the ledger, and the ``printsync`` commands an operator runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from printsync.cli import cli
from storage import guard, outbox, tenants
from tests.builders import print_user as user_body
from tests.conftest import TenantClient
from tests.fakes.smtp import FakeSmtpServer, free_port, smtp_server_fixture  # noqa: F401
from tests.harness import eventually
from tests.workers.test_operations import scrape_worker, value
from tests.workers.test_pipeline import Site, set_active, settings
from tests.workers.test_pipeline import make_site as make_site
from tests.workers.test_pipeline import probe as probe
from workers import operations
from workers.mail import SmtpSender
from workers.notify import NotifySettings, RunReport, run_once


def invoke(args: list[str]) -> Result:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def json_of(result: Result) -> Any:
    """The JSON a command printed (the in-process pipeline may log on the same stream)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    if lines[start] in ("{", "["):
        end = lines.index("}" if lines[start] == "{" else "]", start)
        return orjson.loads("\n".join(lines[start : end + 1]))
    return orjson.loads(lines[start])


def create_tenant(site: Site, monkeypatch: pytest.MonkeyPatch, *options: str) -> tuple[Any, int]:
    """A tenant made with ``printsync tenant create`` (and ``options``): its client and id."""
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", site.url)
    name = "contoso-guard"
    made = json_of(invoke(["tenant", "create", name, *options, "--json"]))
    tenant = site.probe.store.run(tenants.get, name)
    return TenantClient(site.http, name, made["token"]), tenant.id


def enabled_accounts(site: Site, tenant_id: int) -> int:
    return sum(1 for account in site.probe.accounts(tenant_id).values() if account.enabled)


def test_a_mass_disable_beyond_the_guard_is_held_until_approved(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "GAUGE_REFRESH_SECONDS", 0.1)
    port = free_port()
    site = make_site(settings(worker_metrics_port=port))
    client, tenant_id = create_tenant(
        site, monkeypatch, "--guard-min", "5", "--guard-percent", "25"
    )
    ids = []
    for number in range(40):
        body = user_body(f"user{number:02d}@contoso.com", card=f"{700000 + number}")
        created = client.post("/Users", json=body)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    site.wait_settled(tenant_id)
    assert enabled_accounts(site, tenant_id) == 40

    # A scoping mistake: twenty users disabled in one burst. Entra gets its normal answers.
    for user_id in ids[:20]:
        assert client.patch(f"/Users/{user_id}", json=set_active(False)).status_code == 200
    site.wait_settled(tenant_id)
    held = site.probe.effects(tenant_id, outbox.HELD)
    # max(5, 25 % of 40 enabled) = 10 lose access; the ten beyond are held.
    assert enabled_accounts(site, tenant_id) == 30
    assert len(held) == 10 and {effect.kind for effect in held} == {outbox.ACCOUNT_SYNC}
    assert {effect.subject_id for effect in held} <= set(ids[:20])

    status = invoke(["tenant", "status", client.name]).output
    assert "held: 10 revocations and deletions" in status
    assert f"printsync effects approve --tenant {client.name}" in status
    assert json_of(invoke(["tenant", "status", client.name, "--json"]))["held"] == 10

    # The worker side's gauges: the held effects, and the cycle so far (the API's log
    # buffer writes its entries, and so the cycle, every half second).
    def gauges() -> dict[str, float]:
        found = scrape_worker(port)
        return {
            name: value(found, f"printsync_{name}", tenant=client.name)
            for name in ("effects_held", "cycle_requests", "cycle_duration_seconds")
        }

    shown = eventually(lambda: (g := gauges())["cycle_requests"] == 60 and g)
    assert shown["effects_held"] == 10 and shown["cycle_duration_seconds"] > 0
    listed = invoke(["effects", "list", "--tenant", client.name, "--state", "held", "--json"])
    assert sorted(row["id"] for row in json_of(listed)) == sorted(effect.id for effect in held)

    released = invoke(["effects", "approve", "--tenant", client.name]).output
    assert "10 held effects released" in released
    eventually(lambda: enabled_accounts(site, tenant_id) == 20)
    assert site.probe.effects(tenant_id, outbox.HELD) == []

    # The window starts again: a small deletion applies at once.
    assert client.delete(f"/Users/{ids[30]}").status_code == 204
    site.wait_settled(tenant_id)
    assert site.probe.effects(tenant_id, outbox.HELD) == []
    assert enabled_accounts(site, tenant_id) == 19

    site.http.__exit__(None, None, None)  # the app writes its buffered log entries
    shown = json_of(invoke(["tenant", "status", client.name, "--json"]))
    cycle = shown["cycle"]
    assert cycle["state"] == "running" and cycle["initial"] is True
    assert (cycle["created"], cycle["disabled"], cycle["deleted"], cycle["failed"]) == (
        40,
        20,
        1,
        0,
    )
    assert cycle["requests"] == 61 and cycle["updated"] == 0
    assert cycle["started_at"] <= cycle["ended_at"]
    assert shown["next_expected_at"] is None  # not while a cycle runs
    assert shown["held"] == 0 and shown["guard"]["percent"] == 25
    human = invoke(["tenant", "status", client.name]).output
    assert "An initial cycle is running since" in human
    assert "61 requests so far (40 created, 0 updated, 20 disabled, 1 deleted, 0 failed)" in human


def test_held_revocations_are_mailed_once_per_hold(
    make_site: Callable[..., Site], smtp_server: FakeSmtpServer
) -> None:
    site = make_site(None)  # the API alone: the effects wait in the outbox
    client, tenant_id = site.tenant(notify=("it@contoso.example",))
    site.probe.store.run(guard.set_overrides, tenant_id, {"min": 2, "percent": 0})
    ids = [
        client.post("/Users", json=user_body(f"m{n}@contoso.com", card=f"{800 + n}")).json()["id"]
        for n in range(6)
    ]
    for user_id in ids[:5]:
        assert client.patch(f"/Users/{user_id}", json=set_active(False)).status_code == 200
    sender = SmtpSender(smtp_server.url, "printsync@example.org", timeout=5)
    mail_settings = NotifySettings(mail_from="printsync@example.org")

    def notify_once() -> RunReport:
        return site.probe.store.run(run_once, sender, settings=mail_settings)

    first, again = notify_once(), notify_once()

    assert [key for key in first.created if key.startswith("held:")] == first.sent
    assert len(first.sent) == 1 and again.created == again.sent == []
    [received] = smtp_server.messages
    message = received.message
    assert message["Subject"] == (
        f"printsync: 3 revocations and deletions of print access held for tenant {client.name}"
    )
    part = message.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    assert "more than 2, the larger of 2 and" in text
    assert f"printsync effects approve --tenant {client.name}" in text
    assert list(received.rcpt_tos) == ["it@contoso.example"]

    # Approved, then a new hold: a new mail.
    assert site.probe.store.run(guard.approve, tenant_id) == 3
    for user_id in ids[5:]:
        client.delete(f"/Users/{user_id}")
    for user_id in ids[:2]:
        client.delete(f"/Users/{user_id}")
    later = notify_once()
    assert len(later.sent) == 1 and len(smtp_server.messages) == 2
    assert "1 revocation or deletion" in smtp_server.messages[1].message["Subject"]


def test_tenant_update_switches_the_guard_off_and_approve_names_what_was_not_held(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(None)  # the API alone: the effects wait in the outbox
    client, tenant_id = create_tenant(site, monkeypatch, "--guard-min", "1", "--guard-percent", "0")
    ids = [
        client.post("/Users", json=user_body(f"o{n}@contoso.com", card=f"{900 + n}")).json()["id"]
        for n in range(4)
    ]
    for user_id in ids[:2]:
        assert client.patch(f"/Users/{user_id}", json=set_active(False)).status_code == 200
    [held] = site.probe.effects(tenant_id, outbox.HELD)
    assert "held: 1 revocation or deletion" in invoke(["tenant", "status", client.name]).output

    assert (
        "tenant contoso-guard updated"
        in invoke(["tenant", "update", client.name, "--guard-window", "0"]).output
    )
    for user_id in ids[2:]:
        assert client.delete(f"/Users/{user_id}").status_code == 204
    assert [effect.id for effect in site.probe.effects(tenant_id, outbox.HELD)] == [held.id]
    shown = json_of(invoke(["tenant", "status", client.name, "--json"]))
    assert shown["guard"]["enabled"] is False and shown["guard"]["window_seconds"] == 0

    approved = CliRunner().invoke(
        cli, ["effects", "approve", "--tenant", client.name, str(held.id), "999999"]
    )
    assert approved.exit_code == 0, approved.output
    assert "1 held effect released" in approved.stdout
    assert "1 of the effects given were not held" in approved.stderr
    assert site.probe.effects(tenant_id, outbox.HELD) == []
    assert "Guard:    off." in invoke(["tenant", "status", client.name]).output

    nothing = CliRunner().invoke(cli, ["tenant", "update", client.name])
    assert nothing.exit_code == 2 and "give at least one setting" in nothing.output
    out_of_range = CliRunner().invoke(
        cli, ["tenant", "update", client.name, "--guard-percent", "101"]
    )
    assert out_of_range.exit_code == 2
