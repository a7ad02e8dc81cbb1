"""/ServiceProviderConfig, /ResourceTypes, /Schemas."""

from __future__ import annotations

from typing import Any

from tests.conftest import Service


def _no_nulls(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(_no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    return True


def test_service_provider_config_announces_patch_filter_and_cap(service: Service) -> None:
    acme = service.tenant()
    body = acme.get("/ServiceProviderConfig").json()
    assert body["patch"]["supported"] is True
    assert body["filter"]["supported"] is True
    assert body["filter"]["maxResults"] == 1000
    assert body["etag"]["supported"] is True


def test_schemas_list_user_group_enterprise_and_printsync_without_nulls(service: Service) -> None:
    acme = service.tenant()
    response = acme.get("/Schemas")
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    ids = {schema["id"] for schema in body["Resources"]}
    assert ids == {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:printsync:2.0:User",
    }
    assert _no_nulls(body)
    printsync = next(s for s in body["Resources"] if "printsync" in s["id"])
    assert {a["name"] for a in printsync["attributes"]} == {
        "cardNumber",
        "secondaryCardNumber",
        "office",
    }
    user = next(s for s in body["Resources"] if s["id"].endswith("core:2.0:User"))
    user_name = next(a for a in user["attributes"] if a["name"] == "userName")
    assert user_name["mutability"] == "readWrite"
    assert user_name["caseExact"] is False


def test_resource_types_user_has_extensions_and_group_exists(service: Service) -> None:
    acme = service.tenant()
    body = acme.get("/ResourceTypes").json()
    by_name = {rt["name"]: rt for rt in body["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert {e["schema"] for e in by_name["User"]["schemaExtensions"]} == {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:printsync:2.0:User",
    }
    assert by_name["Group"]["endpoint"] == "/Groups"
    assert acme.get("/ResourceTypes/User").json()["id"] == "User"
    assert acme.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").status_code == 200
    assert acme.get("/Schemas/urn:nope").status_code == 404
