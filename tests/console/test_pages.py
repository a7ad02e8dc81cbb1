"""The admin console over HTTP: sign-in, sessions, CSRF, the tenant pages, the log and the
effects, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re

import pytest

from api.console import pages
from storage import guard, tenants
from storage.database import open_database
from storage.sql import compile_text
from tests.api.test_users import entra_user
from tests.conftest import TenantClient, count_rows
from tests.console.conftest import ADMIN_TOKEN, Console, console_app, csrf_of

TOKEN_PATTERN = re.compile(r"pst_[A-Za-z0-9_-]{20,}")


def tenant_state(database_url: str, name: str) -> tenants.Tenant:
    async def read() -> tenants.Tenant:
        db = await open_database(database_url, pool_size=1)
        try:
            return await tenants.get(db, name)
        finally:
            await db.close()

    return asyncio.run(read())


# The console is off without an admin token -------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_console_without_admin_token_is_404_everywhere(sqlite_url: str, token: str | None) -> None:
    for console in console_app(sqlite_url, admin_token=token):
        for path in (
            "/",
            "/console",
            "/console/",
            "/console/sign-in",
            "/console/static/console.css",
        ):
            response = console.http.get(path, follow_redirects=False)
            assert response.status_code == 404, path
        assert console.http.post("/console/sign-in", data={"token": ""}).status_code == 404


# Sign-in ------------------------------------------------------------------------------------------


def test_pages_before_sign_in_go_to_sign_in_and_show_no_tenant(console: Console) -> None:
    console.service.tenant("acme")
    for path in (
        "/",
        "/console",
        "/console/",
        "/console/tenants/acme",
        "/console/tenants/acme/log",
    ):
        response = console.http.get(path)
        assert response.url.path == "/console/sign-in", path
        assert "acme" not in response.text
    assert console.http.post("/console/tenants/acme/disable", data={}).status_code == 403


def test_sign_in_with_admin_token_sets_a_strict_http_only_session_cookie(
    console: Console,
) -> None:
    response = console.sign_in()
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("printsync_console=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert f"Max-Age={pages_session_seconds()}" in cookie
    assert "Secure" not in cookie  # the public URL is http
    assert ADMIN_TOKEN not in cookie
    assert console.http.get("/console/").status_code == 200


def pages_session_seconds() -> int:
    from api.console.access import SESSION_SECONDS

    return SESSION_SECONDS


def test_session_cookie_is_secure_when_public_url_is_https(sqlite_url: str) -> None:
    for console in console_app(
        sqlite_url, base_url="https://testserver", public_url="https://printsync.example"
    ):
        response = console.sign_in()
        cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        assert any(v.startswith("printsync_console=") and "Secure" in v for v in cookies)


def test_wrong_token_gets_a_plain_message_and_no_session(console: Console) -> None:
    service = console.service
    acme = service.tenant("acme")
    for wrong in ("wrong", acme.token, ADMIN_TOKEN + "x", ""):
        response = console.sign_in(wrong)
        assert response.status_code == 401
        assert "That is not the admin token." in response.text
        assert "printsync_console=" not in response.headers.get("set-cookie", "")
    assert console.http.get("/console/").url.path == "/console/sign-in"


def test_sign_in_without_its_csrf_token_is_refused(console: Console) -> None:
    response = console.http.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert response.status_code == 403
    assert console.http.get("/console/").url.path == "/console/sign-in"


def test_too_many_wrong_tokens_are_throttled(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "throttle", pages.Throttle(limit=3, window=60))
    for _ in range(3):
        assert console.sign_in("wrong").status_code == 401
    response = console.sign_in(ADMIN_TOKEN)
    assert response.status_code == 429
    assert "Too many wrong tokens" in response.text


def test_sign_out_ends_the_session_for_its_cookie_everywhere(signed_in: Console) -> None:
    secret = signed_in.http.cookies.get("printsync_console")
    response = signed_in.post("/console/sign-out", page="/console/")
    assert response.status_code == 303
    assert signed_in.http.get("/console/").url.path == "/console/sign-in"
    # The old cookie, replayed, opens nothing: the session row is gone.
    signed_in.http.cookies.set("printsync_console", secret or "", path="/console")
    assert signed_in.http.get("/console/").url.path == "/console/sign-in"
    assert count_rows(signed_in.service.database_url, "console_sessions") == 0


def test_new_admin_token_ends_sessions_opened_with_the_old_one(sqlite_url: str) -> None:
    for console in console_app(sqlite_url):
        console.sign_in()
        secret = console.http.cookies.get("printsync_console")
    for console in console_app(sqlite_url, admin_token="another-admin-token-" + "z" * 20):
        console.http.cookies.set("printsync_console", secret or "", path="/console")
        assert console.http.get("/console/").url.path == "/console/sign-in"


# Tenants ------------------------------------------------------------------------------------------


def test_tenant_list_links_each_tenant_by_name_with_its_health(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    signed_in.service.tenant("globex")
    assert acme.post("/Users", json=entra_user("ada@acme.example")).status_code == 201
    page = signed_in.http.get("/console/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<a href="/console/tenants/acme">acme</a>' in page.text
    assert '<a href="/console/tenants/globex">globex</a>' in page.text
    assert 'class="badge healthy">Healthy<' in page.text
    assert not TOKEN_PATTERN.search(page.text)


def test_create_tenant_shows_its_token_once_and_stores_the_default_connector(
    signed_in: Console,
) -> None:
    response = signed_in.post(
        "/console/tenants",
        {"name": "contoso", "notify": "it@contoso.example\nops@contoso.example"},
        page="/console/",
    )
    assert response.status_code == 201
    token = TOKEN_PATTERN.search(response.text)
    assert token is not None
    assert "shown only this once" in response.text
    assert "http://testserver/scim/v2/contoso" in response.text
    stored = tenant_state(signed_in.service.database_url, "contoso")
    assert (stored.connector, stored.connector_config) == ("ledger", {})
    assert stored.notify == ("it@contoso.example", "ops@contoso.example")
    # The token works for SCIM, and no later page shows it.
    client = TenantClient(signed_in.http, "contoso", token.group(0))
    assert client.get("/Users").status_code == 200
    for path in ("/console/", "/console/tenants/contoso", "/console/tenants/contoso/log"):
        assert token.group(0) not in signed_in.http.get(path).text


@pytest.mark.parametrize(
    ("name", "notify", "status", "message"),
    [
        ("Bad Name", "", 400, "tenant name must be"),
        ("acme", "", 409, "tenant acme already exists"),
        ("newco", "not-an-address", 400, "not-an-address is not an e-mail address"),
    ],
)
def test_create_tenant_refuses_bad_input_and_keeps_the_form(
    signed_in: Console, name: str, notify: str, status: int, message: str
) -> None:
    signed_in.service.tenant("acme")
    response = signed_in.post(
        "/console/tenants", {"name": name, "notify": notify}, page="/console/"
    )
    assert response.status_code == status
    assert message in response.text
    assert not TOKEN_PATTERN.search(response.text)
    assert count_rows(signed_in.service.database_url, "tenants") == 1


def test_form_posted_without_csrf_token_is_refused_and_changes_nothing(
    signed_in: Console,
) -> None:
    signed_in.service.tenant("acme")
    for data in ({}, {"csrf": "forged"}):
        response = signed_in.http.post("/console/tenants/acme/disable", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
        response = signed_in.http.post("/console/tenants", data={**data, "name": "evil"})
        assert response.status_code == 403
    assert not tenant_state(signed_in.service.database_url, "acme").disabled
    assert count_rows(signed_in.service.database_url, "tenants") == 1


def test_tenant_page_shows_tenant_url_and_no_token(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    page = signed_in.http.get("/console/tenants/acme")
    assert page.status_code == 200
    assert 'value="http://testserver/scim/v2/acme"' in page.text
    assert 'data-copy="tenant-url"' in page.text
    assert acme.token not in page.text
    assert not TOKEN_PATTERN.search(page.text)
    assert signed_in.http.get("/console/tenants/nobody").status_code == 404


def test_rotate_shows_the_new_token_once_and_the_old_one_stops(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    response = signed_in.post(
        "/console/tenants/acme/rotate", {"overlap": "0"}, page="/console/tenants/acme"
    )
    assert response.status_code == 200
    found = TOKEN_PATTERN.search(response.text)
    assert found is not None and found.group(0) != acme.token
    assert acme.get("/Users").status_code == 401
    assert TenantClient(signed_in.http, "acme", found.group(0)).get("/Users").status_code == 200
    assert found.group(0) not in signed_in.http.get("/console/tenants/acme").text


def test_rotate_with_overlap_keeps_the_old_token_working(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    response = signed_in.post(
        "/console/tenants/acme/rotate", {"overlap": "3600"}, page="/console/tenants/acme"
    )
    assert response.status_code == 200
    assert acme.get("/Users").status_code == 200
    bad = signed_in.post(
        "/console/tenants/acme/rotate", {"overlap": "99"}, page="/console/tenants/acme"
    )
    assert bad.status_code == 400
    assert not TOKEN_PATTERN.search(bad.text)


def test_disable_and_enable_the_tenant(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    response = signed_in.post("/console/tenants/acme/disable", page="/console/tenants/acme")
    assert response.status_code == 303
    assert acme.get("/Users").status_code == 403
    page = signed_in.http.get(response.headers["location"])
    assert "The tenant is disabled" in page.text
    signed_in.post("/console/tenants/acme/enable", page="/console/tenants/acme")
    assert acme.get("/Users").status_code == 200


def test_notification_addresses_are_saved_and_checked(signed_in: Console) -> None:
    signed_in.service.tenant("acme")
    ok = signed_in.post(
        "/console/tenants/acme/notify",
        {"notify": "a@acme.example, b@acme.example"},
        page="/console/tenants/acme",
    )
    assert ok.status_code == 303
    assert tenant_state(signed_in.service.database_url, "acme").notify == (
        "a@acme.example",
        "b@acme.example",
    )
    bad = signed_in.post(
        "/console/tenants/acme/notify", {"notify": "a@acme.example bogus"}, page="/console/"
    )
    assert bad.status_code == 400
    assert "bogus is not an e-mail address" in bad.text
    assert tenant_state(signed_in.service.database_url, "acme").notify == (
        "a@acme.example",
        "b@acme.example",
    )


# The log and the effects --------------------------------------------------------------------------


def flush_log(console: Console) -> None:
    app = console.http.app
    log = app.state.provisioning_log  # type: ignore[attr-defined]
    db = app.state.services.db  # type: ignore[attr-defined]
    console.http.portal.call(log.drain, db)  # type: ignore[union-attr]


def test_log_search_finds_a_user_created_over_scim_and_tells_its_story(
    signed_in: Console,
) -> None:
    acme = signed_in.service.tenant("acme")
    user = acme.post("/Users", json=entra_user("adele.vance@acme.example")).json()["id"]
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert acme.patch(f"/Users/{user}", json=disable).status_code == 200
    flush_log(signed_in)
    for query in ("adele.vance@acme.example", "ADELE.VANCE@acme.example", user):
        page = signed_in.http.get("/console/tenants/acme/log", params={"q": query})
        assert page.status_code == 200
        assert "adele.vance@acme.example" in page.text
        assert "created" in page.text
        assert "disabled" in page.text
        assert "active: true -&gt; false" in page.text
        assert " UTC" in page.text
    empty = signed_in.http.get("/console/tenants/acme/log", params={"q": "nobody@acme.example"})
    assert "Nothing in the log names nobody@acme.example" in empty.text


def test_log_pages_older_entries(signed_in: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.console import history

    monkeypatch.setattr(history, "PAGE_SIZE", 3)
    acme = signed_in.service.tenant("acme")
    for n in range(5):
        assert acme.post("/Users", json=entra_user(f"u{n}@acme.example")).status_code == 201
    flush_log(signed_in)
    first = signed_in.http.get("/console/tenants/acme/log")
    assert [f"u{n}@acme.example" in first.text for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    older = re.search(r'href="([^"]*before=[^"]*)"', first.text)
    assert older is not None
    second = signed_in.http.get(older.group(1).replace("&amp;", "&"))
    assert [f"u{n}@acme.example" in second.text for n in range(5)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert 'rel="next"' not in second.text


def make_dead(database_url: str, tenant: str) -> None:
    """Every effect of the tenant dead after three attempts (as a worker leaves them)."""

    async def work() -> None:
        db = await open_database(database_url, pool_size=1)
        try:
            tenant_id = (await tenants.get(db, tenant)).id
            async with db.transaction() as conn:
                await conn.execute(
                    compile_text(
                        "UPDATE outbox SET state = 'dead', attempts = 3,"
                        " last_error = 'the print system refused the change' WHERE tenant_id = :t",
                        db.dialect,
                    ),
                    {"t": tenant_id},
                )
        finally:
            await db.close()

    asyncio.run(work())


def test_effects_page_lists_dead_effects_by_user_and_retries_them(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    users = [
        acme.post("/Users", json=entra_user(f"d{n}@acme.example")).json()["id"] for n in range(3)
    ]
    assert len(users) == 3
    make_dead(signed_in.service.database_url, "acme")
    page = signed_in.http.get("/console/tenants/acme/effects")
    assert "Dead effects (3)" in page.text
    assert "d0@acme.example" in page.text
    assert "the print system refused the change" in page.text
    assert "<td>3</td>" in page.text
    first = re.search(r'action="(/console/tenants/acme/effects/(\d+)/retry)"', page.text)
    assert first is not None
    one = signed_in.post(first.group(1), page="/console/tenants/acme/effects")
    assert one.status_code == 303
    assert "1 effect sent through again" in signed_in.http.get(one.headers["location"]).text
    rest = signed_in.post(
        "/console/tenants/acme/effects/retry-dead", page="/console/tenants/acme/effects"
    )
    assert rest.headers["location"].endswith("retried=2")
    assert "No dead effects." in signed_in.http.get("/console/tenants/acme/effects").text


def test_unknown_console_page_is_404_after_sign_in(signed_in: Console) -> None:
    assert signed_in.http.get("/console/nothing/here").status_code == 404
    assert csrf_of(signed_in.http.get("/console/").text)


# Entra's cycle and the deprovisioning guard -------------------------------------------------------


def guard_at(database_url: str, name: str, **overrides: int) -> None:
    async def work() -> None:
        db = await open_database(database_url, pool_size=1)
        try:
            await guard.set_overrides(db, (await tenants.get(db, name)).id, overrides)
        finally:
            await db.close()

    asyncio.run(work())


def test_tenant_page_shows_the_running_cycle_as_a_progress_line(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    quiet = signed_in.http.get("/console/tenants/acme")
    assert "No provisioning cycle from Entra ID seen yet." in quiet.text
    assert "<progress" not in quiet.text
    for n in range(3):
        assert acme.post("/Users", json=entra_user(f"c{n}@acme.example")).status_code == 201
    assert acme.get("/Users", params={"filter": 'userName eq "c0@acme.example"'}).status_code == 200
    flush_log(signed_in)

    page = signed_in.http.get("/console/tenants/acme")

    assert '<progress aria-label="Cycle running"></progress>' in page.text
    assert "An initial cycle is running since" in page.text
    assert "4 requests so far (3 created, 0 updated, 0 disabled, 0 deleted, 0 failed)" in page.text
    assert "more than the larger of 10 and 20 % of enabled users" in page.text


def test_effects_page_lists_held_effects_and_approves_them(signed_in: Console) -> None:
    acme = signed_in.service.tenant("acme")
    guard_at(signed_in.service.database_url, "acme", min=1, percent=0)
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    for n in range(3):
        user = acme.post("/Users", json=entra_user(f"h{n}@acme.example")).json()["id"]
        assert acme.patch(f"/Users/{user}", json=disable).status_code == 200

    overview = signed_in.http.get("/console/tenants/acme")
    assert "2 revocations of print access held" in overview.text
    page = signed_in.http.get("/console/tenants/acme/effects")
    assert "Held by the deprovisioning guard (2)" in page.text
    assert "h2@acme.example" in page.text and "revoke print access (disabled)" in page.text
    first = re.search(r'action="(/console/tenants/acme/effects/(\d+)/approve)"', page.text)
    assert first is not None
    forged = signed_in.http.post(first.group(1), data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert (
        "Held by the deprovisioning guard (2)"
        in signed_in.http.get("/console/tenants/acme/effects").text
    )

    one = signed_in.post(first.group(1), page="/console/tenants/acme/effects")
    assert one.status_code == 303
    after_one = signed_in.http.get(one.headers["location"]).text
    assert "1 held effect approved" in after_one
    assert "Held by the deprovisioning guard (1)" in after_one
    rest = signed_in.post(
        "/console/tenants/acme/effects/approve-held", page="/console/tenants/acme/effects"
    )
    assert rest.headers["location"].endswith("approved=1")
    done = signed_in.http.get(rest.headers["location"]).text
    assert "Held by the deprovisioning guard" not in done
    assert count_rows(signed_in.service.database_url, "outbox WHERE state = 'held'") == 0
