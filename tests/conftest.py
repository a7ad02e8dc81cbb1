"""Shared fixtures: real databases (SQLite and PostgreSQL), the app, tenants and SCIM clients.

PostgreSQL and Redis fixtures skip when the service is absent locally, and fail when ``CI`` is
set, so a green CI run always means the real services were exercised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from storage import migrate, tenants
from storage.database import open_database
from storage.settings import DatabaseSettings
from tests.fakes.smtp import free_port
from tests.harness import scalar, scim_client, serving

POSTGRES_ADMIN_URL = os.environ.get(
    "PRINTSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PRINTSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PUBLIC_URL = "http://testserver"
IN_CI = bool(os.environ.get("CI"))


def require(service: str, available: bool) -> None:
    """Skip locally, fail in CI, when a real service a test needs is missing."""
    if available:
        return
    message = f"{service} is not reachable"
    if IN_CI:
        pytest.fail(f"{message} (CI requires it)")
    pytest.skip(message)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _admin_engine() -> sa.Engine:
    url = sa.make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


class _UnhandledErrors(logging.Handler):
    """Collects the tracebacks the API logs for exceptions no handler took (its bare 500s)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("unhandled error"):
            self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def server_errors_fail_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """An exception inside the API fails the test that caused it, whatever the test asserts of
    the response: the API answers it with a bare 500 and logs it, and this fixture turns that log
    into a failure. A test that provokes one on purpose says so with ``@pytest.mark.server_error``.
    """
    handler = _UnhandledErrors()
    logger = logging.getLogger("printsync.api")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.messages and request.node.get_closest_marker("server_error") is None:
        pytest.fail("the API raised an unexpected exception:\n" + handler.messages[0])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "printsync.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@contextmanager
def scratch_postgres(name: str) -> Iterator[str]:
    """The URL of a new, empty database ``name`` on the real PostgreSQL server (made afresh if
    it was left behind), dropped when the block ends."""
    url = sa.make_url(POSTGRES_ADMIN_URL)
    require("PostgreSQL", reachable(url.host or "127.0.0.1", url.port or 5432))
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url(worker_id: str) -> Iterator[str]:
    """A migrated database of this test process's own on the real PostgreSQL server."""
    with scratch_postgres(f"printsync_test_{worker_id}_{os.getpid()}") as test_url:
        migrate.upgrade(test_url)
        yield test_url


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    config: Any = request.config
    return str(getattr(config, "workerinput", {}).get("workerid", "main"))


def _truncate(url: str) -> None:
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        existing = (
            conn.execute(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        names = ", ".join(f'"{name}"' for name in existing)
        if names:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "printsync.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_server_url")
    _truncate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: the suite runs once on each backend."""
    return fresh_database(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("postgresql", request, tmp_path)


def create_tenant(
    database_url: str, name: str, *, connector: str = "ledger", **options: Any
) -> str:
    """Create a tenant directly in storage; returns its token."""

    async def work() -> str:
        db = await open_database(database_url, pool_size=1)
        try:
            _, token = await tenants.create(db, name, connector=connector, **options)
            return token
        finally:
            await db.close()

    return asyncio.run(work())


@dataclass
class TenantClient:
    """SCIM calls under one Tenant URL, authenticated with that tenant's token."""

    http: TestClient
    name: str
    token: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"/scim/v2/{self.name}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        extra = dict(headers or {})
        if json is not None:
            import orjson

            content = orjson.dumps(json)
            extra.setdefault("Content-Type", "application/scim+json")
        return self.http.request(
            method, self.base + path, content=content, headers=self.headers(extra), params=params
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Service:
    """A running app on one database, and a way to open tenants on it."""

    http: TestClient
    database_url: str

    def tenant(self, name: str | None = None, **options: Any) -> TenantClient:
        name = name or f"t-{uuid.uuid4().hex[:10]}"
        token = create_tenant(self.database_url, name, **options)
        return TenantClient(self.http, name, token)


def make_app_settings(**overrides: Any) -> ApiSettings:
    # Rate limiting is off unless a test turns it on (tests/security/test_rate_limit.py).
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "auth_cache_seconds": 0,
        "rate_limit_per_second": 0,
    }
    values.update(overrides)
    return ApiSettings(**values)


@contextmanager
def running(
    database_url: str, *, raise_server_exceptions: bool = True, **settings: Any
) -> Iterator[Service]:
    """The app on ``database_url``, with ``settings`` over the tests' defaults. A server
    exception reaches the test unless ``raise_server_exceptions=False`` asks for the bare 500."""
    app = create_app(make_app_settings(**settings), DatabaseSettings(database_url=database_url))
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as http:
        yield Service(http, database_url)


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    with running(database_url) as service:
        yield service


@pytest.fixture
def sqlite_service(sqlite_url: str) -> Iterator[Service]:
    with running(sqlite_url) as service:
        yield service


@dataclass(frozen=True)
class Served:
    """The app served over real HTTP on a loopback port, with one tenant."""

    root: str
    tenant: str
    token: str
    database_url: str

    @property
    def base(self) -> str:
        """The tenant's SCIM base URL (its Tenant URL)."""
        return f"{self.root}/scim/v2/{self.tenant}"

    def client(self) -> httpx.Client:
        return scim_client(self.root, self.tenant, self.token, timeout=30)


@contextmanager
def served(
    database_url: str, tenant: str, *, server: dict[str, Any] | None = None, **settings: Any
) -> Iterator[Served]:
    """The app under uvicorn (``server``: its options) on a free port, ``settings`` over the
    tests' defaults, with the tenant ``tenant`` made."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    token = create_tenant(database_url, tenant)
    app = create_app(
        make_app_settings(public_url=root, **settings), DatabaseSettings(database_url=database_url)
    )
    with serving(app, port, **(server or {})):
        yield Served(root, tenant, token, database_url)


def count_rows(database_url: str, table: str) -> int:
    return int(scalar(database_url, f"SELECT count(*) FROM {table}"))
