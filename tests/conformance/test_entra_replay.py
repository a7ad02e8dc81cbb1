"""Entra ID's request sequences replayed through the HTTP API, in both of Entra's dialects.

"Legacy" is Entra's default dialect (capitalised ops, string booleans, member ``Remove`` with a
value list); "flag" is what Entra sends when ``aadOptscim062020`` is appended to the Tenant URL
(lowercase ops, real booleans, path-less ``replace`` keyed by paths, filtered member removal).
Every trap listed in docs ENTRA.md §8 has its own ``test_trap_*`` test. Each test runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx2
import pytest

from tests.api.test_groups import GROUP, MS_GROUP, entra_group
from tests.api.test_users import CORE, ENTERPRISE, PRINTSYNC, entra_user, full_user
from tests.conftest import Service, TenantClient, count_rows

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"
SERVER_OWNED = ("id", "meta", "schemas")


# Helpers -----------------------------------------------------------------------------------


def scim(response: httpx2.Response, status: int) -> Any:
    """The parsed body of a SCIM response, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == SCIM_JSON
    return response.json()


def scim_error(response: httpx2.Response, status: int, scim_type: str | None = None) -> Any:
    body = scim(response, status)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    if scim_type is not None:
        assert body["scimType"] == scim_type
    return body


def no_content(response: httpx2.Response) -> None:
    assert response.status_code == 204, response.text
    assert response.content == b""


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def listing(response: httpx2.Response) -> list[dict[str, Any]]:
    """The Resources of a 200 ListResponse whose counts agree with its page."""
    body = scim(response, 200)
    assert body["schemas"] == [LIST]
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == len(body["Resources"])
    assert body["totalResults"] == len(body["Resources"])
    resources: list[dict[str, Any]] = body["Resources"]
    return resources


def attributes(doc: dict[str, Any]) -> dict[str, Any]:
    """A resource without its server-owned parts."""
    return {key: value for key, value in doc.items() if key not in SERVER_OWNED}


