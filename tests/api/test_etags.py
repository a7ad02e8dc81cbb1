"""Versions and ETags (RFC 7644 §3.14): meta.version, ETag, If-Match and If-None-Match."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.api.test_groups import entra_group
from tests.api.test_users import entra_user
from tests.conftest import Service, TenantClient, count_rows

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TABLES = ("users", "groups", "memberships", "outbox")


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def versioned(response: httpx2.Response, status: int = 200) -> Any:
    """The body of a response carrying one resource; its ETag header equals meta.version."""
    assert response.status_code == status, response.text
    body = response.json()
    version = body["meta"]["version"]
    assert version.startswith('W/"') and version.endswith('"')
    assert response.headers["ETag"] == version
    return body


def rows(service: Service) -> dict[str, int]:
    return {table: count_rows(service.database_url, table) for table in TABLES}


def setup(client: TenantClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A user, a second user and a group holding the first user."""
    first = versioned(client.post("/Users", json=entra_user("first@contoso.com")), 201)
    second = versioned(client.post("/Users", json=entra_user("second@contoso.com")), 201)
    group = versioned(client.post("/Groups", json=entra_group("Versioned")), 201)
    response = client.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": first["id"]}]}),
    )
    assert response.status_code == 204
    group = versioned(client.get(f"/Groups/{group['id']}"))
    assert response.headers["ETag"] == group["meta"]["version"] == 'W/"2"'
    return first, second, group


Resources = tuple[TenantClient, dict[str, Any], dict[str, Any], dict[str, Any]]


@pytest.fixture
def resources(service: Service) -> Resources:
    """A new tenant's client, and in it a user, a second user and a group holding the first."""
    acme = service.tenant()
    return (acme, *setup(acme))


def stale_precondition(response: httpx2.Response, current: str) -> None:
    assert response.status_code == 412, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["status"] == "412"
    assert body["detail"]
    assert response.headers["ETag"] == current


def stale_update_changes_nothing(
    service: Service,
    client: TenantClient,
    method: str,
    path: str,
    stale: str,
    current: str,
    body: Any,
) -> None:
    """``method`` on ``path`` with ``If-Match: stale`` is refused with 412 naming the
    ``current`` version, and leaves the resource and every table as they were."""
    before, counts = client.get(path).json(), rows(service)
    response = client.request(method, path, headers={"If-Match": stale}, json=body)
    stale_precondition(response, current)
    assert client.get(path).json() == before
    assert rows(service) == counts


def test_every_resource_response_has_meta_version_equal_to_etag(resources: Resources) -> None:
    acme, first, _, group = resources
    assert first["meta"]["version"] == 'W/"1"'
    plain = acme.get(f"/Users/{first['id']}")
    versioned(plain)
    projected = acme.get(f"/Users/{first['id']}", params={"attributes": "userName"})
    assert projected.headers["ETag"] == plain.headers["ETag"]
    versioned(acme.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}))
    versioned(acme.put(f"/Users/{first['id']}", json=entra_user("first@contoso.com", title="PUT")))
    versioned(
        acme.patch(
            f"/Users/{first['id']}",
            json=patch({"op": "replace", "path": "title", "value": "PATCH"}),
        )
    )
    versioned(acme.put(f"/Groups/{group['id']}", json=entra_group("Versioned")))
    for kind in ("Users", "Groups"):
        listed = acme.get(f"/{kind}").json()["Resources"]
        assert listed
        for item in listed:
            single = acme.get(f"/{kind}/{item['id']}")
            assert single.headers["ETag"] == item["meta"]["version"]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_user_with_stale_if_match_is_412_and_changes_nothing(
    service: Service, resources: Resources, method: str
) -> None:
    acme, first, _, _ = resources
    current = versioned(
        acme.patch(
            f"/Users/{first['id']}", json=patch({"op": "replace", "path": "title", "value": "v2"})
        )
    )
    if method == "PATCH":
        body = patch({"op": "replace", "path": "title", "value": "lost"})
    else:
        body = entra_user("first@contoso.com", title="lost")
    stale_update_changes_nothing(
        service,
        acme,
        method,
        f"/Users/{first['id']}",
        first["meta"]["version"],
        current["meta"]["version"],
        body,
    )


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_group_with_stale_if_match_is_412_and_changes_nothing(
    service: Service, resources: Resources, method: str
) -> None:
    acme, _, second, group = resources
    if method == "PATCH":
        body = patch(
            {"op": "add", "path": "members", "value": [{"value": second["id"]}]},
            {"op": "replace", "path": "displayName", "value": "Lost"},
        )
    else:
        body = entra_group("Lost")
        body["members"] = [{"value": second["id"]}]
    stale_update_changes_nothing(
        service, acme, method, f"/Groups/{group['id']}", 'W/"1"', group["meta"]["version"], body
    )


@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_delete_with_stale_if_match_is_412_and_keeps_the_resource(
    service: Service, resources: Resources, kind: str
) -> None:
    acme, first, _, group = resources
    target = first if kind == "Users" else group
    acme.patch(
        f"/{kind}/{target['id']}",
        json=patch({"op": "replace", "path": "displayName", "value": "Changed"}),
    )
    current = acme.get(f"/{kind}/{target['id']}")
    counts = rows(service)
    response = acme.delete(
        f"/{kind}/{target['id']}", headers={"If-Match": target["meta"]["version"]}
    )
    stale_precondition(response, current.headers["ETag"])
    assert acme.get(f"/{kind}/{target['id']}").json() == current.json()
    assert rows(service) == counts
    deleted = acme.delete(f"/{kind}/{target['id']}", headers={"If-Match": current.headers["ETag"]})
    assert deleted.status_code == 204
    assert acme.get(f"/{kind}/{target['id']}").status_code == 404


