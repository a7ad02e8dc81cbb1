"""/Groups through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.test_users import entra_user
from tests.builders import members
from tests.conftest import Service, TenantClient, count_rows

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_group(name: str) -> dict[str, Any]:
    return {
        "schemas": [GROUP, MS_GROUP],
        "externalId": str(uuid.uuid4()),
        "displayName": name,
        "meta": {"resourceType": "Group"},
    }


def _user(client: TenantClient, name: str) -> str:
    return str(client.post("/Users", json=entra_user(name)).json()["id"])


def _group_with_member(client: TenantClient, group: str, user: str) -> tuple[str, str]:
    """A group named ``group`` holding a new user ``user``: the group's id and the user's."""
    group_id = str(client.post("/Groups", json=entra_group(group)).json()["id"])
    user_id = _user(client, user)
    client.patch(f"/Groups/{group_id}", json=members("Add", user_id))
    return group_id, user_id


def test_create_group_entra_body_returns_201_without_members(service: Service) -> None:
    acme = service.tenant()
    response = acme.post("/Groups", json=entra_group("Printers-Floor-1"))
    assert response.status_code == 201
    body = response.json()
    assert body["displayName"] == "Printers-Floor-1"
    assert body["schemas"] == [GROUP]
    assert "members" not in body
    assert response.headers["Location"].endswith(f"/Groups/{body['id']}")
    assert response.headers["ETag"] == body["meta"]["version"]


def test_create_group_duplicate_display_name_in_other_case_is_409(service: Service) -> None:
    acme = service.tenant()
    assert acme.post("/Groups", json=entra_group("Sales")).status_code == 201
    response = acme.post("/Groups", json=entra_group("SALES"))
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"
    assert count_rows(service.database_url, "groups") == 1


def test_list_groups_display_name_filter_excluding_members(service: Service) -> None:
    acme = service.tenant()
    group_id, user_id = _group_with_member(acme, "Finance", "f@contoso.com")
    body = acme.get(
        "/Groups", params={"filter": 'displayName eq "finance"', "excludedAttributes": "members"}
    ).json()
    assert body["totalResults"] == 1
    assert "members" not in body["Resources"][0]
    full = acme.get(f"/Groups/{group_id}").json()
    assert [m["value"] for m in full["members"]] == [user_id]


def test_replace_group_put_sets_members_and_name(service: Service) -> None:
    acme = service.tenant()
    created = acme.post("/Groups", json=entra_group("Old")).json()
    first, second = _user(acme, "a@contoso.com"), _user(acme, "b@contoso.com")
    body = entra_group("New")
    body["members"] = [{"value": first}, {"value": second}]
    response = acme.put(f"/Groups/{created['id']}", json=body)
    assert response.status_code == 200
    assert response.json()["displayName"] == "New"
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([first, second])


def test_delete_group_returns_204_then_404_and_drops_memberships(service: Service) -> None:
    acme = service.tenant()
    group_id, _ = _group_with_member(acme, "Temp", "t@contoso.com")
    assert count_rows(service.database_url, "memberships") == 1
    assert acme.delete(f"/Groups/{group_id}").status_code == 204
    assert acme.get(f"/Groups/{group_id}").status_code == 404
    assert acme.delete(f"/Groups/{group_id}").status_code == 404
    assert count_rows(service.database_url, "memberships") == 0


def test_delete_user_drops_its_memberships(service: Service) -> None:
    acme = service.tenant()
    group_id, user_id = _group_with_member(acme, "Team", "leaver@contoso.com")
    assert acme.delete(f"/Users/{user_id}").status_code == 204
    assert "members" not in acme.get(f"/Groups/{group_id}").json()


def test_groups_of_other_tenant_are_invisible(service: Service) -> None:
    acme, globex = service.tenant(), service.tenant()
    created = acme.post("/Groups", json=entra_group("Shared-Name")).json()
    assert globex.get(f"/Groups/{created['id']}").status_code == 404
    assert globex.post("/Groups", json=entra_group("Shared-Name")).status_code == 201
    outsider = _user(globex, "o@globex.com")
    response = acme.patch(
        f"/Groups/{created['id']}",
        json=members("Add", outsider),
    )
    assert response.status_code == 400
    assert count_rows(service.database_url, "memberships") == 0
