"""Tenants and tokens: isolation, 401 and 403, rotation."""

from __future__ import annotations

import asyncio

from storage import tenants
from storage.database import open_database
from tests.api.test_users import entra_user
from tests.conftest import Service, TenantClient


def _disable(database_url: str, name: str) -> None:
    async def work() -> None:
        db = await open_database(database_url)
        try:
            await tenants.set_disabled(db, name, True)
        finally:
            await db.close()

    asyncio.run(work())


def test_tenants_token_of_one_tenant_cannot_read_or_write_another(service: Service) -> None:
    acme = service.tenant("acme")
    globex = service.tenant("globex")
    created = acme.post("/Users", json=entra_user("ada@acme.com")).json()
    # globex's token under acme's Tenant URL: refused as if the token were wrong.
    intruder = TenantClient(service.http, "acme", globex.token)
    for response in (
        intruder.get(f"/Users/{created['id']}"),
        intruder.get("/Users"),
        intruder.post("/Users", json=entra_user("evil@acme.com")),
        intruder.delete(f"/Users/{created['id']}"),
    ):
        assert response.status_code == 401
        assert response.json()["status"] == "401"
    # globex under its own URL sees nothing of acme's.
    assert globex.get(f"/Users/{created['id']}").status_code == 404
    assert (
        globex.get("/Users", params={"filter": 'userName eq "ada@acme.com"'}).json()["totalResults"]
        == 0
    )
    assert globex.get("/Users").json()["totalResults"] == 0
    # The same userName is free in another tenant.
    assert globex.post("/Users", json=entra_user("ada@acme.com")).status_code == 201


def test_tenants_missing_or_wrong_token_is_401_scim_error(service: Service) -> None:
    acme = service.tenant()
    missing = service.http.get(f"{acme.base}/Users")
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/scim+json")
    wrong = TenantClient(service.http, acme.name, "pst_" + "x" * 43).get("/Users")
    assert wrong.status_code == 401
    basic = service.http.get(f"{acme.base}/Users", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_tenants_unknown_tenant_answers_like_a_wrong_token(service: Service) -> None:
    acme = service.tenant()
    response = TenantClient(service.http, "no-such-tenant", acme.token).get("/Users")
    assert response.status_code == 401
    assert "no-such-tenant" not in response.text


def test_tenants_disabled_tenant_gets_403(service: Service) -> None:
    acme = service.tenant()
    _disable(service.database_url, acme.name)
    response = acme.get("/Users")
    assert response.status_code == 403
    assert response.json()["status"] == "403"


def test_tenants_rotated_token_replaces_old_one(service: Service) -> None:
    acme = service.tenant()

    async def rotate(overlap: float) -> str:
        db = await open_database(service.database_url)
        try:
            return await tenants.rotate_token(db, acme.name, overlap_seconds=overlap)
        finally:
            await db.close()

    overlapping = asyncio.run(rotate(3600))
    assert acme.get("/Users").status_code == 200  # old token still valid during overlap
    assert TenantClient(service.http, acme.name, overlapping).get("/Users").status_code == 200
    newest = asyncio.run(rotate(0))
    assert acme.get("/Users").status_code == 401
    assert TenantClient(service.http, acme.name, overlapping).get("/Users").status_code == 401
    assert TenantClient(service.http, acme.name, newest).get("/Users").status_code == 200


def test_tenants_tokens_are_stored_only_as_hashes(service: Service) -> None:
    acme = service.tenant()
    import sqlalchemy as sa

    url = sa.make_url(service.database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM tenants")).all()
    engine.dispose()
    assert acme.token not in repr(rows)
    assert tenants.hash_token(acme.token) in repr(rows)
