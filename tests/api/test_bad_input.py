"""Malformed requests get a 400 SCIM error and change nothing."""

from __future__ import annotations

import pytest

from tests.api.test_users import entra_user
from tests.conftest import Service, count_rows

BAD_BODIES = [
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[]",
    b'"a string"',
    b"{}",
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}',
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":""}',
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":42}',
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","emails":"x"}',
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","active":"maybe"}',
    b'{"schemas":["urn:example:unknown"],"userName":"a"}',
    b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:example:x"],"userName":"a"}',
    b'{"userName":"no-schemas"}',
]


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_create_user_malformed_body_is_400_and_stores_nothing(service: Service, raw: bytes) -> None:
    acme = service.tenant()
    response = acme.post("/Users", content=raw, headers={"Content-Type": "application/scim+json"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "400"
    assert body["detail"]
    assert body.get("scimType") in ("invalidSyntax", "invalidValue")
    assert count_rows(service.database_url, "users") == 0
    assert count_rows(service.database_url, "outbox") == 0


def test_replace_user_malformed_body_leaves_user_unchanged(service: Service) -> None:
    acme = service.tenant()
    created = acme.post("/Users", json=entra_user("keep@contoso.com")).json()
    response = acme.put(
        f"/Users/{created['id']}",
        content=b'{"userName": 5}',
        headers={"Content-Type": "application/scim+json"},
    )
    assert response.status_code == 400
    assert acme.get(f"/Users/{created['id']}").json() == created


def test_list_users_bad_filter_is_400_invalid_filter(service: Service) -> None:
    acme = service.tenant()
    for expression in ("userName eq", 'userName xx "a"', '((userName eq "a"', 'nosuch eq "a"'):
        response = acme.get("/Users", params={"filter": expression})
        assert response.status_code == 400, expression
        assert response.json()["scimType"] == "invalidFilter"


def test_list_users_non_integer_paging_is_400(service: Service) -> None:
    acme = service.tenant()
    response = acme.get("/Users", params={"startIndex": "abc"})
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"


def test_create_user_wrong_media_type_is_415(service: Service) -> None:
    acme = service.tenant()
    response = acme.post("/Users", content=b"userName=a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["status"] == "415"


def test_create_user_oversized_body_is_413(service: Service) -> None:
    acme = service.tenant()
    huge = entra_user("big@contoso.com", displayName="x" * 2_000_000)
    response = acme.post("/Users", json=huge)
    assert response.status_code == 413
    assert count_rows(service.database_url, "users") == 0


def test_unknown_endpoint_is_404_scim_error(service: Service) -> None:
    acme = service.tenant()
    response = acme.get("/Printers")
    assert response.status_code == 404
    assert response.json()["status"] == "404"


def test_wrong_method_is_405_naming_every_method_of_the_path(service: Service) -> None:
    acme = service.tenant()
    user = acme.post("/Users", json=entra_user("stay@contoso.com")).json()
    for path, allowed in (
        ("/Users", "GET, POST"),
        (f"/Users/{user['id']}", "DELETE, GET, PATCH, PUT"),
    ):
        response = acme.request("PUT" if path == "/Users" else "POST", path, json={})
        assert response.status_code == 405, path
        assert response.headers["allow"] == allowed
        assert response.json()["status"] == "405"
    assert acme.get(f"/Users/{user['id']}").json() == user