def new_user(client: TenantClient, user_name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = scim(client.post("/Users", json=entra_user(user_name, **extra)), 201)
    return body


def new_group(client: TenantClient, name: str) -> dict[str, Any]:
    body: dict[str, Any] = scim(client.post("/Groups", json=entra_group(name)), 201)
    return body


def user(client: TenantClient, user_id: str) -> dict[str, Any]:
    body: dict[str, Any] = scim(client.get(f"/Users/{user_id}"), 200)
    return body


def member_ids(client: TenantClient, group_id: str) -> list[str]:
    body = scim(client.get(f"/Groups/{group_id}"), 200)
    return sorted(member["value"] for member in body.get("members", []))


def members_op(op: str, *user_ids: str) -> dict[str, Any]:
    return {"op": op, "path": "members", "value": [{"value": uid} for uid in user_ids]}


def patch_user(client: TenantClient, user_id: str, *operations: dict[str, Any]) -> Any:
    """A user PATCH that must succeed: 200 with the full resource, equal to a fresh GET."""
    body = scim(client.patch(f"/Users/{user_id}", json=patch(*operations)), 200)
    assert body == user(client, user_id)
    return body


def patch_group(client: TenantClient, group_id: str, *operations: dict[str, Any]) -> None:
    """A group PATCH that must succeed: 204 and no member list."""
    no_content(client.patch(f"/Groups/{group_id}", json=patch(*operations)))


def work_email(doc: dict[str, Any]) -> dict[str, Any]:
    found = [email for email in doc.get("emails", []) if email.get("type") == "work"]
    assert len(found) == 1, doc.get("emails")
    email: dict[str, Any] = found[0]
    return email


def by_type(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    indexed = {item["type"]: item for item in items}
    assert len(indexed) == len(items), items
    return indexed


def enterprise(path: str) -> str:
    return f"{ENTERPRISE}:{path}"


DIALECTS = ["legacy", "flag"]


def op_name(dialect: str, op: str) -> str:
    return op.capitalize() if dialect == "legacy" else op


def boolean(dialect: str, value: bool) -> bool | str:
    return ("True" if value else "False") if dialect == "legacy" else value


# Connection --------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["userName", "externalId"])
def test_probe_unknown_guid_filter_returns_200_empty_list(service: Service, attribute: str) -> None:
    acme = service.tenant()
    new_user(acme, "existing@contoso.com")
    response = acme.get("/Users", params={"filter": f'{attribute} eq "{uuid.uuid4()}"'})
    body = scim(response, 200)
    assert body == {
        "schemas": [LIST],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_probe_random_group_read_is_empty_list_or_404_never_5xx(service: Service) -> None:
    acme = service.tenant()
    new_group(acme, "Existing")
    response = acme.get(
        "/Groups",
        params={"filter": f'displayName eq "{uuid.uuid4()}"', "excludedAttributes": "members"},
    )
    assert listing(response) == []
    scim_error(acme.get(f"/Groups/{uuid.uuid4()}"), 404)


def test_probe_without_or_with_wrong_token_is_401_scim_error(service: Service) -> None:
    acme = service.tenant()
    probe = {"filter": f'userName eq "{uuid.uuid4()}"'}
    scim_error(acme.http.get(f"{acme.base}/Users", params=probe), 401)
    wrong = {"Authorization": f"Bearer {acme.token}x"}
    scim_error(acme.http.get(f"{acme.base}/Users", params=probe, headers=wrong), 401)


# Users: match, then create -------------------------------------------------------------------


def test_match_then_create_user_creates_once_and_matches_afterwards(service: Service) -> None:
    acme = service.tenant()
    upn = "Alex.Wilber@contoso.com"
    match = {"filter": f'userName eq "{upn}"'}
    assert listing(acme.get("/Users", params=match)) == []
    sent = entra_user(upn)
    response = acme.post("/Users", json=sent)
    created = scim(response, 201)
    assert response.headers["Location"] == created["meta"]["location"]
    assert response.headers["ETag"] == created["meta"]["version"] == 'W/"1"'
    assert created["meta"]["resourceType"] == "User"
    assert created["schemas"] == [CORE]
    expected = {key: value for key, value in sent.items() if key not in ("schemas", "meta")}
    del expected["roles"]  # an empty list is "absent"
    assert attributes(created) == expected
    found = listing(acme.get("/Users", params=match))
    assert found == [created]
    by_external_id = listing(
        acme.get("/Users", params={"filter": f'externalId eq "{sent["externalId"]}"'})
    )
    assert by_external_id == [created]
    scim_error(acme.post("/Users", json=entra_user(upn.upper())), 409, "uniqueness")
    assert count_rows(service.database_url, "users") == 1


def test_create_user_with_nulls_meta_and_empty_roles_treats_them_as_absent(
    service: Service,
) -> None:
    acme = service.tenant()
    sent = entra_user(
        "nulls@contoso.com",
        title=None,
        nickName=None,
        phoneNumbers=None,
        name={"givenName": "Ada", "familyName": None},
    )
    sent["meta"] = {"resourceType": "User", "created": "2019-09-18T18:15:26.5788954+00:00"}
    created = scim(acme.post("/Users", json=sent), 201)
    for absent in ("title", "nickName", "phoneNumbers", "roles"):
        assert absent not in created
    assert created["name"] == {"givenName": "Ada"}
    assert created["meta"]["created"] != sent["meta"]["created"]
    assert None not in created.values()


# Users: the Validator's "Replace Attributes Verbose" -----------------------------------------


#: The top-level attributes the verbose PATCH replaces, with their new values.
VERBOSE_TOP_LEVEL = {
    "userName": "grace.b.hopper@contoso.com",
    "displayName": "Grace Brewster Hopper",
    "nickName": "Amazing Grace",
    "title": "Commodore",
    "userType": "Contractor",
    "preferredLanguage": "en-GB",
    "locale": "en-GB",
    "timezone": "America/New_York",
    "externalId": "7d1c9a0b-8e4e-4f8e-8d2a-0a21f0f23f7d",
}


def _verbose_operations(dialect: str, manager_id: str) -> list[dict[str, Any]]:
    replace = op_name(dialect, "replace")
    add = op_name(dialect, "add")
    plain = {
        **VERBOSE_TOP_LEVEL,
        "name.givenName": "Grace B.",
        "name.familyName": "Hopper-Murray",
        "name.formatted": "Grace B. Hopper-Murray",
        "name.middleName": "Brewster",
        'emails[type eq "work"].value': "grace.b.hopper@contoso.com",
        'addresses[type eq "work"].formatted': "2 Fleet Street",
        'addresses[type eq "work"].streetAddress': "2 Fleet Street",
        'addresses[type eq "work"].locality': "Norfolk",
        'addresses[type eq "work"].region': "NC",
        'addresses[type eq "work"].postalCode': "23511",
        'addresses[type eq "work"].country': "USA",
        'phoneNumbers[type eq "work"].value': "+1 555 0200",
        'phoneNumbers[type eq "mobile"].value': "+1 555 0201",
        'phoneNumbers[type eq "fax"].value': "+1 555 0202",
        enterprise("employeeNumber"): "1992",
        enterprise("costCenter"): "CC-8",
        enterprise("organization"): "US Navy",
        enterprise("division"): "Reserve",
        enterprise("department"): "Compilers",
        f"{PRINTSYNC}:cardNumber": "0099",
        f"{PRINTSYNC}:office": "Bldg 10",
    }
    operations: list[dict[str, Any]] = [
        {"op": replace, "path": path, "value": value} for path, value in plain.items()
    ]
    operations += [
        {"op": replace, "path": "active", "value": boolean(dialect, False)},
        {"op": replace, "path": 'emails[type eq "work"].primary', "value": boolean(dialect, True)},
        {"op": add, "path": 'emails[type eq "other"].value', "value": "gbh@example.net"},
        {"op": add, "path": 'phoneNumbers[type eq "home"].value', "value": "+1 555 0203"},
    ]
    if dialect == "legacy":
        operations.append({"op": "Add", "path": enterprise("manager"), "value": manager_id})
    else:
        operations.append(
            {"op": "replace", "path": enterprise("manager"), "value": {"value": manager_id}}
        )
    return operations


@pytest.mark.parametrize("dialect", DIALECTS)
def test_patch_user_replace_attributes_verbose_applies_every_operation(
    service: Service, dialect: str
) -> None:
    acme = service.tenant()
    sent = full_user("grace@contoso.com")
    created = scim(acme.post("/Users", json=sent), 201)
    manager = new_user(acme, "boss@contoso.com")
    operations = _verbose_operations(dialect, manager["id"])
    assert len(operations) >= 35
    patched = patch_user(acme, created["id"], *operations)

    expected = copy.deepcopy(attributes(sent))
    expected.update(VERBOSE_TOP_LEVEL, active=False)
    expected["name"] = {
        "givenName": "Grace B.",
        "familyName": "Hopper-Murray",
        "formatted": "Grace B. Hopper-Murray",
        "middleName": "Brewster",
    }
    expected["emails"] = [
        {"primary": True, "type": "work", "value": "grace.b.hopper@contoso.com"},
        {"type": "home", "value": "grace@example.org"},
        {"type": "other", "value": "gbh@example.net"},
    ]
    expected["phoneNumbers"] = [
        {"type": "work", "value": "+1 555 0200"},
        {"type": "mobile", "value": "+1 555 0201"},
        {"type": "fax", "value": "+1 555 0202"},
        {"type": "home", "value": "+1 555 0203"},
    ]
    expected["addresses"] = [
        {
            "type": "work",
            "formatted": "2 Fleet Street",
            "streetAddress": "2 Fleet Street",
            "locality": "Norfolk",
            "region": "NC",
            "postalCode": "23511",
            "country": "USA",
            "primary": True,
        }
    ]
    expected[ENTERPRISE] = {
        "employeeNumber": "1992",
        "costCenter": "CC-8",
        "organization": "US Navy",
        "division": "Reserve",
        "department": "Compilers",
        "manager": {"value": manager["id"]},
    }
    expected[PRINTSYNC] = {"cardNumber": "0099", "secondaryCardNumber": "0043", "office": "Bldg 10"}
    assert attributes(patched) == expected
    assert set(patched["schemas"]) == {CORE, ENTERPRISE, PRINTSYNC}
    assert patched["meta"]["version"] == 'W/"2"'
    assert patched["meta"]["created"] == created["meta"]["created"]
    renamed = listing(
        acme.get("/Users", params={"filter": 'userName eq "GRACE.B.HOPPER@contoso.com"'})
    )
    assert [found["id"] for found in renamed] == [created["id"]]
    assert listing(acme.get("/Users", params={"filter": 'userName eq "grace@contoso.com"'})) == []


def test_patch_user_flag_pathless_replace_applies_dotted_and_urn_keys(service: Service) -> None:
    acme = service.tenant()
    created = scim(acme.post("/Users", json=full_user("flag@contoso.com")), 201)
    patched = patch_user(
        acme,
        created["id"],
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Wxyz",
                enterprise("employeeNumber"): "Aklq",
                enterprise("department"): "Printing",
                'emails[type eq "work"].value': "flag.new@contoso.com",
                "active": False,
            },
        },
    )
    assert patched["displayName"] == "Bjfe"
    assert patched["name"] == {
        "givenName": "Kkom",
        "familyName": "Wxyz",
        "formatted": "Grace Hopper",
    }
    assert patched[ENTERPRISE]["employeeNumber"] == "Aklq"
    assert patched[ENTERPRISE]["department"] == "Printing"
    assert patched[ENTERPRISE]["costCenter"] == "CC-7"
    assert patched["emails"] == [
        {"primary": True, "type": "work", "value": "flag.new@contoso.com"},
        {"type": "home", "value": "grace@example.org"},
    ]
    assert patched["active"] is False


def test_patch_user_flag_pathless_replace_with_urn_object_merges_extension(
    service: Service,
) -> None:
    acme = service.tenant()
    created = scim(acme.post("/Users", json=full_user("urnobj@contoso.com")), 201)
    patched = patch_user(
        acme,
        created["id"],
        {"op": "replace", "value": {ENTERPRISE: {"division": "Research", "costCenter": "CC-9"}}},
    )
    assert patched[ENTERPRISE] == {
        "employeeNumber": "1906",
        "costCenter": "CC-9",
        "organization": "Navy",
        "division": "Research",
        "department": "COBOL",
        "manager": {"value": "b2c3"},
    }


# Users: legacy details ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("True", True),
        ("False", False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("FALSE", False),
        ("tRuE", True),
        ("fAlSe", False),
    ],
)
def test_patch_user_string_boolean_in_any_case_is_stored_as_boolean(
    service: Service, sent: str, stored: bool
) -> None:
    acme = service.tenant()
    created = new_user(acme, "flip@contoso.com", active=not stored)
    patched = patch_user(acme, created["id"], {"op": "Replace", "path": "active", "value": sent})
    assert patched["active"] is stored


