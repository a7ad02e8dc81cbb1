"""/Users through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Service, count_rows

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PRINTSYNC = "urn:ietf:params:scim:schemas:extension:printsync:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def entra_user(user_name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "displayName": "Ada Lovelace",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "roles": [],
    }
    body.update(extra)
    return body


def full_user(user_name: str) -> dict[str, Any]:
    """Every attribute Entra's default mappings send, and the print extension."""
    return {
        "schemas": [CORE, ENTERPRISE, PRINTSYNC],
        "externalId": "0a21f0f2-8d2a-4f8e-8e4e-3f7d1c9a0b11",
        "userName": user_name,
        "active": True,
        "displayName": "Grace Hopper",
        "title": "Rear Admiral",
        "preferredLanguage": "en-US",
        "userType": "Employee",
        "name": {"givenName": "Grace", "familyName": "Hopper", "formatted": "Grace Hopper"},
        "emails": [
            {"primary": True, "type": "work", "value": user_name},
            {"type": "home", "value": "grace@example.org"},
        ],
        "phoneNumbers": [
            {"type": "work", "value": "+1 555 0100"},
            {"type": "mobile", "value": "+1 555 0101"},
            {"type": "fax", "value": "+1 555 0102"},
        ],
        "addresses": [
            {
                "type": "work",
                "formatted": "1 Navy Way",
                "streetAddress": "1 Navy Way",
                "locality": "Arlington",
                "region": "VA",
                "postalCode": "22201",
                "country": "US",
                "primary": True,
            }
        ],
        ENTERPRISE: {
            "employeeNumber": "1906",
            "costCenter": "CC-7",
            "organization": "Navy",
            "division": "Computing",
            "department": "COBOL",
            "manager": {"value": "b2c3"},
        },
        PRINTSYNC: {"cardNumber": "0042", "secondaryCardNumber": "0043", "office": "Bldg 9"},
    }


def test_create_user_entra_body_returns_201_with_location_and_etag(service: Service) -> None:
    acme = service.tenant()
    response = acme.post("/Users", json=entra_user("ada@contoso.com"))
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["id"]
    assert response.headers["Location"] == f"http://testserver{acme.base}/Users/{body['id']}"
    assert response.headers["ETag"] == body["meta"]["version"]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == response.headers["Location"]
    assert body["userName"] == "ada@contoso.com"
    assert body["active"] is True
    assert "password" not in body


def test_create_user_every_mapped_attribute_round_trips_exactly(service: Service) -> None:
    acme = service.tenant()
    sent = full_user("grace@contoso.com")
    created = acme.post("/Users", json=sent).json()
    fetched = acme.get(f"/Users/{created['id']}").json()
    for key, value in sent.items():
        if key == "schemas":
            assert set(fetched["schemas"]) == set(value)
        else:
            assert fetched[key] == value, key


def test_create_user_string_boolean_active_is_stored_as_boolean(service: Service) -> None:
    acme = service.tenant()
    body = acme.post("/Users", json=entra_user("b@contoso.com", active="True")).json()
    assert body["active"] is True


def test_create_user_duplicate_username_differing_in_case_is_409(service: Service) -> None:
    acme = service.tenant()
    assert acme.post("/Users", json=entra_user("Ada@Contoso.com")).status_code == 201
    response = acme.post("/Users", json=entra_user("ada@CONTOSO.com"))
    assert response.status_code == 409
    error = response.json()
    assert error["status"] == "409"
    assert error["scimType"] == "uniqueness"
    assert error["detail"]
    assert count_rows(service.database_url, "users") == 1


def test_create_user_duplicate_external_id_is_409(service: Service) -> None:
    acme = service.tenant()
    first = entra_user("one@contoso.com")
    assert acme.post("/Users", json=first).status_code == 201
    second = entra_user("two@contoso.com", externalId=first["externalId"])
    assert acme.post("/Users", json=second).status_code == 409


