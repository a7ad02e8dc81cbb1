"""Entra-shaped traffic through the SCIM API and the embedded pipeline into a PaperCut that behaves
as the real one does (``tests/fakes/papercut.py``): UPN userNames, renames, disable and
re-enable, deletion, an outage, two users that map to one PaperCut name, a refused token."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from storage import clock, downstream, health, tenants
from storage.scim.schema import ENTERPRISE_USER, PRINTSYNC_USER, USER
from tests.builders import patch_body
from tests.conftest import TenantClient
from tests.fakes.papercut import DEFAULT_TOKEN, FakePaperCutServer
from tests.harness import eventually
from tests.workers import test_effects as effects_tests
from tests.workers import test_pipeline as pipeline
from tests.workers.test_pipeline import TOKEN_ENV, Site, set_active, settings
from workers import reconcile
from workers.notify import compose_digest

# The pipeline and effect tests' fixtures, under their own names here.
make_harness = effects_tests.make_harness
papercut = effects_tests.papercut
probe = pipeline.probe
make_site = pipeline.make_site
papercut_token = pipeline.papercut_token
papercut_server = pipeline.papercut_server_fixture


def entra_user(upn: str, given: str, family: str, **extra: Any) -> dict[str, Any]:
    """A user as Entra's default attribute mapping sends it: userName is the UPN."""
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
        "externalId": upn.lower(),
        "userName": upn,
        "active": True,
        "displayName": f"{given} {family}",
        "name": {"formatted": f"{given} {family}", "givenName": given, "familyName": family},
        "emails": [{"value": upn.lower(), "type": "work", "primary": True}],
        ENTERPRISE_USER: {"department": "Finance"},
        PRINTSYNC_USER: {"cardNumber": f"card-{given.lower()}", "office": "Berlin"},
    }
    body.update(extra)
    return body


def papercut_tenant(
    site: Site, server: FakePaperCutServer, **config: str
) -> tuple[TenantClient, int]:
    return site.tenant(
        connector="papercut",
        connector_config={"url": server.base_url, "token_env": TOKEN_ENV, **config},
    )


def papercut_tenant_with_adele(
    site: Site, server: FakePaperCutServer
) -> tuple[TenantClient, int, str]:
    """A PaperCut tenant into which Adele Vance has been provisioned and settled; returns its
    client, its id and her user id."""
    client, tenant_id = papercut_tenant(site, server)
    user_id = client.post(
        "/Users", json=entra_user("Adele.Vance@contoso.com", "Adele", "Vance")
    ).json()["id"]
    site.wait_settled(tenant_id)
    return client, tenant_id, user_id


def rename(user_name: str) -> dict[str, Any]:
    return patch_body({"op": "replace", "path": "userName", "value": user_name})