@pytest.mark.parametrize("op", ["Add", "Replace", "ADD", "REPLACE", "add", "replace"])
def test_patch_user_op_in_any_case_is_applied(service: Service, op: str) -> None:
    acme = service.tenant()
    created = new_user(acme, "ops@contoso.com")
    patched = patch_user(acme, created["id"], {"op": op, "path": "title", "value": "Engineer"})
    assert patched["title"] == "Engineer"
    remove = "REMOVE" if op.isupper() else "Remove" if op[0].isupper() else "remove"
    removed = patch_user(acme, created["id"], {"op": remove, "path": "title"})
    assert "title" not in removed


def test_patch_user_attribute_names_in_any_case_are_applied(service: Service) -> None:
    acme = service.tenant()
    created = new_user(acme, "names@contoso.com")
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": "DisplayName", "value": "Upper"},
        {"op": "Replace", "path": "NAME.GIVENNAME", "value": "Given"},
        {"op": "Replace", "path": 'Emails[Type eq "work"].Value', "value": "n@contoso.com"},
        {"op": "Replace", "path": enterprise("Department").upper(), "value": "Ops"},
    )
    assert patched["displayName"] == "Upper"
    assert patched["name"] == {"givenName": "Given"}
    assert work_email(patched)["value"] == "n@contoso.com"
    assert patched[ENTERPRISE] == {"department": "Ops"}


def test_patch_user_filtered_email_add_creates_missing_element(service: Service) -> None:
    acme = service.tenant()
    created = new_user(acme, "noemail@contoso.com", emails=None)
    assert "emails" not in created
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "noemail@contoso.com"},
    )
    assert patched["emails"] == [{"type": "work", "value": "noemail@contoso.com"}]
    found = listing(
        acme.get(
            "/Users", params={"filter": 'emails[type eq "work"].value eq "noemail@contoso.com"'}
        )
    )
    assert [item["id"] for item in found] == [created["id"]]


def test_patch_user_filtered_address_add_creates_one_element_with_siblings(
    service: Service,
) -> None:
    acme = service.tenant()
    created = new_user(acme, "addr@contoso.com")
    subs = {
        "formatted": "1 Main St\nSpringfield",
        "streetAddress": "1 Main St",
        "locality": "Springfield",
        "region": "IL",
        "postalCode": "62701",
        "country": "US",
    }
    patched = patch_user(
        acme,
        created["id"],
        *[
            {"op": "Add", "path": f'addresses[type eq "work"].{sub}', "value": value}
            for sub, value in subs.items()
        ],
    )
    assert patched["addresses"] == [{"type": "work", **subs}]
    changed = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Chicago"},
    )
    assert changed["addresses"] == [{"type": "work", **subs, "locality": "Chicago"}]


@pytest.mark.parametrize("kind", ["mobile", "work", "fax"])
def test_patch_user_filtered_phone_replace_changes_only_that_type(
    service: Service, kind: str
) -> None:
    acme = service.tenant()
    created = scim(acme.post("/Users", json=full_user("phones@contoso.com")), 201)
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": f'phoneNumbers[type eq "{kind}"].value', "value": "+44 1"},
    )
    before = by_type(created["phoneNumbers"])
    after = by_type(patched["phoneNumbers"])
    assert after.keys() == before.keys()
    for name, item in before.items():
        assert after[name] == ({**item, "value": "+44 1"} if name == kind else item)


