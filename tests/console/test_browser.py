"""The admin console in a real browser: Debian's Chromium driven by Playwright, against the app
served by uvicorn on a free port of 127.0.0.1 (with the embedded effects pipeline).

Every test records each request the browser makes and every script error: none may go to
another host, and no page may raise an error. The screenshots of docs/console.md are taken here:
set ``PRINTSYNC_CONSOLE_SCREENSHOTS`` to a folder (``docs/console``) to keep them.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from api.app import create_app
from storage.settings import DatabaseSettings
from tests.api.test_users import entra_user
from tests.conftest import count_rows, create_tenant, make_app_settings, require
from tests.console.conftest import ADMIN_TOKEN
from tests.fakes.smtp import free_port
from tests.workers.test_pipeline import settings as pipeline_settings
from workers.connectors.registry import DEFAULT_CONNECTOR
from workers.pipeline import Pipeline

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TOKEN_PATTERN = re.compile(r"pst_[A-Za-z0-9_-]{20,}")

pytestmark = pytest.mark.slow


def in_thread(work: Callable[..., T], *args: Any) -> T:
    """Run ``work`` in a thread of its own: Playwright's event loop holds the test's thread,
    and the storage helpers start loops of their own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work, *args).result()


@dataclass
class Live:
    """The app served over HTTP on 127.0.0.1, with one tenant ``contoso``."""

    base: str
    database_url: str
    token: str

    def scim(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base}/scim/v2/contoso{path}",
            json=body,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/scim+json",
            },
            timeout=10,
        )


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path) -> Iterator[Live]:
    path = tmp_path / "console.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    pipeline = Pipeline(pipeline_settings(), url, environ=os.environ)
    app = create_app(
        make_app_settings(public_url=base, admin_token=ADMIN_TOKEN),
        DatabaseSettings(database_url=url),
        on_start=pipeline.attach,
        default_connector=DEFAULT_CONNECTOR,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    pipeline.start()
    try:
        yield Live(base, url, in_thread(create_tenant, url, "contoso"))
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        pipeline.stop()


@dataclass
class Browser:
    """One Chromium page, with every request and script error it saw."""

    page: Any
    base: str
    shots: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def sign_in(self, token: str = ADMIN_TOKEN) -> None:
        self.goto("/console/")
        self.page.get_by_label("Admin token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require("Chromium (/usr/bin/chromium)", Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Any, live: Live, tmp_path: Path) -> Iterator[Browser]:
    shots = Path(os.environ.get("PRINTSYNC_CONSOLE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport=LAPTOP)
    page = context.new_page()
    seen = Browser(page, live.base, shots)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    # A page answered with 401 or 403 (a wrong token, a form without its CSRF token) is meant;
    # a style sheet, script or icon that fails to load is not.
    page.on(
        "console",
        lambda message: (
            seen.errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            seen.errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.request.resource_type != "document"
            else None
        ),
    )
    yield seen
    context.close()
    hosts = {urlsplit(url).hostname for url in seen.requests if not url.startswith("data:")}
    assert hosts <= {"127.0.0.1"}, f"requests left the host: {sorted(hosts)}"
    assert seen.errors == [], seen.errors


def user_story(live: Live) -> str:
    """Adele is created, disabled, re-enabled and renamed, and joins a group, over SCIM."""
    adele = live.scim("POST", "/Users", entra_user("adele.vance@contoso.com")).json()["id"]
    live.scim("POST", "/Users", entra_user("alex.wilber@contoso.com"))
    off = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    on = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "Replace", "path": "displayName", "value": "Adele Vance"},
        ],
    }
    assert live.scim("PATCH", f"/Users/{adele}", off).status_code == 200
    assert live.scim("PATCH", f"/Users/{adele}", on).status_code == 200
    group = live.scim(
        "POST",
        "/Groups",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"},
    ).json()["id"]
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": adele}]}],
    }
    assert live.scim("PATCH", f"/Groups/{group}", add).status_code == 204
    return str(adele)


def wait_for_log(live: Live, rows: int) -> None:
    """The API writes its log entries in batches: wait until they are in."""
    deadline = time.monotonic() + 10
    while count_rows(live.database_url, "provisioning_log") < rows:
        assert time.monotonic() < deadline, "the provisioning log was not written"
        time.sleep(0.1)


def test_operator_signs_in_sees_health_opens_tenant_by_name_and_finds_user_in_log(
    browser: Browser, live: Live
) -> None:
    user_story(live)
    wait_for_log(live, 8)
    page = browser.page

    browser.goto("/console/")
    assert page.url.endswith("/console/sign-in")
    assert "contoso" not in page.content()
    browser.shot("sign-in")
    browser.sign_in("not-the-token")
    assert page.get_by_role("alert").inner_text() == "That is not the admin token."

    browser.sign_in()
    page.wait_for_url("**/console/")
    row = page.get_by_role("row", name=re.compile("contoso"))
    assert row.get_by_text("Healthy").is_visible()
    assert "Last successful sync" in page.content()
    browser.shot("tenants")

    page.get_by_role("link", name="contoso", exact=True).click()
    page.wait_for_url("**/console/tenants/contoso")
    assert (
        page.get_by_role("textbox", name="Tenant URL").input_value()
        == f"{live.base}/scim/v2/contoso"
    )
    assert not TOKEN_PATTERN.search(page.content())
    browser.shot("tenant")

    page.get_by_role("link", name="Provisioning log").click()
    page.get_by_label("Find a user or group").fill("adele.vance@contoso.com")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/log?q=*")
    story = page.locator("table.story").inner_text()
    for words in ("created", "disabled", "active: true -> false", "re-enabled", "Sales"):
        assert words in story, words
    assert "UTC" in story
    browser.shot("log")

    # Signing out ends the session: the console asks for the token again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in?signed-out=1")
    browser.goto("/console/tenants/contoso")
    assert page.url.endswith("/console/sign-in")