@pytest.mark.parametrize("if_match", ['W/"{n}"', '"{n}"', "*", 'W/"99", W/"{n}"'])
def test_update_with_current_if_match_succeeds_and_bumps_version(
    resources: Resources, if_match: str
) -> None:
    acme, first, second, group = resources
    header = {"If-Match": if_match.format(n=1)}
    patched = versioned(
        acme.patch(
            f"/Users/{first['id']}",
            headers=header,
            json=patch({"op": "replace", "path": "title", "value": "Matched"}),
        )
    )
    assert patched["title"] == "Matched"
    assert patched["meta"]["version"] == 'W/"2"'
    replaced = versioned(
        acme.put(
            f"/Users/{second['id']}",
            headers=header,
            json=entra_user("second@contoso.com", title="Put"),
        )
    )
    assert replaced["meta"]["version"] == 'W/"2"'
    header = {"If-Match": if_match.format(n=2)}
    response = acme.patch(
        f"/Groups/{group['id']}",
        headers=header,
        json=patch({"op": "add", "path": "members", "value": [{"value": second["id"]}]}),
    )
    assert response.status_code == 204
    assert response.headers["ETag"] == 'W/"3"'
    assert versioned(acme.get(f"/Groups/{group['id']}"))["meta"]["version"] == 'W/"3"'


@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_get_with_current_if_none_match_is_304_without_body(
    resources: Resources, kind: str
) -> None:
    acme, first, _, group = resources
    target = first if kind == "Users" else group
    etag = acme.get(f"/{kind}/{target['id']}").headers["ETag"]
    response = acme.get(f"/{kind}/{target['id']}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag
    fresh = acme.get(f"/{kind}/{target['id']}", headers={"If-None-Match": 'W/"99"'})
    assert fresh.status_code == 200
    assert fresh.json()["id"] == target["id"]


def test_version_changes_after_each_patch_and_put(resources: Resources) -> None:
    acme, first, second, group = resources
    seen = {first["meta"]["version"]}
    for title in ("a", "b", "c"):
        patched = versioned(
            acme.patch(
                f"/Users/{first['id']}",
                json=patch({"op": "replace", "path": "title", "value": title}),
            )
        )
        assert patched["meta"]["version"] not in seen
        seen.add(patched["meta"]["version"])
        replaced = versioned(
            acme.put(f"/Users/{first['id']}", json=entra_user("first@contoso.com", title=title * 2))
        )
        assert replaced["meta"]["version"] not in seen
        seen.add(replaced["meta"]["version"])
    assert replaced["meta"]["lastModified"] >= first["meta"]["lastModified"]
    old = group["meta"]["version"]
    response = acme.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "remove", "path": "members", "value": [{"value": first["id"]}]}),
    )
    assert response.status_code == 204
    assert response.headers["ETag"] != old
    renamed = versioned(acme.put(f"/Groups/{group['id']}", json=entra_group("Renamed")))
    assert renamed["meta"]["version"] not in (old, response.headers["ETag"])
    stale = acme.get(f"/Users/{second['id']}", headers={"If-None-Match": 'W/"2"'})
    assert stale.status_code == 200


def test_noop_patch_keeps_version_and_records_nothing(
    service: Service, resources: Resources
) -> None:
    acme, first, second, group = resources
    counts = rows(service)
    user = versioned(
        acme.patch(
            f"/Users/{first['id']}",
            json=patch(
                {"op": "replace", "path": "userName", "value": "first@contoso.com"},
                {"op": "Replace", "path": "active", "value": "True"},
                {"op": "remove", "path": "title"},
                {
                    "op": "replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "first@contoso.com",
                },
            ),
        )
    )
    assert user["meta"] == first["meta"]
    # Unchanged, but answered as a GET shows it now: with the group it joined after its create.
    assert {key: value for key, value in user.items() if key != "groups"} == first
    assert user == acme.get(f"/Users/{first['id']}").json()
    assert [item["value"] for item in user["groups"]] == [group["id"]]
    noops = (
        {"op": "add", "path": "members", "value": [{"value": first["id"]}]},
        {"op": "remove", "path": f'members[value eq "{second["id"]}"]'},
        {"op": "Remove", "path": "members", "value": [{"value": second["id"]}]},
        {"op": "replace", "path": "displayName", "value": "Versioned"},
        {"op": "replace", "path": "members", "value": [{"value": first["id"]}]},
    )
    for operation in noops:
        response = acme.patch(f"/Groups/{group['id']}", json=patch(operation))
        assert response.status_code == 204, operation
        assert response.headers["ETag"] == group["meta"]["version"], operation
    assert acme.get(f"/Groups/{group['id']}").json() == group
    same = versioned(
        acme.put(
            f"/Users/{second['id']}",
            json={key: value for key, value in second.items() if key not in ("id", "meta")},
        )
    )
    assert same["meta"]["version"] == second["meta"]["version"]
    assert rows(service) == counts