def test_patch_user_filtered_phone_add_creates_missing_mobile(service: Service) -> None:
    acme = service.tenant()
    created = new_user(
        acme, "mobile@contoso.com", phoneNumbers=[{"type": "work", "value": "+1 555 0300"}]
    )
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0301"},
    )
    assert patched["phoneNumbers"] == [
        {"type": "work", "value": "+1 555 0300"},
        {"type": "mobile", "value": "+1 555 0301"},
    ]


def test_patch_user_enterprise_urn_paths_add_replace_remove(service: Service) -> None:
    acme = service.tenant()
    created = new_user(acme, "ent@contoso.com")
    added = patch_user(
        acme,
        created["id"],
        {"op": "Add", "path": enterprise("department"), "value": "Sales"},
        {"op": "Add", "path": enterprise("employeeNumber"), "value": "77"},
    )
    assert added[ENTERPRISE] == {"department": "Sales", "employeeNumber": "77"}
    assert ENTERPRISE in added["schemas"]
    replaced = patch_user(
        acme, created["id"], {"op": "Replace", "path": enterprise("department"), "value": "Ops"}
    )
    assert replaced[ENTERPRISE] == {"department": "Ops", "employeeNumber": "77"}
    removed = patch_user(
        acme,
        created["id"],
        {"op": "Remove", "path": enterprise("department")},
        {"op": "Remove", "path": enterprise("employeeNumber")},
    )
    assert ENTERPRISE not in removed
    assert removed["schemas"] == [CORE]


def test_patch_user_roles_as_json_text_are_stored_verbatim(service: Service) -> None:
    acme = service.tenant()
    created = new_user(acme, "roles@contoso.com")
    role = '{"id":"8b4e3c1a-0000-4000-8000-000000000025","value":"25","displayName":"Role1234"}'
    patched = patch_user(
        acme, created["id"], {"op": "Add", "path": "roles", "value": [{"value": role}]}
    )
    assert patched["roles"] == [{"value": role}]
    cleared = patch_user(acme, created["id"], {"op": "Replace", "path": "roles", "value": []})
    assert "roles" not in cleared


@pytest.mark.parametrize("empty", ["", None])
def test_patch_user_empty_string_or_null_clears_attributes(
    service: Service, empty: str | None
) -> None:
    acme = service.tenant()
    created = new_user(
        acme,
        "clear@contoso.com",
        title="Boss",
        nickName="B",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        **{ENTERPRISE: {"department": "R&D"}},
    )
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": "title", "value": empty},
        {"op": "Add", "path": "nickName", "value": empty},
        {"op": "Replace", "path": "name.familyName", "value": empty},
        {"op": "Replace", "path": enterprise("department"), "value": empty},
    )
    for gone in ("title", "nickName", ENTERPRISE):
        assert gone not in patched
    assert patched["name"] == {"givenName": "Ada"}
    assert patched["schemas"] == [CORE]
    assert patched["userName"] == "clear@contoso.com"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_patch_user_disable_keeps_user_readable_by_id_and_filter(
    service: Service, dialect: str
) -> None:
    acme = service.tenant()
    created = new_user(acme, "leaver@contoso.com")
    patched = patch_user(
        acme,
        created["id"],
        {"op": op_name(dialect, "replace"), "path": "active", "value": boolean(dialect, False)},
    )
    assert patched["active"] is False
    assert user(acme, created["id"])["active"] is False
    for expression in (
        'userName eq "leaver@contoso.com"',
        f'externalId eq "{created["externalId"]}"',
        "active eq false",
    ):
        found = listing(acme.get("/Users", params={"filter": expression}))
        assert [(item["id"], item["active"]) for item in found] == [(created["id"], False)]
    enabled = patch_user(acme, created["id"], {"op": "replace", "value": {"active": True}})
    assert enabled["active"] is True


def test_delete_user_returns_204_then_404_on_every_repeat(service: Service) -> None:
    acme = service.tenant()
    created = new_user(acme, "delete@contoso.com")
    no_content(acme.delete(f"/Users/{created['id']}"))
    scim_error(acme.get(f"/Users/{created['id']}"), 404)
    scim_error(acme.delete(f"/Users/{created['id']}"), 404)
    scim_error(acme.delete(f"/Users/{created['id']}"), 404)
    scim_error(acme.delete(f"/Users/{uuid.uuid4()}"), 404)
    scim_error(
        acme.patch(
            f"/Users/{created['id']}",
            json=patch({"op": "Replace", "path": "active", "value": False}),
        ),
        404,
    )
    assert listing(acme.get("/Users", params={"filter": 'userName eq "delete@contoso.com"'})) == []


# Users: manager ----------------------------------------------------------------------------


def _manager_shapes(manager_id: str, base: str) -> dict[str, dict[str, Any]]:
    return {
        "list": {
            "op": "Add",
            "path": "manager",
            "value": [{"$ref": f"{base}/Users/{manager_id}", "value": manager_id}],
        },
        "string": {"op": "Add", "path": enterprise("manager"), "value": manager_id},
        "object": {"op": "replace", "path": enterprise("manager"), "value": {"value": manager_id}},
    }


@pytest.mark.parametrize("shape", ["list", "string", "object"])
def test_patch_user_manager_in_each_shape_is_returned_as_object(
    service: Service, shape: str
) -> None:
    acme = service.tenant()
    subject = new_user(acme, "report@contoso.com")
    boss = new_user(acme, "boss@contoso.com")
    operation = _manager_shapes(boss["id"], f"http://testserver{acme.base}")[shape]
    patched = patch_user(acme, subject["id"], operation)
    manager = patched[ENTERPRISE]["manager"]
    assert isinstance(manager, dict)
    assert manager["value"] == boss["id"]
    assert set(manager) <= {"value", "$ref", "displayName"}
    assert ENTERPRISE in patched["schemas"]
    listed = listing(acme.get("/Users", params={"filter": 'userName eq "report@contoso.com"'}))
    assert listed[0][ENTERPRISE]["manager"] == manager


