"""The tenant's SCIM root through the HTTP API, on SQLite and PostgreSQL: searches across
resource types (``POST /.search``, ``GET`` on the root) and ``/Me``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_groups import GROUP, PATCH, entra_group
from tests.api.test_users import CORE, entra_user
from tests.conftest import Service, TenantClient

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def _search(client: TenantClient, **body: Any) -> dict[str, Any]:
    response = client.post("/.search", json={"schemas": [SEARCH], **body})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    found: dict[str, Any] = response.json()
    assert found["schemas"] == [LIST]
    assert found["itemsPerPage"] == len(found["Resources"])
    return found


def _world(client: TenantClient) -> tuple[list[str], list[str]]:
    """Three users (one without a displayName) and two groups, the first holding two users."""
    users = [
        client.post("/Users", json=entra_user("b@contoso.com", displayName="Bravo")).json()["id"],
        client.post("/Users", json=entra_user("z@contoso.com", displayName="Zulu")).json()["id"],
    ]
    bare = entra_user("n@contoso.com")
    del bare["displayName"]
    users.append(client.post("/Users", json=bare).json()["id"])
    groups = [
        client.post("/Groups", json=entra_group("Alpha")).json()["id"],
        client.post("/Groups", json=entra_group("Mike")).json()["id"],
    ]
    members = [{"value": users[0]}, {"value": users[2]}]
    response = client.patch(
        f"/Groups/{groups[0]}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": members}],
        },
    )
    assert response.status_code == 204
    return users, groups


def test_search_without_parameters_lists_users_then_groups(service: Service) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    other = service.tenant()
    _world(other)
    found = _search(acme)
    assert found["totalResults"] == 5
    assert found["startIndex"] == 1
    assert [item["id"] for item in found["Resources"]] == users + groups
    assert [item["meta"]["resourceType"] for item in found["Resources"]] == ["User"] * 3 + [
        "Group"
    ] * 2
    alpha = found["Resources"][3]
    assert [member["value"] for member in alpha["members"]] == [users[0], users[2]]
    assert all("groups" not in item for item in found["Resources"][:3])  # stored bytes


def test_search_attributes_keep_schemas_and_id_of_each_type(service: Service) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    found = _search(acme, attributes=["externalId"])
    for item in found["Resources"]:
        assert set(item) == {"schemas", "id", "externalId"}
    assert found["Resources"][0]["schemas"] == [CORE]
    assert found["Resources"][3]["schemas"] == [GROUP]
    excluded = _search(acme, excludedAttributes=["members", "name"])
    assert all("members" not in item and "name" not in item for item in excluded["Resources"])
    assert excluded["Resources"][0]["userName"] == "b@contoso.com"
    listed = _search(acme, attributes=["groups", "members"])
    by_id = {item["id"]: item for item in listed["Resources"]}
    assert [group["value"] for group in by_id[users[0]]["groups"]] == [groups[0]]
    assert "groups" not in by_id[users[1]]
    assert len(by_id[groups[0]]["members"]) == 2


def test_search_filter_on_an_attribute_of_one_type_is_false_for_the_other(
    service: Service,
) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    by_name = _search(acme, filter='userName eq "Z@CONTOSO.COM" or displayName eq "mike"')
    assert [item["id"] for item in by_name["Resources"]] == [users[1], groups[1]]
    assert by_name["totalResults"] == 2
    present = _search(acme, filter="members pr")
    assert [item["id"] for item in present["Resources"]] == [groups[0]]
    negated = _search(acme, filter='not (userName sw "b")')
    assert [item["id"] for item in negated["Resources"]] == [users[1], users[2], *groups]
    typed = _search(acme, filter='meta.resourceType eq "Group"')
    assert [item["id"] for item in typed["Resources"]] == groups
    unknown = acme.post("/.search", json={"schemas": [SEARCH], "filter": 'nosuch eq "x"'})
    assert unknown.status_code == 400
    assert unknown.json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_search_sort_merges_the_types(service: Service, order: str) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    found = _search(acme, sortBy="displayName", sortOrder=order)
    expected = [groups[0], users[0], groups[1], users[1]]  # Alpha, Bravo, Mike, Zulu
    if order == "descending":
        expected = [users[2], *reversed(expected)]
    else:
        expected = [*expected, users[2]]  # no displayName: last when ascending
    assert [item["id"] for item in found["Resources"]] == expected
    user_only = _search(acme, sortBy="userName")
    assert [item["id"] for item in user_only["Resources"]] == [
        users[0],
        users[2],
        users[1],
        *groups,
    ]
    unknown = acme.post("/.search", json={"schemas": [SEARCH], "sortBy": "nosuch"})
    assert unknown.status_code == 400
    assert unknown.json()["scimType"] == "invalidValue"


def test_search_pages_by_index_over_the_merged_list(service: Service) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    everything = users + groups
    for start in range(1, 7):
        for count in (1, 2, 4):
            found = _search(acme, startIndex=start, count=count)
            assert found["totalResults"] == 5
            assert found["startIndex"] == start
            assert [item["id"] for item in found["Resources"]] == everything[
                start - 1 : start - 1 + count
            ]
    sorted_page = _search(acme, sortBy="displayName", startIndex=2, count=2)
    assert [item["id"] for item in sorted_page["Resources"]] == [users[0], groups[1]]
    filtered = _search(acme, filter="displayName pr", startIndex=3, count=10)
    assert filtered["totalResults"] == 4
    assert [item["id"] for item in filtered["Resources"]] == groups


def test_search_pages_by_cursor_across_types_while_deleting(service: Service) -> None:
    acme = service.tenant()
    users, groups = _world(acme)
    for params in (
        {},
        {"sortBy": "displayName"},
        {"sortBy": "displayName", "sortOrder": "descending"},
    ):
        expected = [item["id"] for item in _search(acme, count=100, **params)["Resources"]]
        seen: list[str] = []
        page = _search(acme, count=2, cursor="", **params)
        while True:
            seen += [item["id"] for item in page["Resources"]]
            assert "startIndex" not in page
            if "nextCursor" not in page:
                break
            page = _search(acme, count=2, cursor=page["nextCursor"], **params)
        assert seen == expected, params
    # A cursor of the root search opens nothing else.
    cursor = _search(acme, count=1, cursor="")["nextCursor"]
    refused = acme.get("/Users", params={"cursor": cursor})
    assert refused.status_code == 400
    assert refused.json()["scimType"] == "invalidCursor"
    # Deleting the resource a cursor stands on skips nothing.
    page = _search(acme, count=2, cursor="")
    assert acme.delete(f"/Users/{users[1]}").status_code == 204
    rest = _search(acme, count=10, cursor=page["nextCursor"])
    assert [item["id"] for item in rest["Resources"]] == [users[2], *groups]


def test_get_on_the_root_queries_every_type(service: Service) -> None:
    acme = service.tenant()
    _, groups = _world(acme)
    response = acme.get("", params={"filter": 'displayName sw "m"', "attributes": "displayName"})
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["Resources"]] == [groups[1]]


def test_search_body_errors_are_400(service: Service) -> None:
    acme = service.tenant()
    assert acme.post("/.search", json={"filter": "userName pr"}).json()["scimType"] == (
        "invalidValue"
    )
    bad = acme.post("/.search", json={"schemas": [SEARCH], "filter": "(userName pr"})
    assert (bad.status_code, bad.json()["scimType"]) == (400, "invalidFilter")
    assert acme.post("/.search", json=[1]).status_code == 400


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_me_answers_501_with_a_scim_error_after_authentication(
    service: Service, method: str
) -> None:
    acme = service.tenant()
    body = entra_user("me@contoso.com") if method in ("POST", "PUT", "PATCH") else None
    response = acme.request(method, "/Me", json=body)
    assert response.status_code == 501
    assert response.headers["content-type"].startswith("application/scim+json")
    error = response.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "501"
    assert "scimType" not in error
    assert "/Me" in error["detail"]
    anonymous = acme.http.request(method, f"{acme.base}/Me")
    assert anonymous.status_code == 401
