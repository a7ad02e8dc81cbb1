"""The PATCH engine: Entra's legacy and aadOptscim062020 dialects, RFC 7644 examples, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.scim import resources
from storage.scim.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from storage.scim.patch import MAX_OPERATIONS, MemberChange, PatchResult, apply
from storage.scim.schema import (
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    GROUP,
    GROUP_TYPE,
    PATCH_OP,
    PRINTSYNC_SCHEMA,
    PRINTSYNC_USER,
    USER,
    USER_SCHEMA,
    USER_TYPE,
    Attribute,
    ResourceType,
    Schema,
)
from tests import builders

ENTERPRISE = ENTERPRISE_USER


def user_doc(**changes: Any) -> dict[str, Any]:
    """A realistic stored user document (canonical, with id and meta)."""
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "externalId": "ext-1",
        "userName": "ada@example.com",
        "active": True,
        "displayName": "Ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [
            {"type": "work", "value": "ada@work.example", "primary": True},
            {"type": "home", "value": "ada@home.example"},
        ],
        "phoneNumbers": [
            {"type": "work", "value": "+1 555 0100"},
            {"type": "mobile", "value": "+1 555 0101"},
            {"type": "fax", "value": "+1 555 0102"},
        ],
        "addresses": [
            {
                "type": "work",
                "formatted": "1 Main St, Springfield",
                "streetAddress": "1 Main St",
                "locality": "Springfield",
                "region": "IL",
                "postalCode": "62701",
                "country": "US",
            },
            {"type": "home", "locality": "Shelbyville"},
        ],
        ENTERPRISE: {"department": "Research", "employeeNumber": "42", "manager": {"value": "m-1"}},
    }
    body.update(changes)
    doc = resources.validate(USER_TYPE, body)
    return {
        "schemas": doc.pop("schemas"),
        "id": "u-1",
        **doc,
        "meta": {"resourceType": "User", "version": 'W/"3"'},
    }


def group_doc() -> dict[str, Any]:
    return {
        "schemas": [GROUP],
        "id": "g-1",
        "externalId": "gx-1",
        "displayName": "Printers",
        "meta": {"resourceType": "Group"},
    }


def patch(doc: dict[str, Any], *operations: Any, resource: ResourceType = USER_TYPE) -> PatchResult:
    return apply(resource, doc, {"schemas": [PATCH_OP], "Operations": list(operations)})


def patched(doc: dict[str, Any], *operations: Any) -> dict[str, Any]:
    return patch(doc, *operations).doc


def group_changes(*operations: Any) -> tuple[MemberChange, ...]:
    return patch(group_doc(), *operations, resource=GROUP_TYPE).members


def email(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for item in doc.get("emails", []) if item.get("type") == kind]


# Legacy dialect (ENTRA.md §2) -----------------------------------------------------------------


@pytest.mark.parametrize("op", ["Add", "add", "ADD", "aDd", "Replace", "replace", "REPLACE"])
def test_apply_op_name_in_any_case_is_accepted(op: str) -> None:
    doc = patched(user_doc(), {"op": op, "path": "displayName", "value": "Countess"})
    assert doc["displayName"] == "Countess"


@pytest.mark.parametrize("op", ["Remove", "remove", "REMOVE"])
def test_apply_remove_op_in_any_case_is_accepted(op: str) -> None:
    assert "displayName" not in patched(user_doc(), {"op": op, "path": "displayName"})


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("False", False),
        ("false", False),
        ("FALSE", False),
        ("True", True),
        ("tRUE", True),
        (False, False),
        (True, True),
    ],
)
def test_apply_active_string_boolean_in_any_case_stores_boolean(sent: object, stored: bool) -> None:
    doc = patched(user_doc(active=not stored), {"op": "Replace", "path": "active", "value": sent})
    assert doc["active"] is stored


def test_apply_attribute_path_in_any_case_is_canonicalized() -> None:
    doc = patched(
        user_doc(),
        {"op": "Replace", "path": "NAME.GIVENNAME", "value": "Augusta"},
        {"op": "Replace", "path": 'EMAILS[TYPE EQ "work"].VALUE', "value": "a@b.c"},
    )
    assert doc["name"] == {"givenName": "Augusta", "familyName": "Lovelace"}
    assert email(doc, "work")[0]["value"] == "a@b.c"


def test_apply_replace_filtered_email_value_changes_only_matching_item() -> None:
    doc = patched(
        user_doc(),
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "countess@work.example"},
    )
    assert doc["emails"] == [
        {"type": "work", "value": "countess@work.example", "primary": True},
        {"type": "home", "value": "ada@home.example"},
    ]


@pytest.mark.parametrize(
    "sub", ["formatted", "streetAddress", "locality", "region", "postalCode", "country"]
)
def test_apply_replace_filtered_address_sub_attribute_keeps_siblings(sub: str) -> None:
    before = user_doc()
    doc = patched(
        before, {"op": "Replace", "path": f'addresses[type eq "work"].{sub}', "value": "changed"}
    )
    work = dict(before["addresses"][0], **{sub: "changed"})
    assert doc["addresses"] == [work, before["addresses"][1]]


@pytest.mark.parametrize("kind", ["mobile", "work", "fax"])
def test_apply_replace_filtered_phone_number_changes_only_that_type(kind: str) -> None:
    before = user_doc()
    doc = patched(
        before,
        {"op": "Replace", "path": f'phoneNumbers[type eq "{kind}"].value', "value": "+44 20 0000"},
    )
    for old, new in zip(before["phoneNumbers"], doc["phoneNumbers"], strict=True):
        expected = "+44 20 0000" if old["type"] == kind else old["value"]
        assert new == {"type": old["type"], "value": expected}


def test_apply_add_filtered_email_when_absent_creates_element() -> None:
    doc = patched(
        user_doc(emails=None),
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "a@work.example"},
    )
    assert doc["emails"] == [{"type": "work", "value": "a@work.example"}]


def test_apply_add_filtered_email_of_new_type_appends_element() -> None:
    doc = patched(
        user_doc(),
        {"op": "Add", "path": 'emails[type eq "other"].value', "value": "a@other.example"},
    )
    assert len(doc["emails"]) == 3
    assert doc["emails"][2] == {"type": "other", "value": "a@other.example"}


def test_apply_add_filtered_address_parts_build_one_element() -> None:
    doc = patched(
        user_doc(addresses=None),
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Loop"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Redmond"},
        {"op": "Add", "path": 'addresses[type eq "work"].country', "value": "US"},
    )
    assert doc["addresses"] == [
        {"type": "work", "streetAddress": "1 Loop", "locality": "Redmond", "country": "US"}
    ]


def test_apply_replace_filtered_when_absent_with_simple_filter_creates_element() -> None:
    doc = patched(
        user_doc(), {"op": "Replace", "path": 'phoneNumbers[type eq "pager"].value', "value": "123"}
    )
    assert doc["phoneNumbers"][-1] == {"type": "pager", "value": "123"}
    assert len(doc["phoneNumbers"]) == 4


def test_apply_replace_filtered_when_absent_with_and_of_eq_creates_element() -> None:
    doc = patched(
        user_doc(emails=None),
        {
            "op": "replace",
            "path": 'emails[type eq "work" and primary eq true].value',
            "value": "a@b.c",
        },
    )
    assert doc["emails"] == [{"type": "work", "primary": True, "value": "a@b.c"}]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ('emails[value co "nobody"].value', "x@y.z"),
        ('emails[type ne "work" and type ne "home"].value', "x@y.z"),
        ('emails[type eq "x" or type eq "y"].value', "x@y.z"),
        ("emails[not (type pr)].value", "x@y.z"),
        ('emails[value co "nobody"]', {"value": "x@y.z"}),
    ],
)
def test_apply_replace_filtered_no_match_without_simple_filter_is_no_target(
    path: str, value: object
) -> None:
    with pytest.raises(NoTarget):
        patched(user_doc(), {"op": "replace", "path": path, "value": value})


def test_apply_enterprise_urn_path_sets_extension_attribute() -> None:
    doc = patched(
        user_doc(**{ENTERPRISE: None}),
        {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Finance"},
    )
    assert doc[ENTERPRISE] == {"department": "Finance"}
    assert doc["schemas"] == [USER, ENTERPRISE]


def test_apply_enterprise_urn_path_in_other_case_is_accepted() -> None:
    doc = patched(
        user_doc(),
        {"op": "Replace", "path": f"{ENTERPRISE.lower()}:DEPARTMENT", "value": "Finance"},
    )
    assert doc[ENTERPRISE]["department"] == "Finance"


def test_apply_roles_as_json_text_are_stored_as_sent() -> None:
    role = '{"id":"7a2f6b0e","value":"25","displayName":"Role1234"}'
    doc = patched(user_doc(), {"op": "Add", "path": "roles", "value": [{"value": role}]})
    assert doc["roles"] == [{"value": role}]


def test_apply_microsoft_validator_replace_attributes_verbose_sets_everything() -> None:
    # One Replace operation per attribute, in this order, as the validator sends them.
    values = {
        "userName": "kelsi@contoso.com",
        "active": "False",
        "displayName": "KELSI",
        "title": "ZYFMIXBTRURP",
        'emails[type eq "work"].value': "w@contoso.com",
        "preferredLanguage": "tn-ZA",
        "name.givenName": "Kelsi",
        "name.familyName": "Ward",
        "name.formatted": "Kelsi Ward",
        'addresses[type eq "work"].formatted': "AHTLVU",
        'addresses[type eq "work"].streetAddress': "1 Rd",
        'addresses[type eq "work"].locality': "Paris",
        'addresses[type eq "work"].region': "IDF",
        'addresses[type eq "work"].postalCode': "75001",
        'addresses[type eq "work"].country': "France",
        'phoneNumbers[type eq "work"].value': "1",
        'phoneNumbers[type eq "mobile"].value': "2",
        'phoneNumbers[type eq "fax"].value': "3",
        "externalId": "ext-2",
        f"{ENTERPRISE}:employeeNumber": "77",
        f"{ENTERPRISE}:department": "IT",
        f"{ENTERPRISE}:costCenter": "CC1",
        f"{ENTERPRISE}:organization": "Contoso",
        f"{ENTERPRISE}:division": "EMEA",
        "nickName": "KW",
        "userType": "Employee",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "profileUrl": "https://contoso.com/kw",
        "name.middleName": "M",
        "name.honorificPrefix": "Dr",
        "name.honorificSuffix": "PhD",
        f"{PRINTSYNC_USER}:cardNumber": "00123",
        f"{PRINTSYNC_USER}:office": "Paris-3",
        'emails[type eq "home"].value': "h@contoso.com",
        f"{ENTERPRISE}:manager": {"value": "m-9"},
    }
    operations = [{"op": "Replace", "path": path, "value": value} for path, value in values.items()]
    doc = patched(user_doc(), *operations)
    assert doc["userName"] == "kelsi@contoso.com"
    assert doc["active"] is False
    assert doc["name"]["honorificSuffix"] == "PhD"
    assert doc["addresses"][0] == {
        "type": "work",
        "formatted": "AHTLVU",
        "streetAddress": "1 Rd",
        "locality": "Paris",
        "region": "IDF",
        "postalCode": "75001",
        "country": "France",
    }
    assert doc["addresses"][1] == {"type": "home", "locality": "Shelbyville"}
    assert [p["value"] for p in doc["phoneNumbers"]] == ["1", "2", "3"]
    assert doc[ENTERPRISE]["manager"] == {"value": "m-9"}
    assert doc[PRINTSYNC_USER] == {"cardNumber": "00123", "office": "Paris-3"}
    assert doc["schemas"] == [USER, ENTERPRISE, PRINTSYNC_USER]
    assert email(doc, "work") == [{"type": "work", "value": "w@contoso.com", "primary": True}]


def test_apply_several_ops_on_same_attribute_apply_in_order() -> None:
    doc = patched(
        user_doc(),
        {"op": "replace", "path": "displayName", "value": "One"},
        {"op": "remove", "path": "displayName"},
        {"op": "add", "path": "displayName", "value": "Three"},
    )
    assert doc["displayName"] == "Three"


# Flag dialect (aadOptscim062020) --------------------------------------------------------------


def test_apply_pathless_replace_with_plain_dotted_and_urn_keys_sets_each() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                f"{ENTERPRISE}:employeeNumber": "Aklq",
            },
        },
    )
    assert doc["displayName"] == "Bjfe"
    assert doc["name"] == {"givenName": "Kkom", "familyName": "Lovelace"}
    assert doc[ENTERPRISE]["employeeNumber"] == "Aklq"
    assert doc[ENTERPRISE]["department"] == "Research"


def test_apply_pathless_replace_with_real_booleans_sets_them() -> None:
    doc = patched(user_doc(), {"op": "replace", "value": {"active": False}})
    assert doc["active"] is False


def test_apply_pathless_add_with_urn_object_sets_extension_attributes() -> None:
    doc = patched(
        user_doc(**{ENTERPRISE: None}),
        {
            "op": "add",
            "value": {
                ENTERPRISE: {"department": "Finance", "manager": "m-2"},
                "nickName": "Ada",
            },
        },
    )
    assert doc[ENTERPRISE] == {"department": "Finance", "manager": {"value": "m-2"}}
    assert doc["nickName"] == "Ada"


def test_apply_pathless_replace_with_urn_qualified_manager_key_stores_object() -> None:
    doc = patched(user_doc(), {"op": "replace", "value": {f"{ENTERPRISE}:manager": "m-3"}})
    assert doc[ENTERPRISE]["manager"] == {"value": "m-3"}


def test_apply_pathless_value_keys_in_any_case_are_canonicalized() -> None:
    doc = patched(
        user_doc(), {"op": "replace", "value": {"DISPLAYNAME": "X", "Name.FamilyName": "Y"}}
    )
    assert doc["displayName"] == "X"
    assert doc["name"]["familyName"] == "Y"


def test_apply_pathless_add_of_multi_valued_appends() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "add",
            "value": {
                "emails": [{"value": "babs@jensen.org", "type": "other"}],
                "nickname": "Babs",
            },
        },
    )
    assert doc["emails"][-1] == {"value": "babs@jensen.org", "type": "other"}
    assert len(doc["emails"]) == 3
    assert doc["nickName"] == "Babs"


def test_apply_pathless_replace_of_multi_valued_sets_it() -> None:
    doc = patched(user_doc(), {"op": "replace", "value": {"emails": [{"value": "only@x.y"}]}})
    assert doc["emails"] == [{"value": "only@x.y"}]


def test_apply_pathless_value_ignores_schemas_meta_and_matching_id() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "replace",
            "value": {"schemas": [USER], "id": "u-1", "meta": {"version": "x"}, "displayName": "Z"},
        },
    )
    assert doc["displayName"] == "Z"
    assert doc["id"] == "u-1"
    assert doc["meta"] == user_doc()["meta"]


# Manager (ENTRA.md §2) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "stored"),
    [
        (
            {
                "op": "Add",
                "path": "manager",
                "value": [{"$ref": "https://h/scim/v2/Users/m-7", "value": "m-7"}],
            },
            {"value": "m-7", "$ref": "https://h/scim/v2/Users/m-7"},
        ),
        ({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "m-7"}, {"value": "m-7"}),
        (
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "m-7"}},
            {"value": "m-7"},
        ),
    ],
)
def test_apply_manager_in_each_entra_shape_is_stored_as_object(
    operation: dict[str, Any], stored: dict[str, str]
) -> None:
    doc = patched(user_doc(**{ENTERPRISE: None}), operation)
    assert doc[ENTERPRISE] == {"manager": stored}
    assert doc["schemas"] == [USER, ENTERPRISE]


@pytest.mark.parametrize(
    ("operation", "stored"),
    [
        pytest.param(
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "m-2"},
            {"value": "m-2"},
            id="change-replaces-previous-reference",
        ),
        pytest.param(
            {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "m-5"},
            {"value": "m-5"},
            id="value-sub-path-drops-stale-reference",
        ),
    ],
)
def test_apply_manager_after_a_reference_keeps_only_the_new_value(
    operation: dict[str, Any], stored: dict[str, str]
) -> None:
    start = patched(
        user_doc(),
        {
            "op": "Add",
            "path": "manager",
            "value": [{"$ref": "https://h/Users/m-1", "value": "m-1"}],
        },
    )
    doc = patched(start, operation)
    assert doc[ENTERPRISE]["manager"] == stored


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ""}},
        {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""},
        {"op": "replace", "path": "manager", "value": None},
        {"op": "Remove", "path": f"{ENTERPRISE}:manager"},
        {"op": "Remove", "path": "manager"},
        {"op": "Remove", "path": "manager", "value": [{"value": "m-1"}]},
        {"op": "remove", "path": f"{ENTERPRISE}:manager.value"},
        {"op": "replace", "value": {f"{ENTERPRISE}:manager": {"value": ""}}},
    ],
)
def test_apply_manager_cleared_by_remove_or_empty_value(operation: dict[str, Any]) -> None:
    doc = patched(user_doc(), operation)
    assert "manager" not in doc[ENTERPRISE]
    assert doc[ENTERPRISE]["department"] == "Research"


def test_apply_manager_display_name_path_is_mutability() -> None:
    with pytest.raises(Mutability):
        patched(
            user_doc(),
            {"op": "replace", "path": f"{ENTERPRISE}:manager.displayName", "value": "Boss"},
        )


def test_apply_last_extension_attribute_removed_drops_extension_schema() -> None:
    doc = patched(user_doc(**{ENTERPRISE: {"manager": "m-1"}}), {"op": "Remove", "path": "manager"})
    assert ENTERPRISE not in doc
    assert doc["schemas"] == [USER]


# Clearing (ENTRA.md §2 "Clearing") -----------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "replace", "Add", "Replace"])
@pytest.mark.parametrize("empty", ["", None])
@pytest.mark.parametrize(
    ("path", "gone"),
    [
        ("displayName", lambda d: "displayName" not in d),
        ("name.givenName", lambda d: d["name"] == {"familyName": "Lovelace"}),
        ('emails[type eq "home"].value', lambda d: email(d, "home") == [{"type": "home"}]),
        ('phoneNumbers[type eq "fax"]', lambda d: len(d["phoneNumbers"]) == 2),
        ("addresses", lambda d: "addresses" not in d),
        (f"{ENTERPRISE}:department", lambda d: "department" not in d[ENTERPRISE]),
        ("externalId", lambda d: "externalId" not in d),
    ],
)
def test_apply_empty_or_null_value_clears_target(
    op: str, empty: object, path: str, gone: Any
) -> None:
    assert gone(patched(user_doc(), {"op": op, "path": path, "value": empty}))


def test_apply_pathless_null_values_clear_attributes() -> None:
    doc = patched(
        user_doc(),
        {"op": "replace", "value": {"displayName": None, "title": "", "name.givenName": ""}},
    )
    assert "displayName" not in doc and "title" not in doc
    assert doc["name"] == {"familyName": "Lovelace"}


def test_apply_complex_replace_merges_and_null_sub_clears() -> None:
    doc = patched(
        user_doc(),
        {"op": "replace", "path": "name", "value": {"givenName": None, "middleName": "B"}},
    )
    assert doc["name"] == {"familyName": "Lovelace", "middleName": "B"}


# Groups (ENTRA.md §3) -------------------------------------------------------------------------


def test_apply_members_add_list_with_null_ref_is_one_add_change() -> None:
    changes = group_changes(
        {
            "op": "Add",
            "path": "members",
            "value": [
                {"$ref": None, "value": "u-1"},
                {"$ref": None, "value": "u-2"},
                {"$ref": None, "value": "u-1"},
            ],
        }
    )
    assert changes == (MemberChange("add", ("u-1", "u-2")),)


def test_apply_members_legacy_remove_with_value_list_removes_only_those() -> None:
    changes = group_changes(
        {"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-3"}]}
    )
    assert changes == (MemberChange("remove", ("u-1", "u-3")),)


def test_apply_members_legacy_remove_with_empty_value_list_changes_nothing() -> None:
    assert group_changes({"op": "Remove", "path": "members", "value": []}) == ()


def test_apply_members_flag_remove_by_value_filter_removes_that_member() -> None:
    changes = group_changes({"op": "remove", "path": 'members[value eq "u-9"]'})
    assert changes == (MemberChange("remove", ("u-9",)),)


def test_apply_members_remove_by_or_filter_removes_each_member() -> None:
    changes = group_changes({"op": "remove", "path": 'members[value eq "u-1" or VALUE EQ "u-2"]'})
    assert changes == (MemberChange("remove", ("u-1", "u-2")),)


def test_apply_members_remove_without_value_or_filter_removes_all() -> None:
    assert group_changes({"op": "remove", "path": "members"}) == (MemberChange("replace", ()),)


def test_apply_members_replace_sets_exact_list() -> None:
    changes = group_changes(
        {"op": "replace", "path": "members", "value": [{"value": "u-4"}, {"value": "u-5"}]}
    )
    assert changes == (MemberChange("replace", ("u-4", "u-5")),)


@pytest.mark.parametrize("empty", [[], None, ""])
def test_apply_members_replace_with_empty_value_clears(empty: object) -> None:
    changes = group_changes({"op": "replace", "path": "members", "value": empty})
    assert changes == (MemberChange("replace", ()),)


def test_apply_members_add_then_remove_same_member_keeps_request_order() -> None:
    changes = group_changes(
        {"op": "add", "path": "members", "value": [{"value": "u-1"}]},
        {"op": "remove", "path": 'members[value eq "u-1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u-2"}]},
    )
    assert changes == (
        MemberChange("add", ("u-1",)),
        MemberChange("remove", ("u-1",)),
        MemberChange("add", ("u-2",)),
    )


def test_apply_group_replace_display_name_sets_it_without_member_changes() -> None:
    result = patch(
        group_doc(),
        {"op": "Replace", "path": "displayName", "value": "Copiers"},
        resource=GROUP_TYPE,
    )
    assert result.doc == {**group_doc(), "displayName": "Copiers"}
    assert result.members == ()


def test_apply_group_pathless_replace_of_external_id_sets_it() -> None:
    result = patch(
        group_doc(), {"op": "replace", "value": {"externalId": "gx-2"}}, resource=GROUP_TYPE
    )
    assert result.doc["externalId"] == "gx-2"


def test_apply_group_pathless_value_with_microsoft_schema_key_ignores_it() -> None:
    result = patch(
        group_doc(),
        {
            "op": "replace",
            "value": {
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group": {},
                "displayName": "Renamed",
            },
        },
        resource=GROUP_TYPE,
    )
    assert result.doc["displayName"] == "Renamed"


def test_apply_group_pathless_members_key_is_member_change() -> None:
    result = patch(
        group_doc(),
        {"op": "add", "value": {"displayName": "New", "members": [{"value": "u-1"}]}},
        resource=GROUP_TYPE,
    )
    assert result.members == (MemberChange("add", ("u-1",)),)
    assert result.doc["displayName"] == "New"
    assert "members" not in result.doc


def test_apply_members_filter_on_other_sub_attribute_is_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        group_changes({"op": "remove", "path": 'members[display eq "Ada"]'})


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "members.value", "value": "u-1"},
        {"op": "add", "path": 'members[value eq "u-1"]', "value": {"value": "u-2"}},
        {"op": "replace", "path": 'members[value eq "u-1"].value', "value": "u-2"},
    ],
)
def test_apply_members_sub_attribute_or_filtered_add_is_invalid_path(
    operation: dict[str, Any],
) -> None:
    with pytest.raises(InvalidPath):
        group_changes(operation)


def test_apply_members_display_path_is_mutability() -> None:
    with pytest.raises(Mutability):
        group_changes({"op": "replace", "path": "members.display", "value": "x"})


@pytest.mark.parametrize(
    "value", [None, "", "u-1", [{"display": "x"}], [{"value": 3}], [{"value": ""}]]
)
def test_apply_members_add_malformed_value_is_invalid_value(value: object) -> None:
    with pytest.raises(InvalidValue):
        group_changes({"op": "add", "path": "members", "value": value})


def test_apply_members_on_user_is_invalid_path() -> None:
    with pytest.raises(InvalidPath):
        patched(user_doc(), {"op": "add", "path": "members", "value": [{"value": "u-1"}]})


# RFC 7644 §3.5.2 examples ---------------------------------------------------------------------


def test_apply_rfc_add_member_single_object() -> None:
    changes = group_changes(
        {
            "op": "add",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                    "value": "2819c223-7f76-453a-919d-413861904646",
                }
            ],
        }
    )
    assert changes == (MemberChange("add", ("2819c223-7f76-453a-919d-413861904646",)),)


def test_apply_rfc_remove_emails_by_compound_filter() -> None:
    doc = patched(
        user_doc(
            emails=[
                {"type": "work", "value": "a@example.com"},
                {"type": "work", "value": "b@other.org"},
                {"type": "home", "value": "c@example.com"},
            ]
        ),
        {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'},
    )
    assert doc["emails"] == [
        {"type": "work", "value": "b@other.org"},
        {"type": "home", "value": "c@example.com"},
    ]


def test_apply_rfc_replace_filtered_address_merges_object() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "replace",
            "path": 'addresses[type eq "work"]',
            "value": {
                "type": "work",
                "streetAddress": "911 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "US",
                "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
                "primary": True,
            },
        },
    )
    assert doc["addresses"][0] == {
        "type": "work",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "primary": True,
    }
    assert doc["addresses"][1] == {"type": "home", "locality": "Shelbyville"}


def test_apply_rfc_replace_filtered_sub_attribute() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].streetAddress',
            "value": "1010 Broadway Ave",
        },
    )
    assert doc["addresses"][0]["streetAddress"] == "1010 Broadway Ave"
    assert doc["addresses"][0]["locality"] == "Springfield"


def test_apply_rfc_remove_filtered_sub_attribute_keeps_item() -> None:
    doc = patched(user_doc(), {"op": "remove", "path": 'addresses[type eq "work"].formatted'})
    assert "formatted" not in doc["addresses"][0]
    assert doc["addresses"][0]["locality"] == "Springfield"


def test_apply_rfc_remove_whole_multi_valued_attribute() -> None:
    assert "emails" not in patched(user_doc(), {"op": "remove", "path": "emails"})


def test_apply_remove_filtered_without_match_changes_nothing() -> None:
    before = user_doc()
    assert patched(before, {"op": "remove", "path": 'emails[type eq "other"]'}) == before


def test_apply_remove_absent_attribute_changes_nothing() -> None:
    before = user_doc()
    assert patched(before, {"op": "remove", "path": "nickName"}) == before
    assert patched(before, {"op": "remove", "path": f"{PRINTSYNC_USER}:office"}) == before


# Multi-valued attributes ----------------------------------------------------------------------


def test_apply_add_multi_valued_appends_and_dedupes_identical_values() -> None:
    doc = patched(
        user_doc(),
        {
            "op": "add",
            "path": "emails",
            "value": [
                {"type": "home", "value": "ada@home.example"},
                {"type": "other", "value": "o@x.y"},
                {"type": "other", "value": "o@x.y"},
            ],
        },
    )
    assert [item["value"] for item in doc["emails"]] == [
        "ada@work.example",
        "ada@home.example",
        "o@x.y",
    ]


def test_apply_add_primary_value_makes_previous_primary_false() -> None:
    doc = patched(
        user_doc(),
        {"op": "add", "path": "emails", "value": [{"value": "new@x.y", "primary": "True"}]},
    )
    assert [item.get("primary") for item in doc["emails"]] == [False, None, True]


def test_apply_replace_filtered_primary_true_moves_primary() -> None:
    doc = patched(
        user_doc(), {"op": "replace", "path": 'emails[type eq "home"].primary', "value": "true"}
    )
    assert email(doc, "home")[0]["primary"] is True
    assert email(doc, "work")[0]["primary"] is False


def test_apply_replace_multi_valued_sets_it() -> None:
    doc = patched(
        user_doc(),
        {"op": "replace", "path": "phoneNumbers", "value": [{"type": "work", "value": "9"}]},
    )
    assert doc["phoneNumbers"] == [{"type": "work", "value": "9"}]


def test_apply_replace_multi_valued_with_two_primaries_is_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="primary"):
        patched(
            user_doc(),
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "a@x.y", "primary": True}, {"value": "b@x.y", "primary": True}],
            },
        )


def test_apply_remove_multi_valued_with_value_list_removes_only_listed() -> None:
    doc = patched(
        user_doc(), {"op": "remove", "path": "emails", "value": [{"value": "ADA@HOME.EXAMPLE"}]}
    )
    assert doc["emails"] == [{"type": "work", "value": "ada@work.example", "primary": True}]


def test_apply_sub_attribute_without_filter_applies_to_every_item() -> None:
    doc = patched(user_doc(), {"op": "replace", "path": "phoneNumbers.display", "value": "x"})
    assert all(item["display"] == "x" for item in doc["phoneNumbers"])


def test_apply_multi_valued_over_maximum_size_is_invalid_value() -> None:
    with pytest.raises(InvalidValue):
        patched(
            user_doc(),
            {"op": "add", "path": "emails", "value": [{"value": f"{n}@x.y"} for n in range(99)]},
        )


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ('emails[type eq "WORK"].display', ["work"]),
        ('emails[type ne "work"].display', ["home", "other"]),
        ('emails[value co "@HOME"].display', ["home"]),
        ('emails[value sw "ada@"].display', ["work", "home"]),
        ('emails[value ew ".example"].display', ["work", "home"]),
        ("emails[primary pr].display", ["work"]),
        ("emails[primary eq true].display", ["work"]),
        ('emails[primary eq "True"].display', ["work"]),
        ("emails[primary ne true].display", ["home", "other"]),
        ('emails[not (type eq "work")].display', ["home", "other"]),
        ('emails[type eq "home" or type eq "other"].display', ["home", "other"]),
        ('emails[(type eq "home" or type eq "work") and not (primary eq true)].display', ["home"]),
        ('emails[value gt "ada@i"].display', ["work", "other"]),
        ('emails[value le "ada@home.example"].display', ["home"]),
        ("emails[display eq null].display", ["work", "home", "other"]),
        ('emails[not type eq "work"].display', ["home", "other"]),
        ("emails[not primary pr].display", ["home", "other"]),
        ('emails[not type eq "home" and not primary eq true].display', ["other"]),
    ],
)
def test_apply_value_filter_operators_select_matching_items(path: str, matched: list[str]) -> None:
    start = user_doc(
        emails=[
            {"type": "work", "value": "ada@work.example", "primary": True},
            {"type": "home", "value": "ada@home.example"},
            {"type": "other", "value": "o@else.where"},
        ]
    )
    doc = patched(start, {"op": "replace", "path": path, "value": "hit"})
    assert [item["type"] for item in doc["emails"] if item.get("display") == "hit"] == matched


# Paths ----------------------------------------------------------------------------------------


def test_apply_core_urn_qualified_path_sets_core_attribute() -> None:
    doc = patched(
        user_doc(),
        {"op": "replace", "path": f"{USER}:displayName", "value": "Q"},
        {"op": "replace", "path": f"{USER}:name.givenName", "value": "R"},
    )
    assert doc["displayName"] == "Q"
    assert doc["name"]["givenName"] == "R"


def test_apply_unqualified_extension_attribute_path_resolves_to_extension() -> None:
    doc = patched(user_doc(), {"op": "replace", "path": "department", "value": "Ops"})
    assert doc[ENTERPRISE]["department"] == "Ops"


def test_apply_schema_urn_path_adds_extension_object() -> None:
    doc = patched(
        user_doc(),
        {"op": "add", "path": PRINTSYNC_USER, "value": {"cardNumber": "77", "office": "HQ"}},
    )
    assert doc[PRINTSYNC_USER] == {"cardNumber": "77", "office": "HQ"}
    assert doc["schemas"] == [USER, ENTERPRISE, PRINTSYNC_USER]


def test_apply_remove_schema_urn_path_drops_extension() -> None:
    doc = patched(user_doc(), {"op": "remove", "path": ENTERPRISE})
    assert ENTERPRISE not in doc
    assert doc["schemas"] == [USER]


@pytest.mark.parametrize(
    "path",
    [
        "favouriteColour",
        "name.nickname",
        "name.givenName.first",
        "emails.label",
        'emails[type eq "work"].label',
        'emails[type eq "work"]x',
        'emails[type eq "work"',
        'emails[type eq "work"].',
        "urn:example:unknown:attr",
        f"{ENTERPRISE}:shoeSize",
        f"{USER}:department",
        'emails[type eq "work"][value eq "a"]',
        "",
        "   ",
        ".",
        "name.",
        '[type eq "work"]',
        f'{ENTERPRISE}[type eq "x"]',
        'displayName[value eq "x"]',
        'name[givenName eq "x"]',
        'emails[type eq "x].value',
    ],
)
def test_apply_unknown_or_malformed_path_is_invalid_path(path: str) -> None:
    with pytest.raises(InvalidPath):
        patched(user_doc(), {"op": "replace", "path": path, "value": "x"})


@pytest.mark.parametrize(
    "path",
    [
        'emails[label eq "x"].value',
        'emails[type is "x"].value',
        'emails[type eq "\\q"].value',
        "emails[type eq work].value",
        "emails[type eq].value",
        "emails[].value",
        'emails[type eq "a" and].value',
        'emails[(type eq "a"].value',
        "emails[primary co true]",
        "emails[type eq 5].value",
        "emails[type gt null].value",
        "emails[not]",
        'emails[value co "a" or not]',
        'emails[type eq "a" value eq "b"]',
        "emails[" + "(" * 40 + "type pr" + ")" * 40 + "]",
    ],
)
def test_apply_malformed_value_filter_is_invalid_filter(path: str) -> None:
    with pytest.raises(InvalidFilter):
        patched(user_doc(), {"op": "remove", "path": path})


@pytest.mark.parametrize(
    "path",
    ["id", "meta", "meta.created", "groups", 'groups[value eq "g"].display', "ID", f"{USER}:id"],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_apply_read_only_target_is_mutability(path: str, op: str) -> None:
    with pytest.raises(Mutability):
        patched(user_doc(), {"op": op, "path": path, "value": "x"})


def test_apply_pathless_value_with_other_id_is_mutability() -> None:
    with pytest.raises(Mutability):
        patched(user_doc(), {"op": "replace", "value": {"id": "someone-else"}})


def test_apply_pathless_value_with_unknown_key_is_invalid_path() -> None:
    with pytest.raises(InvalidPath):
        patched(user_doc(), {"op": "replace", "value": {"displayName": "A", "shoeSize": 42}})


def test_apply_password_is_accepted_and_never_stored() -> None:
    doc = patched(user_doc(), {"op": "replace", "path": "password", "value": "s3cret!"})
    assert "password" not in doc
    assert doc == user_doc()


# Value filters follow the list filter grammar ------------------------------------------------

BADGES = "urn:example:params:scim:schemas:extension:badges:2.0:User"
BADGES_TYPE = ResourceType(
    "User",
    "/Users",
    "Users with dated badges.",
    USER_SCHEMA,
    (
        ENTERPRISE_SCHEMA,
        PRINTSYNC_SCHEMA,
        Schema(
            BADGES,
            "Badges",
            "Elements with a dateTime sub-attribute",
            (
                Attribute(
                    "badges",
                    "complex",
                    multi_valued=True,
                    sub_attributes=(
                        Attribute("value"),
                        Attribute("display"),
                        Attribute("issued", "dateTime"),
                    ),
                ),
            ),
        ),
    ),
    frozenset({USER.lower(), ENTERPRISE.lower(), PRINTSYNC_USER.lower(), BADGES.lower()}),
)


def badge_doc() -> dict[str, Any]:
    badges = [
        {"value": "a", "issued": "2024-06-01T12:00:00Z"},
        {"value": "b", "issued": "2024-06-01T13:30:00.5+01:00"},
        {"value": "c", "issued": "2024-06-02T00:00:00.000000Z"},
    ]
    return {
        "schemas": [USER, BADGES],
        "id": "u-1",
        "userName": "ada@example.com",
        BADGES: {"badges": badges},
        "meta": {"resourceType": "User"},
    }


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ('badges[issued eq "2024-06-01T14:00:00+02:00"].display', ["a"]),
        ('badges[issued eq "2024-06-01T12:30:00.500Z"].display', ["b"]),
        ('badges[issued gt "2024-06-01T14:00:00+02:00"].display', ["b", "c"]),
        ('badges[issued lt "2024-06-01T08:30:00.6-04:00"].display', ["a", "b"]),
        ('badges[issued ge "2024-06-01T12:30:00.5000001Z"].display', ["c"]),
        ('badges[issued ne "2024-06-01t12:00:00z"].display', ["b", "c"]),
        ('badges[not issued le "2024-06-01T23:59:59.9999999Z"].display', ["c"]),
    ],
)
def test_apply_value_filter_datetime_with_offset_compares_instants(
    path: str, matched: list[str]
) -> None:
    result = apply(
        BADGES_TYPE,
        badge_doc(),
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": "hit"}]},
    )
    badges = result.doc[BADGES]["badges"]
    assert [badge["value"] for badge in badges if badge.get("display") == "hit"] == matched


@pytest.mark.parametrize(
    "path",
    [
        'badges[issued gt "yesterday"].display',
        'badges[issued gt "2024-02-30T00:00:00Z"].display',
        'badges[issued gt "2024-06-01T00:00:00+24:00"].display',
        'badges[issued co "2024"].display',
        "badges[issued eq 2024].display",
    ],
)
def test_apply_value_filter_bad_datetime_is_invalid_filter(path: str) -> None:
    with pytest.raises(InvalidFilter):
        apply(
            BADGES_TYPE,
            badge_doc(),
            {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": path}]},
        )


def test_apply_remove_by_filter_with_not_without_parentheses_keeps_the_rest() -> None:
    doc = patched(user_doc(), {"op": "remove", "path": 'emails[not type eq "work"]'})
    assert [item["type"] for item in doc["emails"]] == ["work"]


# Request envelope errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "patch",
        {"Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": PATCH_OP, "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": [USER], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": [PATCH_OP]},
        {"schemas": [PATCH_OP], "Operations": []},
        {"schemas": [PATCH_OP], "Operations": {"op": "add"}},
        {"schemas": [PATCH_OP], "Operations": ["add"]},
        {"schemas": [PATCH_OP], "Operations": [{"path": "title", "value": "x"}]},
        {"schemas": [PATCH_OP], "Operations": [{"op": "move", "path": "title", "value": "x"}]},
        {"schemas": [PATCH_OP], "Operations": [{"op": 1, "path": "title", "value": "x"}]},
    ],
)
def test_apply_malformed_request_is_invalid_syntax(body: object) -> None:
    with pytest.raises(InvalidSyntax):
        apply(USER_TYPE, user_doc(), body)


def test_apply_envelope_keys_in_any_case_are_accepted() -> None:
    result = apply(
        USER_TYPE,
        user_doc(),
        {
            "SCHEMAS": [PATCH_OP.upper()],
            "operations": [{"OP": "replace", "Path": "title", "VALUE": "Dr"}],
        },
    )
    assert result.doc["title"] == "Dr"


def test_apply_maximum_number_of_operations_is_accepted() -> None:
    operations = [
        {"op": "replace", "path": "title", "value": str(n)} for n in range(MAX_OPERATIONS)
    ]
    assert patched(user_doc(), *operations)["title"] == str(MAX_OPERATIONS - 1)


def test_apply_too_many_operations_is_invalid_value() -> None:
    operations = [{"op": "replace", "path": "title", "value": "x"}] * (MAX_OPERATIONS + 1)
    with pytest.raises(InvalidValue, match=str(MAX_OPERATIONS)):
        patched(user_doc(), *operations)


def test_apply_remove_without_path_is_no_target() -> None:
    with pytest.raises(NoTarget):
        patched(user_doc(), {"op": "remove", "value": {"displayName": "x"}})


@pytest.mark.parametrize("op", ["add", "replace"])
def test_apply_add_or_replace_without_value_is_invalid_value(op: str) -> None:
    with pytest.raises(InvalidValue):
        patched(user_doc(), {"op": op, "path": "title"})


@pytest.mark.parametrize("value", ["x", 5, ["a"], True])
def test_apply_pathless_non_object_value_is_invalid_value(value: object) -> None:
    with pytest.raises(InvalidValue):
        patched(user_doc(), {"op": "add", "value": value})


def test_apply_path_not_a_string_is_invalid_path() -> None:
    with pytest.raises(InvalidPath):
        patched(user_doc(), {"op": "add", "path": ["title"], "value": "x"})


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "userName", "value": 5},
        {"op": "replace", "path": "active", "value": "maybe"},
        {"op": "replace", "path": "emails", "value": "a@b.c"},
        {"op": "add", "path": "emails", "value": [{"value": {"nested": 1}}]},
        {"op": "replace", "path": "name", "value": "Ada Lovelace"},
        {"op": "replace", "path": "name.givenName", "value": ["Ada"]},
        {"op": "replace", "path": 'emails[type eq "work"].primary', "value": "yes"},
        {"op": "replace", "path": 'emails[type eq "work"]', "value": "a@b.c"},
        {"op": "add", "path": "manager", "value": 7},
        {"op": "replace", "path": "title", "value": "x" * 4097},
    ],
)
def test_apply_value_of_wrong_type_is_invalid_value(operation: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue):
        patched(user_doc(), operation)


def test_apply_removing_required_user_name_is_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="userName"):
        patched(user_doc(), {"op": "remove", "path": "userName"})


def test_apply_error_detail_names_the_failing_operation() -> None:
    with pytest.raises(InvalidPath, match=r"Operations\[1\]"):
        patched(
            user_doc(),
            {"op": "add", "path": "title", "value": "x"},
            {"op": "add", "path": "nope", "value": "x"},
        )


# All-or-nothing and result shape -------------------------------------------------------------


def test_apply_failing_later_operation_leaves_document_unchanged() -> None:
    doc = user_doc()
    before = copy.deepcopy(doc)
    with pytest.raises(InvalidValue):
        patched(
            doc,
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "z@z"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "active", "value": "perhaps"},
        )
    assert doc == before


def test_apply_success_does_not_modify_input_document() -> None:
    doc = user_doc()
    before = copy.deepcopy(doc)
    result = patched(
        doc,
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "z"},
        {"op": "replace", "path": "name.givenName", "value": "Q"},
    )
    assert doc == before
    result["meta"]["version"] = "changed"
    assert doc["meta"] == before["meta"]


def test_apply_keeps_id_and_meta_untouched() -> None:
    result = patched(user_doc(), {"op": "replace", "path": "title", "value": "Dr"})
    assert result["id"] == "u-1"
    assert result["meta"] == {"resourceType": "User", "version": 'W/"3"'}
    assert list(result)[:2] == ["schemas", "id"]


def test_apply_document_without_id_or_meta_is_patched() -> None:
    doc = resources.validate(USER_TYPE, {"schemas": [USER], "userName": "a"})
    assert patched(doc, {"op": "add", "path": "title", "value": "t"}) == {**doc, "title": "t"}


# Properties -----------------------------------------------------------------------------------

json_values = builders.json_values(text=12, key=10, width=3, leaves=12)
known_paths = st.sampled_from(
    [
        "displayName",
        "active",
        "name",
        "name.givenName",
        "emails",
        'emails[type eq "work"].value',
        'emails[type eq "work"]',
        "emails[primary eq true].primary",
        'addresses[type eq "work"].country',
        'phoneNumbers[type eq "mobile" or value sw "+1"].value',
        "emails.value",
        "roles",
        "id",
        "meta.created",
        "groups",
        "manager",
        f"{ENTERPRISE}:manager",
        f"{ENTERPRISE}:manager.value",
        f"{ENTERPRISE}:department",
        ENTERPRISE,
        PRINTSYNC_USER,
        "members",
        'members[value eq "u"]',
        "userName",
        "password",
        "externalId",
        "emails[not (type pr)]",
        "emails[",
        "x.y.z",
    ]
)
paths = st.one_of(known_paths, known_paths, known_paths, st.text(max_size=30), st.integers())
known_values = st.sampled_from(
    [
        "",
        "True",
        "false",
        "text",
        {"value": ""},
        {"value": "m-1"},
        [{"value": "u-1", "$ref": None}],
        [{"type": "work", "value": "a@b.c", "primary": True}],
        {"givenName": "A", "familyName": None},
        [{"value": "u-2"}, {"value": "u-3"}],
        {"displayName": "D", "name.familyName": "F", f"{ENTERPRISE}:employeeNumber": "1"},
        {ENTERPRISE: {"department": "X", "manager": "m"}},
        {"externalId": "e", "members": []},
    ]
)
values = st.one_of(known_values, known_values, json_values)
op_names = st.sampled_from(["add", "Add", "replace", "Replace", "remove", "REMOVE", "move", 3])
operations = st.one_of(
    st.fixed_dictionaries({"op": op_names, "path": paths, "value": values}),
    st.fixed_dictionaries({"op": op_names, "value": values}),
    st.fixed_dictionaries({"op": op_names}, optional={"path": paths, "value": values}),
    json_values,
)
well_formed = st.builds(
    lambda ops: {"schemas": [PATCH_OP], "Operations": ops},
    st.lists(operations, min_size=1, max_size=5),
)
valid_op_names = st.sampled_from(["add", "Add", "replace", "Replace", "remove", "REMOVE"])
plausible_bodies = st.builds(
    lambda ops: {"schemas": [PATCH_OP], "Operations": ops},
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"op": valid_op_names, "path": known_paths, "value": values}),
            st.fixed_dictionaries({"op": valid_op_names, "value": values}),
            st.fixed_dictionaries({"op": valid_op_names, "path": known_paths}),
        ),
        min_size=1,
        max_size=4,
    ),
)
bodies = st.one_of(
    well_formed,
    well_formed,
    well_formed,
    json_values,
    st.dictionaries(st.sampled_from(["schemas", "Operations", "operations"]), json_values),
)


def apply_leaving_input(
    resource: ResourceType, doc: dict[str, Any], body: object
) -> PatchResult | None:
    """``apply``, checking that ``doc`` is left as it was whether it succeeds or raises a SCIM
    error; ``None`` for a SCIM error (anything else propagates)."""
    before = copy.deepcopy(doc)
    try:
        result = apply(resource, doc, body)
    except ScimError:
        assert doc == before
        return None
    assert doc == before
    return result


@settings(max_examples=400, deadline=None)
@given(body=bodies)
def test_apply_arbitrary_body_raises_only_scim_errors_and_keeps_input(body: object) -> None:
    for resource, doc in ((USER_TYPE, user_doc()), (GROUP_TYPE, group_doc())):
        result = apply_leaving_input(resource, doc, body)
        if result is None:
            continue
        client = {key: value for key, value in result.doc.items() if key not in ("id", "meta")}
        assert resources.validate(resource, client) == client


@settings(max_examples=400, deadline=None)
@given(body=plausible_bodies)
def test_apply_plausible_body_yields_valid_document_or_scim_error(body: object) -> None:
    for resource, doc in ((USER_TYPE, user_doc()), (GROUP_TYPE, group_doc())):
        result = apply_leaving_input(resource, doc, body)
        if result is None:
            continue
        assert result.doc["id"] == doc["id"]
        assert result.doc["meta"] == doc["meta"]
        client = {key: value for key, value in result.doc.items() if key not in ("id", "meta")}
        assert resources.validate(resource, client) == client
        assert all(isinstance(change, MemberChange) for change in result.members)