def test_patch_user_manager_change_then_clear_by_empty_value_and_by_remove(
    service: Service,
) -> None:
    acme = service.tenant()
    subject = new_user(acme, "m@contoso.com")
    first, second = new_user(acme, "b1@contoso.com"), new_user(acme, "b2@contoso.com")
    patch_user(acme, subject["id"], {"op": "Add", "path": "manager", "value": first["id"]})
    changed = patch_user(
        acme,
        subject["id"],
        {"op": "replace", "path": enterprise("manager"), "value": {"value": second["id"]}},
    )
    assert changed[ENTERPRISE]["manager"] == {"value": second["id"]}
    cleared = patch_user(
        acme,
        subject["id"],
        {"op": "replace", "path": enterprise("manager"), "value": {"value": ""}},
    )
    assert ENTERPRISE not in cleared
    patch_user(
        acme, subject["id"], {"op": "Add", "path": enterprise("manager"), "value": first["id"]}
    )
    removed = patch_user(acme, subject["id"], {"op": "Remove", "path": enterprise("manager")})
    assert ENTERPRISE not in removed
    patch_user(acme, subject["id"], {"op": "Add", "path": "manager", "value": first["id"]})
    removed = patch_user(acme, subject["id"], {"op": "Remove", "path": "manager"})
    assert ENTERPRISE not in removed


def test_list_users_manager_reference_check_returns_only_id(service: Service) -> None:
    acme = service.tenant()
    subject = new_user(acme, "sub@contoso.com")
    boss, other = new_user(acme, "boss@contoso.com"), new_user(acme, "other@contoso.com")
    patch_user(
        acme, subject["id"], {"op": "Add", "path": enterprise("manager"), "value": boss["id"]}
    )
    params = {
        "filter": f'id eq "{subject["id"]}" and manager eq "{boss["id"]}"',
        "attributes": "id",
    }
    assert listing(acme.get("/Users", params=params)) == [{"schemas": [CORE], "id": subject["id"]}]
    params["filter"] = f'id eq "{subject["id"]}" and manager eq "{other["id"]}"'
    assert listing(acme.get("/Users", params=params)) == []


# Groups ------------------------------------------------------------------------------------


def test_create_group_with_microsoft_uri_returns_201_without_members(service: Service) -> None:
    acme = service.tenant()
    name = "Printers-Floor-2"
    lookup = {"excludedAttributes": "members", "filter": f'displayName eq "{name}"'}
    assert listing(acme.get("/Groups", params=lookup)) == []
    sent = entra_group(name)
    assert sent["schemas"] == [GROUP, MS_GROUP]
    response = acme.post("/Groups", json=sent)
    created = scim(response, 201)
    assert created["schemas"] == [GROUP]
    assert attributes(created) == {"externalId": sent["externalId"], "displayName": name}
    assert created["meta"]["resourceType"] == "Group"
    assert response.headers["ETag"] == created["meta"]["version"]
    assert listing(acme.get("/Groups", params=lookup)) == [created]
    assert listing(
        acme.get(
            "/Groups",
            params={
                "excludedAttributes": "members",
                "filter": f'externalId eq "{sent["externalId"]}"',
            },
        )
    ) == [created]


def test_create_group_duplicate_name_is_409_and_filter_ignores_case(service: Service) -> None:
    acme = service.tenant()
    created = new_group(acme, "Finance-Team")
    scim_error(acme.post("/Groups", json=entra_group("Finance-Team")), 409, "uniqueness")
    scim_error(acme.post("/Groups", json=entra_group("FINANCE-team")), 409, "uniqueness")
    assert count_rows(service.database_url, "groups") == 1
    found = listing(
        acme.get(
            "/Groups",
            params={"excludedAttributes": "members", "filter": 'displayName eq "finance-TEAM"'},
        )
    )
    assert [group["id"] for group in found] == [created["id"]]


def test_list_groups_excluding_members_omits_members_key(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Big")
    people = [new_user(acme, f"p{number}@contoso.com")["id"] for number in range(3)]
    patch_group(acme, group["id"], members_op("Add", *people))
    for params in (
        {"excludedAttributes": "members", "filter": 'displayName eq "Big"'},
        {"excludedAttributes": "members"},
        {"excludedAttributes": "MEMBERS", "filter": f'id eq "{group["id"]}"'},
    ):
        found = listing(acme.get("/Groups", params=params))
        assert len(found) == 1
        assert "members" not in found[0]
        assert found[0]["displayName"] == "Big"
    single = scim(acme.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}), 200)
    assert "members" not in single
    assert member_ids(acme, group["id"]) == sorted(people)


def test_patch_group_add_members_many_per_operation_answers_204(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Many")
    people = [new_user(acme, f"u{number}@contoso.com")["id"] for number in range(5)]
    response = acme.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {
                "op": "Add",
                "path": "members",
                "value": [{"$ref": None, "value": uid} for uid in people[:3]],
            },
            {
                "op": "add",
                "path": "members",
                "value": [{"$ref": None, "value": uid} for uid in people[3:]],
            },
        ),
    )
    no_content(response)
    assert response.headers["ETag"] == 'W/"2"'
    assert member_ids(acme, group["id"]) == sorted(people)
    assert count_rows(service.database_url, "memberships") == 5
    patch_group(acme, group["id"], members_op("Add", people[0], people[1]))
    assert count_rows(service.database_url, "memberships") == 5