def test_rotate_shows_the_new_token_once(browser: Browser, live: Live) -> None:
    page = browser.page
    browser.sign_in()
    browser.goto("/console/tenants/contoso")
    page.get_by_label("After rotation, the current Secret Token").select_option(
        label="keeps working for 1 hour"
    )
    page.get_by_role("button", name="Rotate the Secret Token").click()
    token = page.get_by_role("textbox", name="Secret Token").input_value()
    assert TOKEN_PATTERN.fullmatch(token)
    assert token != live.token
    assert "shown only this once" in page.content()
    page.get_by_role("button", name="Copy").first.click()
    browser.shot("rotated-token")
    # The old token keeps working for the overlap; the new one works now.
    assert live.scim("GET", "/Users").status_code == 200
    live.token = token
    assert live.scim("GET", "/Users").status_code == 200
    # Shown once: the tenant's page never holds it again.
    browser.goto("/console/tenants/contoso")
    assert token not in page.content()
    assert not TOKEN_PATTERN.search(page.content())


def test_form_posted_without_its_csrf_token_is_refused(browser: Browser, live: Live) -> None:
    page = browser.page
    browser.sign_in()
    browser.goto("/console/tenants/contoso")
    page.evaluate("document.querySelector('form[action$=\"/disable\"] input[name=csrf]').remove()")
    page.get_by_role("button", name="Disable the tenant").click()
    assert "CSRF token is missing or wrong" in page.content()
    assert live.scim("GET", "/Users").status_code == 200  # still enabled
    browser.goto("/console/tenants/contoso")
    page.get_by_role("button", name="Disable the tenant").click()
    assert "The tenant is disabled" in page.content()
    assert live.scim("GET", "/Users").status_code == 403


def test_keyboard_alone_signs_in_and_opens_a_tenant(browser: Browser, live: Live) -> None:
    page = browser.page
    browser.goto("/console/")
    page.keyboard.type(ADMIN_TOKEN)  # the token field has the focus
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "contoso":
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/tenants/contoso")
    # Laptop screen: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_dead_effects_show_their_user_and_reason_and_retry(browser: Browser, live: Live) -> None:
    from tests.console.test_pages import make_dead

    user_story(live)
    deadline = time.monotonic() + 15
    while count_rows(live.database_url, "outbox WHERE state = 'pending'") > 0:
        assert time.monotonic() < deadline, "effects did not settle"
        time.sleep(0.1)
    in_thread(make_dead, live.database_url, "contoso")
    page = browser.page
    browser.sign_in()
    browser.goto("/console/tenants/contoso/effects")
    assert "adele.vance@contoso.com" in page.content()
    assert "the print system refused the change" in page.content()
    browser.shot("effects")
    page.get_by_role("button", name=re.compile("Retry all")).click()
    assert "sent through again" in page.get_by_role("status").inner_text()


def test_cycle_progress_and_held_revocations_approved_from_the_console(
    browser: Browser, live: Live
) -> None:
    from storage import ledger, tenants
    from tests.console.test_pages import guard_at

    in_thread(lambda: guard_at(live.database_url, "contoso", min=1, percent=0))
    off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": False}]}

    def enabled() -> list[bool]:
        async def read(db: Any) -> list[bool]:
            tenant = await tenants.get(db, "contoso")
            return [account.enabled for account in await ledger.list_accounts(db, tenant.id)]

        from storage.blocking import BlockingDatabase

        store = BlockingDatabase(live.database_url, pool_size=1)
        try:
            return store.run(read)
        finally:
            store.close()

    users = [
        live.scim("POST", "/Users", entra_user(f"held{n}@contoso.com")).json()["id"]
        for n in range(3)
    ]
    # Each account exists before its user is disabled: a user first seen inactive gets none.
    deadline = time.monotonic() + 15
    while in_thread(enabled) != [True, True, True]:
        assert time.monotonic() < deadline, in_thread(enabled)
        time.sleep(0.1)
    for user in users:
        assert live.scim("PATCH", f"/Users/{user}", off).status_code == 200
    wait_for_log(live, 6)
    page = browser.page
    browser.sign_in()
    browser.goto("/console/tenants/contoso")
    assert "An initial cycle is running since" in page.get_by_role("status").inner_text()
    assert page.locator("progress").is_visible()
    page.get_by_role("link", name="2 revocations of print access held").click()
    page.wait_for_url("**/console/tenants/contoso/effects*")
    assert page.get_by_role("heading", name="Held by the deprovisioning guard (2)").is_visible()
    browser.shot("held")
    page.get_by_role("button", name=re.compile(r"^Approve effect \d+")).first.click()
    assert "1 held effect approved" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Approve all 1 held effects").click()
    assert "1 held effect approved" in page.get_by_role("status").inner_text()
    assert "Held by the deprovisioning guard" not in page.content()

    deadline = time.monotonic() + 15
    while in_thread(enabled) != [False, False, False]:
        assert time.monotonic() < deadline, in_thread(enabled)
        time.sleep(0.1)
