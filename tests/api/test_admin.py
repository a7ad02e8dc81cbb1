"""Admin endpoints: tenant health and the provisioning log, behind the admin token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.routes import admin
from storage import clock, provisioning_log, tenants
from storage.database import open_database
from storage.provisioning_log import Entry
from storage.settings import DatabaseSettings
from tests.conftest import Service, make_app_settings

ADMIN_TOKEN = "admin-" + "s" * 40


def admin_service(database_url: str, admin_token: str | None) -> Iterator[Service]:
    app = create_app(
        make_app_settings(admin_token=admin_token), DatabaseSettings(database_url=database_url)
    )
    app.include_router(admin.router)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Service(http, database_url)


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    yield from admin_service(database_url, ADMIN_TOKEN)


def as_admin(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_log(database_url: str, tenant_name: str, *entries: tuple[str, str, str, int]) -> None:
    """Entries as (operation, result, target name, minutes ago), all for target id u-<name>."""

    async def work() -> None:
        db = await open_database(database_url, pool_size=1)
        try:
            tenant = await tenants.get(db, tenant_name)
            now = clock.now()
            rows: list[Entry] = []
            for operation, result, name, minutes in entries:
                status = {"success": 200, "client_error": 409, "server_error": 500}[result]
                rows.append(
                    provisioning_log.entry(
                        tenant.id,
                        operation,
                        result,
                        source="scim",
                        target_id=f"u-{name}",
                        target_name=name if operation.startswith("POST") else None,
                        status=status,
                        error=None if result == "success" else "userName is already taken",
                        time=clock.stamp(now - timedelta(minutes=minutes)),
                    )
                )
            await provisioning_log.write(db, rows)
        finally:
            await db.close()

    asyncio.run(work())


def test_admin_endpoints_without_admin_token_are_401(service: Service) -> None:
    acme = service.tenant("acme")
    for path in ("/admin/tenants", "/admin/tenants/acme", "/admin/log"):
        assert service.http.get(path).status_code == 401
        assert service.http.get(path, headers=as_admin(acme.token)).status_code == 401
        assert service.http.get(path, headers=as_admin("admin-wrong")).status_code == 401
        assert service.http.get(path, headers={"Authorization": ADMIN_TOKEN}).status_code == 401
        assert service.http.get(path, headers=as_admin()).status_code == 200


def test_admin_endpoints_without_configured_token_refuse_everyone(sqlite_url: str) -> None:
    for service in admin_service(sqlite_url, None):
        response = service.http.get("/admin/tenants", headers=as_admin())
        assert response.status_code == 401
        assert response.json()["detail"] == "a valid admin token is required"


def test_admin_endpoints_with_empty_token_refuse_everyone(sqlite_url: str) -> None:
    # An empty PRINTSYNC_ADMIN_TOKEN means unset: the admin endpoints are off, not open.
    for service in admin_service(sqlite_url, ""):
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"}):
            assert service.http.get("/admin/tenants", headers=headers).status_code == 401


def test_admin_tenants_lists_health_of_every_tenant(service: Service) -> None:
    service.tenant("acme")
    service.tenant("globex")
    write_log(
        service.database_url, "acme", *[("POST /Users", "success", f"u{n}", 30) for n in range(5)]
    )
    write_log(
        service.database_url,
        "acme",
        *[("POST /Users", "client_error", f"x{n}", 5) for n in range(10)],
    )
    response = service.http.get("/admin/tenants", headers=as_admin())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    found = {item["tenant"]: item for item in response.json()["tenants"]}
    assert found["acme"]["state"] == "failing"
    assert found["acme"]["reason"].startswith("67% of SCIM requests in the last hour failed")
    assert found["acme"]["numbers"]["scim_client_errors"] == 10
    assert found["globex"]["state"] == "healthy"


def test_admin_tenant_detail_has_numbers_and_settings(service: Service) -> None:
    service.tenant("acme", notify=("ops@acme.example",))
    write_log(service.database_url, "acme", ("POST /Users", "success", "ada", 3))
    response = service.http.get("/admin/tenants/acme", headers=as_admin())
    assert response.status_code == 200
    data = response.json()
    assert data["tenant"] == "acme" and data["state"] == "healthy"
    assert data["numbers"]["scim_requests"] == 1
    assert data["numbers"]["last_success_at"] is not None
    assert data["settings"]["notify"] == ["ops@acme.example"]
    assert data["notifications"] == []
    assert "token" not in str(data["settings"]).lower()
    missing = service.http.get("/admin/tenants/nope", headers=as_admin())
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no tenant named nope"


def test_admin_log_answers_what_happened_to_a_user(service: Service) -> None:
    service.tenant("acme")
    service.tenant("globex")
    write_log(
        service.database_url,
        "acme",
        ("POST /Users", "success", "Ada@Acme.com", 40),
        ("PATCH /Users", "success", "Ada@Acme.com", 30),
        ("PATCH /Users", "client_error", "Ada@Acme.com", 20),
        ("DELETE /Users", "success", "Ada@Acme.com", 10),
        ("POST /Users", "success", "bob@acme.com", 5),
    )
    write_log(service.database_url, "globex", ("POST /Users", "success", "ada@acme.com", 1))
    response = service.http.get(
        "/admin/log", headers=as_admin(), params={"tenant": "acme", "target": "ada@acme.com"}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 4
    assert [(e["operation"], e["result"]) for e in data["entries"]] == [
        ("DELETE /Users", "success"),
        ("PATCH /Users", "client_error"),
        ("PATCH /Users", "success"),
        ("POST /Users", "success"),
    ]
    assert {e["tenant"] for e in data["entries"]} == {"acme"}
    errors = service.http.get(
        "/admin/log", headers=as_admin(), params={"result": "client_error"}
    ).json()
    assert [e["error"] for e in errors["entries"]] == ["userName is already taken"]
    recent = service.http.get(
        "/admin/log", headers=as_admin(), params={"since": "15m", "limit": "1"}
    ).json()
    assert [e["tenant"] for e in recent["entries"]] == ["globex"]
    across = service.http.get(
        "/admin/log", headers=as_admin(), params={"target": "ADA@acme.com"}
    ).json()
    assert {e["tenant"] for e in across["entries"]} == {"acme", "globex"}


def test_admin_log_bad_parameters_are_400_or_404(service: Service) -> None:
    service.tenant("acme")
    for params in (
        {"result": "nope"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"limit": "ten"},
        {"limit": "100000"},
    ):
        response = service.http.get("/admin/log", headers=as_admin(), params=params)
        assert response.status_code == 400, params
        assert response.json()["scimType"] == "invalidValue"
    unknown = service.http.get("/admin/log", headers=as_admin(), params={"tenant": "nope"})
    assert unknown.status_code == 404