def test_patch_group_flag_remove_filtered_member_removes_only_that_member(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Flag")
    first, second = new_user(acme, "a@contoso.com")["id"], new_user(acme, "b@contoso.com")["id"]
    patch_group(acme, group["id"], members_op("add", first, second))
    patch_group(acme, group["id"], {"op": "remove", "path": f'members[value eq "{first}"]'})
    assert member_ids(acme, group["id"]) == [second]


def test_patch_group_replace_members_sets_exactly_the_list(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Exact")
    people = [new_user(acme, f"r{number}@contoso.com")["id"] for number in range(4)]
    patch_group(acme, group["id"], members_op("add", *people[:3]))
    patch_group(acme, group["id"], members_op("replace", people[2], people[3]))
    assert member_ids(acme, group["id"]) == sorted(people[2:])
    patch_group(acme, group["id"], members_op("Replace", people[0]))
    assert member_ids(acme, group["id"]) == [people[0]]
    assert count_rows(service.database_url, "memberships") == 1
    patch_group(acme, group["id"], members_op("replace"))
    assert member_ids(acme, group["id"]) == []
    assert count_rows(service.database_url, "memberships") == 0


def test_patch_group_add_then_remove_same_member_in_one_request_applies_in_order(
    service: Service,
) -> None:
    acme = service.tenant()
    group = new_group(acme, "InOrder")
    kept, churned = new_user(acme, "k@contoso.com")["id"], new_user(acme, "c@contoso.com")["id"]
    patch_group(
        acme,
        group["id"],
        members_op("add", kept, churned),
        {"op": "remove", "path": f'members[value eq "{churned}"]'},
    )
    assert member_ids(acme, group["id"]) == [kept]
    patch_group(acme, group["id"], members_op("Remove", kept), members_op("Add", kept))
    assert member_ids(acme, group["id"]) == [kept]


def test_patch_group_pathless_replace_of_external_id(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Ext")
    replacement = str(uuid.uuid4())
    patch_group(acme, group["id"], {"op": "replace", "value": {"externalId": replacement}})
    fetched = scim(acme.get(f"/Groups/{group['id']}"), 200)
    assert attributes(fetched) == {"externalId": replacement, "displayName": "Ext"}
    assert listing(acme.get("/Groups", params={"filter": f'externalId eq "{replacement}"'})) == [
        fetched
    ]


def test_patch_pathless_replace_echoing_own_id_and_meta_is_accepted(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Echo")
    created = new_user(acme, "echo@contoso.com")
    patch_group(
        acme,
        group["id"],
        {
            "op": "replace",
            "value": {
                "id": group["id"],
                "meta": {"resourceType": "Group"},
                "displayName": "Echoed",
            },
        },
    )
    assert scim(acme.get(f"/Groups/{group['id']}"), 200)["displayName"] == "Echoed"
    patched = patch_user(
        acme,
        created["id"],
        {
            "op": "replace",
            "value": {"id": created["id"], "schemas": [CORE], "displayName": "Echoed"},
        },
    )
    assert patched["displayName"] == "Echoed"
    assert patched["id"] == created["id"]
    response = acme.patch(
        f"/Users/{created['id']}",
        json=patch({"op": "replace", "value": {"id": group["id"], "displayName": "Other"}}),
    )
    scim_error(response, 400, "mutability")
    assert user(acme, created["id"])["displayName"] == "Echoed"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_patch_group_rename_display_name_keeps_members(service: Service, dialect: str) -> None:
    acme = service.tenant()
    group = new_group(acme, "Before")
    member = new_user(acme, "member@contoso.com")["id"]
    patch_group(acme, group["id"], members_op("add", member))
    patch_group(
        acme,
        group["id"],
        {"op": op_name(dialect, "replace"), "path": "displayName", "value": "After"},
    )
    fetched = scim(acme.get(f"/Groups/{group['id']}"), 200)
    assert fetched["displayName"] == "After"
    assert [item["value"] for item in fetched["members"]] == [member]
    assert listing(acme.get("/Groups", params={"filter": 'displayName eq "Before"'})) == []
    scim_error(acme.post("/Groups", json=entra_group("after")), 409, "uniqueness")


def test_list_groups_membership_checks_in_both_forms(service: Service) -> None:
    acme = service.tenant()
    group, other = new_group(acme, "Check"), new_group(acme, "Other")
    inside = new_user(acme, "in@contoso.com")["id"]
    outside = new_user(acme, "out@contoso.com")["id"]
    patch_group(acme, group["id"], members_op("Add", inside))
    patch_group(acme, other["id"], members_op("Add", outside))
    params = {
        "excludedAttributes": "members",
        "filter": f'id eq "{group["id"]}" and members[value eq "{inside}"]',
    }
    found = listing(acme.get("/Groups", params=params))
    assert [item["id"] for item in found] == [group["id"]]
    assert "members" not in found[0]
    params["filter"] = f'id eq "{group["id"]}" and members[value eq "{outside}"]'
    assert listing(acme.get("/Groups", params=params)) == []
    params["filter"] = f'members eq "{inside}"'
    assert [item["id"] for item in listing(acme.get("/Groups", params=params))] == [group["id"]]
    params["filter"] = f'members eq "{uuid.uuid4()}"'
    assert listing(acme.get("/Groups", params=params)) == []


def test_delete_group_returns_204_then_404(service: Service) -> None:
    acme = service.tenant()
    group = new_group(acme, "Doomed")
    member = new_user(acme, "stays@contoso.com")["id"]
    patch_group(acme, group["id"], members_op("Add", member))
    no_content(acme.delete(f"/Groups/{group['id']}"))
    scim_error(acme.get(f"/Groups/{group['id']}"), 404)
    scim_error(acme.delete(f"/Groups/{group['id']}"), 404)
    scim_error(acme.patch(f"/Groups/{group['id']}", json=patch(members_op("Add", member))), 404)
    scim_error(acme.delete(f"/Groups/{uuid.uuid4()}"), 404)
    assert user(acme, member)["userName"] == "stays@contoso.com"
    assert count_rows(service.database_url, "memberships") == 0


# Traps (ENTRA.md §8), one test each --------------------------------------------------------


def test_trap_legacy_member_remove_with_value_list_keeps_other_members(service: Service) -> None:
    """Trap: a legacy member ``Remove`` with a value list emptied the whole group
    (apache/directory-scimple #436, #447)."""
    acme = service.tenant()
    group = new_group(acme, "Keepers")
    people = [new_user(acme, f"k{number}@contoso.com")["id"] for number in range(4)]
    patch_group(acme, group["id"], members_op("Add", *people))
    patch_group(acme, group["id"], members_op("Remove", people[0], people[2]))
    assert member_ids(acme, group["id"]) == sorted([people[1], people[3]])
    assert count_rows(service.database_url, "memberships") == 2


def test_trap_legacy_member_remove_is_neither_refused_nor_ignored(service: Service) -> None:
    """Trap: the legacy ``{"op":"Remove","path":"members","value":[{"value":id}]}`` shape was
    refused with 400 or silently ignored (Captain-P-Goldfish/SCIM-SDK #149,
    thomaspoignant/scim-patch #959)."""
    acme = service.tenant()
    group = new_group(acme, "Leavers")
    leaver, stayer = new_user(acme, "l@contoso.com")["id"], new_user(acme, "s@contoso.com")["id"]
    patch_group(acme, group["id"], members_op("Add", leaver, stayer))
    response = acme.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": leaver}]}),
    )
    no_content(response)
    assert response.headers["ETag"] == 'W/"3"'
    assert member_ids(acme, group["id"]) == [stayer]
    in_group = {
        "filter": f'id eq "{group["id"]}" and members[value eq "{leaver}"]',
        "excludedAttributes": "members",
    }
    assert listing(acme.get("/Groups", params=in_group)) == []


def test_trap_string_booleans_are_accepted(service: Service) -> None:
    """Trap: ``"True"``/``"False"`` refused by strict type checks (scimmyjs/scimmy #51)."""
    acme = service.tenant()
    created = scim(acme.post("/Users", json=entra_user("sb@contoso.com", active="True")), 201)
    assert created["active"] is True
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": 'emails[type eq "work"].primary', "value": "True"},
    )
    assert patched["active"] is False
    assert work_email(patched)["primary"] is True
    found = listing(acme.get("/Users", params={"filter": 'active eq "False"'}))
    assert [item["id"] for item in found] == [created["id"]]


def test_trap_filtered_add_on_missing_email_creates_it(service: Service) -> None:
    """Trap: a filtered ``Add`` on an e-mail that does not exist yet failed
    (Captain-P-Goldfish/SCIM-SDK #416, limosa-io/laravel-scim-server #34)."""
    acme = service.tenant()
    created = new_user(
        acme, "trap416@contoso.com", emails=[{"type": "home", "value": "home@example.org"}]
    )
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "trap416@contoso.com"},
    )
    assert patched["emails"] == [
        {"type": "home", "value": "home@example.org"},
        {"type": "work", "value": "trap416@contoso.com"},
    ]