def test_list_users_test_connection_probe_returns_empty_list(service: Service) -> None:
    acme = service.tenant()
    probe = f'userName eq "{uuid.uuid4()}"'
    response = acme.get("/Users", params={"filter": probe})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 0
    assert body["Resources"] == []
    assert body["startIndex"] == 1


def test_list_users_eq_filters_match_case_insensitively_where_rfc_says(service: Service) -> None:
    acme = service.tenant()
    sent = entra_user("Match.Me@Contoso.com")
    created = acme.post("/Users", json=sent).json()
    acme.post("/Users", json=entra_user("other@contoso.com"))
    filters = [
        'userName eq "match.me@contoso.com"',
        f'externalId eq "{sent["externalId"]}"',
        'emails[type eq "work"].value eq "MATCH.ME@contoso.com"',
        f'id eq "{created["id"]}"',
        f'userName eq "Match.Me@Contoso.com" and externalId eq "{sent["externalId"]}"',
    ]
    for expression in filters:
        body = acme.get("/Users", params={"filter": expression}).json()
        assert [r["id"] for r in body["Resources"]] == [created["id"]], expression
        assert body["totalResults"] == 1


def test_list_users_external_id_is_case_exact(service: Service) -> None:
    acme = service.tenant()
    acme.post("/Users", json=entra_user("a@contoso.com", externalId="AbC"))
    body = acme.get("/Users", params={"filter": 'externalId eq "abc"'}).json()
    assert body["totalResults"] == 0


def test_list_users_pagination_echoes_start_index_and_caps_count(service: Service) -> None:
    acme = service.tenant()
    for number in range(7):
        acme.post("/Users", json=entra_user(f"user{number}@contoso.com"))
    body = acme.get("/Users", params={"startIndex": 3, "count": 2}).json()
    assert body["startIndex"] == 3
    assert body["itemsPerPage"] == 2
    assert body["totalResults"] == 7
    assert [r["userName"] for r in body["Resources"]] == ["user2@contoso.com", "user3@contoso.com"]
    tail = acme.get("/Users", params={"startIndex": 6, "count": 5}).json()
    assert tail["totalResults"] == 7
    assert tail["itemsPerPage"] == 2
    none = acme.get("/Users", params={"count": 0}).json()
    assert none["totalResults"] == 7 and none["Resources"] == []


def test_replace_user_put_replaces_document_and_bumps_version(service: Service) -> None:
    acme = service.tenant()
    created = acme.post("/Users", json=entra_user("put@contoso.com")).json()
    replacement = entra_user("put@contoso.com", displayName="Renamed", active=False)
    response = acme.put(f"/Users/{created['id']}", json=replacement)
    assert response.status_code == 200
    body = response.json()
    assert body["displayName"] == "Renamed"
    assert body["active"] is False
    assert body["meta"]["version"] != created["meta"]["version"]
    assert body["meta"]["created"] == created["meta"]["created"]


def test_delete_user_returns_204_then_404(service: Service) -> None:
    acme = service.tenant()
    created = acme.post("/Users", json=entra_user("gone@contoso.com")).json()
    assert acme.delete(f"/Users/{created['id']}").status_code == 204
    again = acme.get(f"/Users/{created['id']}")
    assert again.status_code == 404
    assert again.json()["status"] == "404"
    assert acme.delete(f"/Users/{created['id']}").status_code == 404


def test_get_user_unknown_id_is_404_scim_error(service: Service) -> None:
    acme = service.tenant()
    response = acme.get(f"/Users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_create_user_records_print_account_effect_in_same_transaction(service: Service) -> None:
    acme = service.tenant()
    acme.post("/Users", json=entra_user("fx@contoso.com"))
    assert count_rows(service.database_url, "outbox") == 1


def test_create_user_accepts_application_json_body(service: Service) -> None:
    acme = service.tenant()
    import orjson

    response = acme.post(
        "/Users",
        content=orjson.dumps(entra_user("j@contoso.com")),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201
