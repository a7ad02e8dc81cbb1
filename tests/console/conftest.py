"""The console's fixtures: an app with the admin token set, and a signed-in browser session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from storage.settings import DatabaseSettings
from tests.conftest import Service, make_app_settings
from workers.connectors.registry import DEFAULT_CONNECTOR

ADMIN_TOKEN = "console-admin-" + "k7" * 16
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Console:
    """A browser-like client of the console on one app (it keeps cookies)."""

    service: Service

    @property
    def http(self) -> TestClient:
        return self.service.http

    def sign_in(self, token: str = ADMIN_TOKEN) -> Any:
        page = self.http.get("/console/sign-in")
        return self.http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(page.text), "token": token},
            follow_redirects=False,
        )

    def post(self, path: str, data: dict[str, str] | None = None, *, page: str) -> Any:
        """Post a form of ``page`` (whose CSRF token it sends)."""
        csrf = csrf_of(self.http.get(page).text)
        return self.http.post(path, data={"csrf": csrf, **(data or {})}, follow_redirects=False)


def console_app(
    database_url: str, *, base_url: str = "http://testserver", **settings: Any
) -> Iterator[Console]:
    values: dict[str, Any] = {"admin_token": ADMIN_TOKEN}
    values.update(settings)
    app = create_app(
        make_app_settings(**values),
        DatabaseSettings(database_url=database_url),
        default_connector=DEFAULT_CONNECTOR,
    )
    with TestClient(app, base_url=base_url, raise_server_exceptions=False) as http:
        yield Console(Service(http, database_url))


@pytest.fixture
def console(database_url: str) -> Iterator[Console]:
    yield from console_app(database_url)


@pytest.fixture
def signed_in(console: Console) -> Console:
    assert console.sign_in().status_code == 303
    return console