def test_trap_filtered_replace_keeps_sibling_items(service: Service) -> None:
    """Trap: a filtered ``Replace`` deleted the sibling items of the multi-valued attribute
    (Captain-P-Goldfish/SCIM-SDK #668)."""
    acme = service.tenant()
    created = scim(acme.post("/Users", json=full_user("trap668@contoso.com")), 201)
    patched = patch_user(
        acme,
        created["id"],
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "w@contoso.com"},
        {"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 2"},
        {"op": "Replace", "path": 'addresses[type eq "work"].postalCode', "value": "99999"},
    )
    assert patched["emails"] == [
        {"primary": True, "type": "work", "value": "w@contoso.com"},
        {"type": "home", "value": "grace@example.org"},
    ]
    assert patched["phoneNumbers"] == [
        {"type": "work", "value": "+1 555 0100"},
        {"type": "mobile", "value": "+1 2"},
        {"type": "fax", "value": "+1 555 0102"},
    ]
    assert patched["addresses"] == [{**created["addresses"][0], "postalCode": "99999"}]


def test_trap_string_manager_is_accepted_and_echoed_as_object(service: Service) -> None:
    """Trap: a manager sent as a plain id string was refused (Captain-P-Goldfish/SCIM-SDK #686)
    or echoed back as a string (Budibase/budibase #15369)."""
    acme = service.tenant()
    subject, boss = new_user(acme, "s686@contoso.com"), new_user(acme, "b686@contoso.com")
    patched = patch_user(
        acme, subject["id"], {"op": "Add", "path": enterprise("manager"), "value": boss["id"]}
    )
    assert patched[ENTERPRISE] == {"manager": {"value": boss["id"]}}
    assert user(acme, subject["id"])[ENTERPRISE]["manager"] == {"value": boss["id"]}


def test_trap_manager_is_returned_so_it_is_not_repatched(service: Service) -> None:
    """Trap: the manager was stored but not returned, so Entra re-sent it every cycle
    (MicrosoftDocs/azure-docs #11784)."""
    acme = service.tenant()
    subject, boss = new_user(acme, "s11784@contoso.com"), new_user(acme, "b11784@contoso.com")
    operation = {
        "op": "Add",
        "path": "manager",
        "value": [
            {"$ref": f"http://testserver{acme.base}/Users/{boss['id']}", "value": boss["id"]}
        ],
    }
    first = patch_user(acme, subject["id"], operation)
    expected = {"value": boss["id"], "$ref": f"http://testserver{acme.base}/Users/{boss['id']}"}
    assert first[ENTERPRISE]["manager"] == expected
    assert user(acme, subject["id"])[ENTERPRISE]["manager"] == expected
    listed = listing(acme.get("/Users", params={"filter": f'id eq "{subject["id"]}"'}))
    assert listed[0][ENTERPRISE]["manager"] == expected
    again = patch_user(acme, subject["id"], operation)
    assert again["meta"]["version"] == first["meta"]["version"]


def test_trap_pathless_dotted_keys_are_applied(service: Service) -> None:
    """Trap: path-less ``replace`` dropped dotted keys such as ``name.givenName``
    (Captain-P-Goldfish/scim-for-keycloak #26)."""
    acme = service.tenant()
    created = new_user(acme, "kc26@contoso.com", name={"givenName": "Old", "familyName": "Name"})
    patched = patch_user(
        acme,
        created["id"],
        {
            "op": "replace",
            "value": {
                "name.givenName": "New",
                "name.familyName": "Surname",
                "name.formatted": "New Surname",
                'addresses[type eq "work"].locality': "Leeds",
            },
        },
    )
    assert patched["name"] == {
        "givenName": "New",
        "familyName": "Surname",
        "formatted": "New Surname",
    }
    assert patched["addresses"] == [{"type": "work", "locality": "Leeds"}]


def test_trap_username_matching_is_case_insensitive(service: Service) -> None:
    """Trap: ``userName`` matched case-sensitively, so Entra created duplicates
    (zulip/zulip #21758)."""
    acme = service.tenant()
    created = new_user(acme, "Zoe.Zulip@Contoso.com")
    for spelling in ("zoe.zulip@contoso.com", "ZOE.ZULIP@CONTOSO.COM", "Zoe.Zulip@Contoso.com"):
        found = listing(acme.get("/Users", params={"filter": f'userName eq "{spelling}"'}))
        assert [item["id"] for item in found] == [created["id"]]
    scim_error(acme.post("/Users", json=entra_user("zoe.ZULIP@contoso.COM")), 409, "uniqueness")
    assert found[0]["userName"] == "Zoe.Zulip@Contoso.com"


