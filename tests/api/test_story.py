"""A user's story in the provisioning log: what each write changed, and the group changes that
touched the user, through the path Entra takes (HTTP), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from storage import health, provisioning_log, tenants
from storage.database import open_database
from storage.provisioning_log import Entry, LogQuery
from storage.settings import DatabaseSettings
from tests.api.test_users import entra_user
from tests.conftest import TenantClient, create_tenant, make_app_settings

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def search(database_url: str, target: str | None = None) -> list[Entry]:
    """acme's entries (for ``target``), oldest first, read once the app has stopped."""

    async def read() -> list[Entry]:
        db = await open_database(database_url, pool_size=1)
        try:
            tenant = await tenants.get(db, "acme")
            found = await provisioning_log.search(db, LogQuery(tenant_id=tenant.id, target=target))
        finally:
            await db.close()
        return found[::-1]

    return asyncio.run(read())


@pytest.fixture
def acme(database_url: str) -> Iterator[TenantClient]:
    app = create_app(make_app_settings(), DatabaseSettings(database_url=database_url))
    token = create_tenant(database_url, "acme")
    with TestClient(app, raise_server_exceptions=False) as http:
        yield TenantClient(http, "acme", token)


def story(database_url: str, target: str) -> list[tuple[str, str, str]]:
    return [
        (item.source, item.operation, provisioning_log.describe(item).text())
        for item in search(database_url, target)
    ]


def test_user_story_tells_created_disabled_reenabled_updated_and_group_changes(
    acme: TenantClient, database_url: str
) -> None:
    ada = acme.post("/Users", json=entra_user("ada@acme.example")).json()["id"]
    bob = acme.post("/Users", json=entra_user("bob@acme.example")).json()["id"]
    disable = patch({"op": "Replace", "path": "active", "value": "False"})
    assert acme.patch(f"/Users/{ada}", json=disable).status_code == 200
    enable = patch(
        {"op": "replace", "path": "active", "value": True},
        {"op": "replace", "path": "displayName", "value": "Ada King"},
    )
    assert acme.patch(f"/Users/{ada}", json=enable).status_code == 200
    assert acme.patch(f"/Users/{ada}", json=enable).status_code == 200  # changes nothing
    group = acme.post(
        "/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"},
    ).json()["id"]
    add = patch({"op": "Add", "path": "members", "value": [{"value": ada}, {"value": bob}]})
    assert acme.patch(f"/Groups/{group}", json=add).status_code == 204
    remove = patch({"op": "Remove", "path": f'members[value eq "{ada}"]'})
    assert acme.patch(f"/Groups/{group}", json=remove).status_code == 204
    assert acme.post("/Users", json=entra_user("ada@acme.example")).status_code == 409
    acme.http.__exit__(None, None, None)  # stop the app: its buffered entries are written

    assert story(database_url, "ADA@acme.example") == [
        ("scim", "POST /Users", "created"),
        ("scim", "PATCH /Users", "disabled (active: true -> false)"),
        ("scim", "PATCH /Users", "re-enabled, updated displayName (active: false -> true)"),
        ("scim", "PATCH /Users", "no change"),
        ("group", "PATCH /Groups", "added to group Sales"),
        ("group", "PATCH /Groups", "removed from group Sales"),
        ("scim", "POST /Users", "create refused (409: userName is already taken)"),
    ]
    # The same story by id, and by the work e-mail Entra sent.
    assert len(story(database_url, ada)) == 7
    assert story(database_url, "bob@acme.example")[-1] == (
        "group",
        "PATCH /Groups",
        "added to group Sales",
    )
    sales = [item for item in search(database_url, "Sales") if item.source == "scim"]
    assert [provisioning_log.describe(item).text() for item in sales] == [
        "group created",
        "2 members added: ada@acme.example, bob@acme.example",
        "1 member removed: ada@acme.example",
    ]
    # Every PATCH entry is named, and the group entries carry the group's id and name.
    entries = search(database_url, ada)
    assert {item.target_name for item in entries} == {"ada@acme.example"}
    joined = next(item for item in entries if item.source == "group")
    assert joined.changes == {"membership": "added", "group": {"id": group, "name": "Sales"}}


def test_user_found_by_work_email_when_it_differs_from_user_name(
    acme: TenantClient, database_url: str
) -> None:
    body = entra_user(
        "adele.vance@contoso.example",
        emails=[{"type": "work", "primary": True, "value": "adele@mail.contoso.example"}],
    )
    user = acme.post("/Users", json=body).json()["id"]
    acme.http.__exit__(None, None, None)
    found = search(database_url, "ADELE@mail.contoso.example")
    assert [(item.operation, item.target_id) for item in found] == [("POST /Users", user)]


def test_group_entries_do_not_count_as_scim_requests_in_health(
    acme: TenantClient, database_url: str
) -> None:
    users = [
        acme.post("/Users", json=entra_user(f"u{n}@acme.example")).json()["id"] for n in range(4)
    ]
    group = acme.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "All",
            "members": [{"value": user} for user in users],
        },
    ).json()["id"]
    acme.http.__exit__(None, None, None)
    assert len([item for item in search(database_url, None) if item.source == "group"]) == 4
    assert all(item.target_id != group for item in search(database_url, None)[5:])

    async def requests() -> int:
        db = await open_database(database_url, pool_size=1)
        try:
            state = await health.read(db, await tenants.get(db, "acme"))
        finally:
            await db.close()
        return state.numbers.scim_requests

    assert asyncio.run(requests()) == 5


def test_changes_never_hold_attribute_values(acme: TenantClient, database_url: str) -> None:
    user = acme.post("/Users", json=entra_user("cara@acme.example")).json()["id"]
    secret_card = "4929123456781234"
    body = patch(
        {
            "op": "add",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "value": secret_card,
        }
    )
    assert acme.patch(f"/Users/{user}", json=body).status_code == 200
    acme.http.__exit__(None, None, None)
    entries = search(database_url, user)
    assert entries[-1].changes == {"attributes": ["employeeNumber"]}
    assert secret_card not in repr(entries)
