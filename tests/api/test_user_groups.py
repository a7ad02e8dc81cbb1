"""A user's readOnly ``groups`` (RFC 7643 §4.1.2) through the HTTP API, on SQLite and
PostgreSQL: shown on a read by id and in the answers to writes, in lists and searches only when
``attributes`` asks for it, always the current memberships, never writable."""

from __future__ import annotations

from typing import Any

from tests.api.test_groups import PATCH, entra_group
from tests.api.test_users import entra_user
from tests.conftest import Service, TenantClient

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def _member(client: TenantClient, group_id: str, user_id: str, op: str = "add") -> None:
    value = [{"value": user_id}]
    response = client.patch(
        f"/Groups/{group_id}", json=_patch({"op": op, "path": "members", "value": value})
    )
    assert response.status_code == 204, response.text


def _world(client: TenantClient) -> tuple[str, str, list[str]]:
    """ada in two groups, bob in none."""
    ada = client.post("/Users", json=entra_user("ada@contoso.com")).json()["id"]
    bob = client.post("/Users", json=entra_user("bob@contoso.com")).json()["id"]
    groups = [
        client.post("/Groups", json=entra_group(name)).json()["id"] for name in ("Zeta", "Eta")
    ]
    for group_id in groups:
        _member(client, group_id, ada)
    return ada, bob, groups


def _listed(client: TenantClient, ids: list[str], names: list[str]) -> list[dict[str, str]]:
    """The ``groups`` a user in the groups ``ids`` (named ``names``) shows."""
    return [
        {
            "value": group_id,
            "$ref": f"http://testserver{client.base}/Groups/{group_id}",
            "type": "direct",
            "display": name,
        }
        for group_id, name in zip(ids, names, strict=True)
    ]


def test_get_by_id_shows_direct_groups_with_refs(service: Service) -> None:
    acme = service.tenant()
    ada, bob, groups = _world(acme)
    user = acme.get(f"/Users/{ada}").json()
    assert user["groups"] == _listed(acme, groups, ["Zeta", "Eta"])
    assert list(user)[-1] == "meta"
    assert "groups" not in acme.get(f"/Users/{bob}").json()  # none: unassigned, left out


def test_projection_of_groups_on_get_by_id(service: Service) -> None:
    acme = service.tenant()
    ada, _, _ = _world(acme)
    only = acme.get(f"/Users/{ada}", params={"attributes": "groups.display"}).json()
    assert only == {
        "schemas": only["schemas"],
        "id": ada,
        "groups": [{"display": "Zeta"}, {"display": "Eta"}],
    }
    without = acme.get(f"/Users/{ada}", params={"excludedAttributes": "groups"}).json()
    assert "groups" not in without and without["userName"] == "ada@contoso.com"
    other = acme.get(f"/Users/{ada}", params={"attributes": "userName"}).json()
    assert "groups" not in other


def test_lists_show_groups_only_when_attributes_names_them(service: Service) -> None:
    acme = service.tenant()
    ada, bob, groups = _world(acme)
    plain = acme.get("/Users").json()["Resources"]
    assert all("groups" not in item for item in plain)
    excluded = acme.get("/Users", params={"excludedAttributes": "name"}).json()["Resources"]
    assert all("groups" not in item for item in excluded)
    asked = acme.get("/Users", params={"attributes": "userName,groups"}).json()["Resources"]
    assert asked[0] == {
        "schemas": asked[0]["schemas"],
        "id": ada,
        "userName": "ada@contoso.com",
        "groups": _listed(acme, groups, ["Zeta", "Eta"]),
    }
    assert asked[1] == {"schemas": asked[1]["schemas"], "id": bob, "userName": "bob@contoso.com"}
    filtered = acme.get(
        "/Users", params={"filter": f'groups eq "{groups[1]}"', "attributes": "groups.value"}
    ).json()
    assert filtered["Resources"] == [
        {
            "schemas": filtered["Resources"][0]["schemas"],
            "id": ada,
            "groups": [{"value": groups[0]}, {"value": groups[1]}],
        }
    ]
    searched = acme.post(
        "/Users/.search", json={"schemas": [SEARCH], "attributes": ["groups"], "count": 1}
    ).json()
    assert [group["display"] for group in searched["Resources"][0]["groups"]] == ["Zeta", "Eta"]
    by_cursor = acme.get("/Users", params={"attributes": "groups", "cursor": "", "count": 1})
    assert len(by_cursor.json()["Resources"][0]["groups"]) == 2


def test_groups_follow_memberships_renames_and_deletes(service: Service) -> None:
    acme = service.tenant()
    ada, _, groups = _world(acme)
    renamed = acme.patch(
        f"/Groups/{groups[1]}",
        json=_patch({"op": "replace", "path": "displayName", "value": "Theta"}),
    )
    assert renamed.status_code == 204
    _member(acme, groups[0], ada, op="remove")
    assert [g["display"] for g in acme.get(f"/Users/{ada}").json()["groups"]] == ["Theta"]
    assert acme.delete(f"/Groups/{groups[1]}").status_code == 204
    assert "groups" not in acme.get(f"/Users/{ada}").json()


def test_writes_answer_with_groups_and_never_change_them(service: Service) -> None:
    acme = service.tenant()
    ada, _, groups = _world(acme)
    smuggled = [{"value": groups[0], "display": "Zeta"}]
    created = acme.post("/Users", json=entra_user("eve@contoso.com", groups=smuggled))
    assert created.status_code == 201
    eve = created.json()
    assert "groups" not in eve  # readOnly: ignored
    assert "groups" not in acme.get(f"/Users/{eve['id']}").json()
    replaced = acme.put(f"/Users/{ada}", json=entra_user("ada@contoso.com", groups=[]))
    assert replaced.status_code == 200
    assert len(replaced.json()["groups"]) == 2  # memberships are the group's to change
    patched = acme.patch(
        f"/Users/{ada}", json=_patch({"op": "replace", "path": "title", "value": "X"})
    )
    assert patched.status_code == 200
    assert patched.json() == acme.get(f"/Users/{ada}").json()
    assert len(patched.json()["groups"]) == 2
    refused = acme.patch(
        f"/Users/{ada}", json=_patch({"op": "add", "path": "groups", "value": smuggled})
    )
    assert refused.status_code == 400
    assert refused.json()["scimType"] == "mutability"
    projected = acme.patch(
        f"/Users/{ada}",
        params={"attributes": "userName"},
        json=_patch({"op": "replace", "path": "title", "value": "Y"}),
    )
    assert "groups" not in projected.json()