def test_trap_external_id_filter_is_supported(service: Service) -> None:
    """Trap: no ``externalId eq`` filter once the probe used it (OctopusDeploy/Issues #9841)."""
    acme = service.tenant()
    created = new_user(acme, "octo@contoso.com")
    assert listing(acme.get("/Users", params={"filter": f'externalId eq "{uuid.uuid4()}"'})) == []
    found = listing(
        acme.get("/Users", params={"filter": f'externalId eq "{created["externalId"]}"'})
    )
    assert found == [created]
    group = new_group(acme, "Octo")
    found = listing(
        acme.get(
            "/Groups",
            params={
                "filter": f'externalId eq "{group["externalId"]}"',
                "excludedAttributes": "members",
            },
        )
    )
    assert found == [group]


def test_trap_groups_display_name_filter_is_supported(service: Service) -> None:
    """Trap: ``/Groups`` had no ``displayName`` filter (ssoready/ssoready #232)."""
    acme = service.tenant()
    wanted, _ = new_group(acme, "Wanted Group"), new_group(acme, "Wanted Group 2")
    found = listing(
        acme.get(
            "/Groups",
            params={"filter": 'displayName eq "wanted group"', "excludedAttributes": "members"},
        )
    )
    assert found == [wanted]


def test_trap_every_response_with_a_body_is_application_scim_json(service: Service) -> None:
    """Trap: ``application/json`` responses failed Microsoft's validator
    (jelhub/scimgateway #89)."""
    acme = service.tenant()
    created = new_user(acme, "media@contoso.com")
    group = new_group(acme, "Media")
    scim(acme.get(f"/Users/{created['id']}"), 200)
    scim(acme.get("/Users"), 200)
    scim(acme.get(f"/Groups/{group['id']}"), 200)
    scim(acme.get("/Groups"), 200)
    scim(acme.put(f"/Users/{created['id']}", json=entra_user("media@contoso.com")), 200)
    scim(
        acme.patch(
            f"/Users/{created['id']}", json=patch({"op": "Replace", "path": "title", "value": "T"})
        ),
        200,
    )
    for endpoint in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        scim(acme.get(endpoint), 200)
    scim_error(acme.post("/Users", json=entra_user("media@contoso.com")), 409, "uniqueness")
    scim_error(acme.get("/Users", params={"filter": "userName zz 1"}), 400, "invalidFilter")
    scim_error(acme.patch(f"/Users/{created['id']}", json={"Operations": []}), 400)
    scim_error(acme.get(f"/Users/{uuid.uuid4()}"), 404)
    scim_error(acme.http.get(f"{acme.base}/Users"), 401)
    response = acme.post("/Users", content=b"x", headers={"Content-Type": "text/plain"})
    scim_error(response, 415)


def test_trap_entra_odd_bodies_are_accepted(service: Service) -> None:
    """Trap: a strict SCIM library fails Entra's odd bodies — capitalised keys, string
    booleans, client ``meta``, nulls inside complex values, empty ``roles``, a non-SCIM group
    schema URI and ``"$ref": null`` members (python-scim/scim2-server ``test_ms_entra.py``)."""
    acme = service.tenant()
    odd = {
        "UserName": "OMalley@contoso.com",
        "Active": "True",
        "DisplayName": "Kimberly Baker",
        "schemas": [ENTERPRISE, CORE],
        "externalId": "22fbc523-6032-4c5f-939d-5d4850cf3e52",
        "meta": {
            "created": "2019-09-18T18:15:26.5788954+00:00",
            "lastModified": "2019-09-18T18:15:26.5788976+00:00",
            "resourceType": "User",
        },
        "name": {
            "formatted": "Daniel Mcgee",
            "familyName": "OMalley",
            "givenName": "Darl",
            "honorificPrefix": None,
            "honorificSuffix": None,
        },
        "addresses": [
            {
                "type": "work",
                "formatted": "9132 Jennifer Way\nSouth Nancy",
                "country": None,
                "locality": "West Mercedes",
                "Primary": False,
            },
            {"type": "other", "formatted": "18522 Lisa Unions", "region": None},
        ],
        "emails": [{"Primary": True, "type": "work", "value": "anna33@example.com"}],
        "phoneNumbers": [{"type": "mobile", "primary": None, "value": "312-320-1707"}],
        "roles": [],
        "title": None,
        ENTERPRISE: {"Department": "Engineering", "Manager": {"Value": "SuzzyQ"}},
    }
    created = scim(acme.post("/Users", json=odd), 201)
    assert attributes(created) == {
        "userName": "OMalley@contoso.com",
        "active": True,
        "displayName": "Kimberly Baker",
        "externalId": "22fbc523-6032-4c5f-939d-5d4850cf3e52",
        "name": {"formatted": "Daniel Mcgee", "familyName": "OMalley", "givenName": "Darl"},
        "addresses": [
            {
                "type": "work",
                "formatted": "9132 Jennifer Way\nSouth Nancy",
                "locality": "West Mercedes",
                "primary": False,
            },
            {"type": "other", "formatted": "18522 Lisa Unions"},
        ],
        "emails": [{"primary": True, "type": "work", "value": "anna33@example.com"}],
        "phoneNumbers": [{"type": "mobile", "value": "312-320-1707"}],
        ENTERPRISE: {"department": "Engineering", "manager": {"value": "SuzzyQ"}},
    }
    group = scim(acme.post("/Groups", json=entra_group("Odd")), 201)
    response = acme.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"$ref": None, "value": created["id"]}]}
            ],
        },
    )
    no_content(response)
    assert member_ids(acme, group["id"]) == [created["id"]]
    charset = acme.patch(
        f"/Users/{created['id']}",
        json=patch({"op": "Replace", "path": "title", "value": "x"}),
        headers={"Content-Type": "application/scim+json; charset=utf-8"},
    )
    assert scim(charset, 200)["title"] == "x"