def test_upn_users_become_lower_case_local_part_accounts_with_name_and_email(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id = papercut_tenant(site, papercut_server)

    for upn, given, family in (
        ("Adele.Vance@contoso.com", "Adele", "Vance"),
        ("Alex.Wilber@contoso.com", "Alex", "Wilber"),
    ):
        assert client.post("/Users", json=entra_user(upn, given, family)).status_code == 201
    site.wait_settled(tenant_id)

    assert sorted(papercut_server.users) == ["adele.vance", "alex.wilber"]
    adele = papercut_server.users["adele.vance"]
    assert (adele["full-name"], adele["email"], adele["department"]) == (
        "Adele Vance",
        "adele.vance@contoso.com",
        "Finance",
    )
    assert (adele["primary-card-number"], adele["disabled-print"]) == ("card-adele", "false")
    assert site.probe.effects(tenant_id, "dead") == []


def test_account_under_the_upn_is_adopted_not_duplicated(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    papercut_server.add_user("adele.vance@contoso.com", internal="false", balance="7.00")
    site = make_site(settings())
    client, tenant_id = papercut_tenant(site, papercut_server)

    client.post("/Users", json=entra_user("Adele.Vance@contoso.com", "Adele", "Vance"))
    site.wait_settled(tenant_id)

    assert list(papercut_server.users) == ["adele.vance@contoso.com"]
    adopted = papercut_server.users["adele.vance@contoso.com"]
    assert (adopted["full-name"], adopted["balance"]) == ("Adele Vance", "7.00")
    assert papercut_server.calls["api.addNewInternalUser"] == 0


def test_upn_mapping_updates_directory_accounts_under_the_whole_upn(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    papercut_server.add_user("adele.vance@contoso.com", internal="false")
    site = make_site(settings())
    client, tenant_id = papercut_tenant(site, papercut_server, username="upn")

    client.post("/Users", json=entra_user("Adele.Vance@Contoso.com", "Adele", "Vance"))
    site.wait_settled(tenant_id)

    assert list(papercut_server.users) == ["adele.vance@contoso.com"]
    assert papercut_server.users["adele.vance@contoso.com"]["full-name"] == "Adele Vance"


def test_username_change_renames_the_account_and_keeps_its_balance(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id, user_id = papercut_tenant_with_adele(site, papercut_server)
    with papercut_server.lock:
        papercut_server.users["adele.vance"]["balance"] = "12.50"

    assert (
        client.patch(f"/Users/{user_id}", json=rename("Adele.Smith@contoso.com")).status_code == 200
    )
    site.wait_settled(tenant_id)

    assert list(papercut_server.users) == ["adele.smith"]
    renamed = papercut_server.users["adele.smith"]
    assert (renamed["balance"], renamed["disabled-print"]) == ("12.50", "false")
    assert papercut_server.calls["api.renameUserAccount"] == 1
    assert papercut_server.deleted == []


def test_disable_and_reenable_reach_disabled_print(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id, user_id = papercut_tenant_with_adele(site, papercut_server)

    client.patch(f"/Users/{user_id}", json=set_active(False))
    site.wait_settled(tenant_id)
    disabled = dict(papercut_server.users["adele.vance"])
    client.patch(f"/Users/{user_id}", json=set_active(True))
    site.wait_settled(tenant_id)

    assert (disabled["disabled-print"], disabled["primary-card-number"]) == ("true", "")
    enabled = papercut_server.users["adele.vance"]
    assert (enabled["disabled-print"], enabled["primary-card-number"]) == ("false", "card-adele")


def test_delete_with_zero_retention_deletes_and_redacts(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings(retention_days=0))
    client, tenant_id, user_id = papercut_tenant_with_adele(site, papercut_server)

    assert client.delete(f"/Users/{user_id}").status_code == 204
    eventually(lambda: papercut_server.deleted)
    site.wait_settled(tenant_id)

    assert papercut_server.deleted == [("adele.vance", True)]
    assert papercut_server.users == {}
    assert site.probe.effects(tenant_id, "dead") == []


def test_papercut_answering_503_for_a_while_converges_without_help(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings(max_retries=20))
    client, tenant_id = papercut_tenant(site, papercut_server)
    papercut_server.set_outage_for(1.5)  # "a minute of 503s", shortened

    for upn, given, family in (
        ("Adele.Vance@contoso.com", "Adele", "Vance"),
        ("Alex.Wilber@contoso.com", "Alex", "Wilber"),
        ("Megan.Bowen@contoso.com", "Megan", "Bowen"),
    ):
        client.post("/Users", json=entra_user(upn, given, family))
    site.wait_settled(tenant_id, timeout=40)

    assert sorted(papercut_server.users) == ["adele.vance", "alex.wilber", "megan.bowen"]
    effects = site.probe.effects(tenant_id)
    assert {e.state for e in effects} == {"done"}
    assert any(e.attempts > 0 for e in effects), "the outage was met and waited out"


def test_two_users_mapping_to_one_name_is_a_permanent_error_naming_both(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id = papercut_tenant(site, papercut_server)
    client.post("/Users", json=entra_user("adele@contoso.com", "Adele", "Vance"))
    site.wait_settled(tenant_id)

    second = client.post("/Users", json=entra_user("Adele@fabrikam.com", "Adele", "Fabrikam"))
    assert second.status_code == 201
    [dead] = eventually(lambda: site.probe.effects(tenant_id, "dead"))

    assert "adele@contoso.com" in (dead.last_error or "")
    assert "Adele@fabrikam.com" in (dead.last_error or "")
    assert dead.attempts == 1
    kept = papercut_server.users["adele"]
    assert (kept["full-name"], kept["email"]) == ("Adele Vance", "adele@contoso.com")
    assert list(papercut_server.users) == ["adele"]


def test_refused_token_pauses_the_tenant_then_a_passing_test_resumes_it(
    make_site: Callable[..., Site],
    papercut_server: FakePaperCutServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from printsync.cli import cli

    monkeypatch.setenv(TOKEN_ENV, "an-old-token")
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    site = make_site(settings(auth_retry_seconds=3600))
    client, tenant_id = papercut_tenant(site, papercut_server)
    tenant_name = client.name
    for upn, given, family in (
        ("Adele.Vance@contoso.com", "Adele", "Vance"),
        ("Alex.Wilber@contoso.com", "Alex", "Wilber"),
    ):
        client.post("/Users", json=entra_user(upn, given, family))
    eventually(lambda: site.probe.store.run(downstream.pause_of, tenant_id))
    eventually(
        lambda: all(
            e.last_error and e.next_attempt_at > e.created_at
            for e in site.probe.effects(tenant_id, "pending")
        )
    )
    waiting = site.probe.effects(tenant_id, "pending")
    tenant = site.probe.store.run(tenants.get, tenant_name)
    state = site.probe.store.run(health.read, tenant)
    runner = CliRunner()
    refused = runner.invoke(cli, ["tenant", "test", tenant_name])
    status = runner.invoke(cli, ["tenant", "status", tenant_name])

    assert len(waiting) == 2 and all(e.attempts == 0 for e in waiting)
    assert site.probe.effects(tenant_id, "dead") == []
    assert state.state == "failing" and "refused printsync's credentials" in state.reason
    digest = compose_digest(tenant, state, [], [], "printsync@localhost", clock.now())
    body = digest.get_body(preferencelist=("plain",))
    assert body is not None and "auth token" in body.get_content()
    assert refused.exit_code == 1
    assert "PaperCut refused the auth token" in refused.output
    assert "an-old-token" not in refused.output
    assert "refused printsync's credentials" in status.output

    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)  # the operator fixes the token
    passed = runner.invoke(cli, ["tenant", "test", tenant_name, "--json"])
    assert passed.exit_code == 0, passed.output
    assert '"ok":true' in passed.output
    assert site.probe.store.run(downstream.pause_of, tenant_id) is None
    site.wait_settled(tenant_id)
    assert sorted(papercut_server.users) == ["adele.vance", "alex.wilber"]
    assert all(e.attempts == 0 for e in site.probe.effects(tenant_id))


def test_revoke_blocks_printing_although_the_pin_cannot_be_cleared(
    make_site: Callable[..., Site], papercut_server: FakePaperCutServer, papercut_token: None
) -> None:
    site = make_site(settings())
    client, tenant_id, user_id = papercut_tenant_with_adele(site, papercut_server)

    def refuse_pin(params: tuple[Any, ...]) -> None:
        if any(pair[0] == "card-pin" for pair in params[1]):
            raise xmlrpc.client.Fault(273, "PIN doesn't contain enough characters")

    papercut_server.before["api.setUserProperties"] = refuse_pin
    client.patch(f"/Users/{user_id}", json=set_active(False))
    site.wait_settled(tenant_id)

    revoked = papercut_server.users["adele.vance"]
    assert (revoked["disabled-print"], revoked["primary-card-number"]) == ("true", "")
    assert site.probe.effects(tenant_id, "dead") == []


def test_reconcile_compares_upn_users_under_their_papercut_names(
    papercut: tuple[effects_tests.Harness, FakePaperCutServer],
) -> None:
    harness, server = papercut
    harness.create_user(effects_tests.user_body("Adele.Vance@contoso.com"))
    harness.run_pending()
    server.add_user("adele", full_name="Not Managed")
    with server.lock:  # drift behind printsync's back
        server.users["adele.vance"]["full-name"] = "Someone Else"
    connector = harness.effects.connectors.connector_for(harness.tenant_id)

    result = reconcile.scan(harness.effects, harness.tenant_id, connector)

    assert result.managed == 1
    assert [(item.drift.username, item.drift.problems) for item in result.found] == [
        ("adele.vance@contoso.com", ("full name",))
    ]
    assert server.users["adele"]["full-name"] == "Not Managed"
