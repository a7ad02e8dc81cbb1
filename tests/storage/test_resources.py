"""Validation and normalization of resource bodies, and the derived record columns."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import indexed
from storage.scim import resources
from storage.scim.errors import InvalidSyntax, InvalidValue, ScimError
from storage.scim.schema import (
    ENTERPRISE_USER,
    GROUP,
    GROUP_TYPE,
    MICROSOFT_GROUP,
    PRINTSYNC_USER,
    USER,
    USER_TYPE,
)
from tests import builders


def user(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": "ada@example.com", **attributes}


def validated(**attributes: Any) -> dict[str, Any]:
    return resources.validate(USER_TYPE, user(**attributes))


def entra_post() -> dict[str, Any]:
    """The user POST body of ENTRA.md §2."""
    return {
        "schemas": [USER, ENTERPRISE_USER],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "roles": [],
    }


# Entra shapes (ENTRA.md §2-3) ----------------------------------------------------------------


def test_validate_entra_user_post_keeps_values_as_sent() -> None:
    doc = resources.validate(USER_TYPE, entra_post())
    assert doc == {
        "schemas": [USER],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
    }


def test_validate_entra_user_meta_is_ignored() -> None:
    doc = resources.validate(USER_TYPE, entra_post())
    assert "meta" not in doc


def test_validate_empty_roles_list_is_accepted_and_dropped() -> None:
    doc = validated(roles=[])
    assert "roles" not in doc


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("True", True),
        ("true", True),
        ("TRUE", True),
        ("False", False),
        ("false", False),
        ("fAlSe", False),
        (True, True),
        (False, False),
    ],
)
def test_validate_active_string_or_real_boolean_is_stored_as_boolean(
    sent: object, stored: bool
) -> None:
    assert validated(active=sent)["active"] is stored


def test_validate_primary_string_boolean_is_stored_as_boolean() -> None:
    doc = validated(emails=[{"type": "work", "value": "a@example.com", "primary": "True"}])
    assert doc["emails"][0]["primary"] is True


def test_validate_null_attributes_are_treated_as_absent() -> None:
    doc = validated(
        displayName=None,
        name={"givenName": None, "familyName": "Lovelace"},
        emails=[None, {"value": "a@example.com", "type": None}],
        title=None,
    )
    assert doc == {
        "schemas": [USER],
        "userName": "ada@example.com",
        "name": {"familyName": "Lovelace"},
        "emails": [{"value": "a@example.com"}],
    }


def test_validate_empty_values_are_treated_as_absent() -> None:
    doc = validated(displayName="", name={"givenName": ""}, emails=[], phoneNumbers=[{}])
    assert doc == {"schemas": [USER], "userName": "ada@example.com"}


def test_validate_entra_group_post_accepts_and_ignores_microsoft_schema() -> None:
    body = {
        "schemas": [GROUP, MICROSOFT_GROUP],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Group1DisplayName",
        "meta": {"resourceType": "Group"},
    }
    doc, members = resources.validate_group(body)
    assert doc == {
        "schemas": [GROUP],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Group1DisplayName",
    }
    assert members is None


def test_validate_microsoft_group_schema_for_user_is_invalid_syntax() -> None:
    with pytest.raises(InvalidSyntax):
        resources.validate(USER_TYPE, {"schemas": [USER, MICROSOFT_GROUP], "userName": "a"})


# Canonical names and extensions ---------------------------------------------------------------


def test_validate_attribute_names_are_canonicalized_case_insensitively() -> None:
    body = {
        "SCHEMAS": [USER.upper()],
        "USERNAME": "ada",
        "Name": {"GIVENNAME": "Ada"},
        "eMails": [{"VALUE": "a@example.com", "Type": "work", "PRIMARY": "true"}],
        "ExternalID": "x-1",
    }
    doc = resources.validate(USER_TYPE, body)
    assert doc == {
        "schemas": [USER],
        "userName": "ada",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "a@example.com", "type": "work", "primary": True}],
        "externalId": "x-1",
    }


def test_validate_extension_attributes_are_nested_under_their_urn() -> None:
    body = user(
        **{
            "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
            ENTERPRISE_USER.upper(): {"Department": "Research", "employeeNumber": "42"},
            PRINTSYNC_USER: {"cardNumber": "0042"},
        }
    )
    doc = resources.validate(USER_TYPE, body)
    assert doc["schemas"] == [USER, ENTERPRISE_USER, PRINTSYNC_USER]
    assert doc[ENTERPRISE_USER] == {"department": "Research", "employeeNumber": "42"}
    assert doc[PRINTSYNC_USER] == {"cardNumber": "0042"}


def test_validate_urn_qualified_top_level_key_lands_in_its_extension() -> None:
    doc = validated(**{f"{ENTERPRISE_USER}:department": "Research", f"{USER}:displayName": "Ada"})
    assert doc[ENTERPRISE_USER] == {"department": "Research"}
    assert doc["displayName"] == "Ada"
    assert doc["schemas"] == [USER, ENTERPRISE_USER]


def test_validate_extension_listed_without_attributes_is_left_out_of_schemas() -> None:
    doc = resources.validate(
        USER_TYPE,
        {
            "schemas": [USER, ENTERPRISE_USER],
            "userName": "a",
            ENTERPRISE_USER: {"department": None},
        },
    )
    assert doc == {"schemas": [USER], "userName": "a"}


def test_validate_extension_not_listed_in_schemas_is_still_accepted() -> None:
    doc = validated(**{ENTERPRISE_USER: {"costCenter": "7"}})
    assert doc["schemas"] == [USER, ENTERPRISE_USER]


def test_validate_unknown_attribute_names_are_dropped() -> None:
    doc = validated(
        favouriteColour="blue",
        name={"givenName": "Ada", "nickname2": "x"},
        emails=[{"value": "a@example.com", "label": "x"}],
        **{ENTERPRISE_USER: {"shoeSize": 42}, "urn:example:other:attr": "x"},
    )
    assert doc == {
        "schemas": [USER],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada"},
        "emails": [{"value": "a@example.com"}],
    }


def test_validate_read_only_attributes_are_ignored() -> None:
    doc = validated(
        id="client-chosen",
        meta={"created": "yesterday"},
        groups=[{"value": "g1"}],
        **{ENTERPRISE_USER: {"manager": {"value": "m1", "displayName": "Boss"}}},
    )
    assert "id" not in doc and "meta" not in doc and "groups" not in doc
    assert doc[ENTERPRISE_USER] == {"manager": {"value": "m1"}}


def test_validate_password_is_dropped() -> None:
    assert "password" not in validated(password="hunter2")


def test_validate_same_attribute_twice_in_different_case_is_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="displayName"):
        validated(displayName="a", DISPLAYNAME="b")


def test_validate_values_are_kept_exactly_as_sent() -> None:
    doc = validated(
        userName=" Ada.Lovelace@Example.COM ",
        displayName="  Ada  ",
        emails=[{"value": "Ada@Example.COM", "type": "Work"}],
    )
    assert doc["userName"] == " Ada.Lovelace@Example.COM "
    assert doc["displayName"] == "  Ada  "
    assert doc["emails"] == [{"value": "Ada@Example.COM", "type": "Work"}]


def test_validate_roles_given_as_json_text_are_stored_as_sent() -> None:
    role = '{"id":"7a2f","value":"25","displayName":"Role1234"}'
    assert validated(roles=[{"value": role}])["roles"] == [{"value": role}]


# schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schemas",
    [
        None,
        "urn:ietf:params:scim:schemas:core:2.0:User",
        [],
        [GROUP],
        [USER, 7],
        [USER, "urn:example:unknown"],
        ["urn:example:unknown"],
    ],
)
def test_validate_bad_schemas_is_invalid_syntax(schemas: object) -> None:
    with pytest.raises(InvalidSyntax):
        resources.validate(USER_TYPE, {"schemas": schemas, "userName": "a"})


def test_validate_missing_schemas_is_invalid_syntax() -> None:
    with pytest.raises(InvalidSyntax, match="schemas"):
        resources.validate(USER_TYPE, {"userName": "a"})


@pytest.mark.parametrize("body", [[], "user", 42, None, True])
def test_validate_body_not_an_object_is_invalid_syntax(body: object) -> None:
    with pytest.raises(InvalidSyntax):
        resources.validate(USER_TYPE, body)


# Types and bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"userName": 42}, "userName"),
        ({"userName": ["a"]}, "userName"),
        ({"displayName": {"a": 1}}, "displayName"),
        ({"title": 3.5}, "title"),
        ({"active": "yes"}, "active"),
        ({"active": 1}, "active"),
        ({"emails": "a@example.com"}, "emails"),
        ({"emails": {"value": "a@example.com"}}, "emails"),
        ({"emails": ["a@example.com"]}, "emails[0]"),
        ({"emails": [{"value": 5}]}, "emails[0].value"),
        ({"emails": [{"value": "a", "primary": "maybe"}]}, "emails[0].primary"),
        ({"name": "Ada Lovelace"}, "name"),
        ({"name": {"givenName": {"x": 1}}}, "name.givenName"),
        ({"externalId": 7}, "externalId"),
        ({ENTERPRISE_USER: "Research"}, ENTERPRISE_USER),
        ({ENTERPRISE_USER: {"department": 7}}, "department"),
    ],
)
def test_validate_wrong_type_is_invalid_value_naming_the_attribute(
    attributes: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        validated(**attributes)
    assert named in raised.value.detail


def test_validate_error_detail_does_not_echo_the_value() -> None:
    with pytest.raises(InvalidValue) as raised:
        validated(**{PRINTSYNC_USER: {"cardNumber": ["123456789"]}})
    assert "123456789" not in raised.value.detail


@pytest.mark.parametrize("user_name", [None, "", "   ", "\t"])
def test_validate_missing_or_blank_user_name_is_invalid_value(user_name: object) -> None:
    with pytest.raises(InvalidValue, match="userName"):
        resources.validate(USER_TYPE, {"schemas": [USER], "userName": user_name})


@pytest.mark.parametrize("display_name", [None, "", "  "])
def test_validate_group_missing_or_blank_display_name_is_invalid_value(
    display_name: object,
) -> None:
    with pytest.raises(InvalidValue, match="displayName"):
        resources.validate_group({"schemas": [GROUP], "displayName": display_name})


def test_validate_string_of_maximum_length_is_accepted() -> None:
    assert validated(displayName="x" * 4096)["displayName"] == "x" * 4096


@pytest.mark.parametrize(
    "attributes",
    [
        {"displayName": "x" * 4097},
        {"emails": [{"value": "x" * 4097}]},
        {ENTERPRISE_USER: {"manager": "x" * 4097}},
    ],
)
def test_validate_string_over_maximum_length_is_invalid_value(
    attributes: dict[str, Any],
) -> None:
    with pytest.raises(InvalidValue, match="longer"):
        validated(**attributes)


def test_validate_multi_valued_list_of_maximum_size_is_accepted() -> None:
    doc = validated(emails=[{"value": f"{n}@example.com"} for n in range(100)])
    assert len(doc["emails"]) == 100


def test_validate_multi_valued_list_over_maximum_size_is_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="emails"):
        validated(emails=[{"value": f"{n}@example.com"} for n in range(101)])


def test_validate_group_members_are_not_bounded_by_list_size() -> None:
    _, members = resources.validate_group(
        {
            "schemas": [GROUP],
            "displayName": "big",
            "members": [{"value": str(n)} for n in range(500)],
        }
    )
    assert members is not None and len(members) == 500


def test_validate_two_primary_values_is_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="primary"):
        validated(
            emails=[
                {"value": "a@example.com", "primary": True},
                {"value": "b@example.com", "primary": "True"},
            ]
        )


# Manager ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("m-1", {"value": "m-1"}),
        ({"value": "m-1"}, {"value": "m-1"}),
        (
            {"Value": "m-1", "$ref": "https://h/scim/v2/Users/m-1"},
            {"value": "m-1", "$ref": "https://h/scim/v2/Users/m-1"},
        ),
        (
            [{"$ref": "https://h/scim/v2/Users/m-1", "value": "m-1"}],
            {"value": "m-1", "$ref": "https://h/scim/v2/Users/m-1"},
        ),
        ({"value": "m-1", "$ref": None, "displayName": "Boss"}, {"value": "m-1"}),
    ],
)
def test_validate_manager_in_any_shape_is_stored_as_object(sent: object, stored: object) -> None:
    doc = validated(**{ENTERPRISE_USER: {"manager": sent}})
    assert doc[ENTERPRISE_USER]["manager"] == stored


@pytest.mark.parametrize("sent", ["", "  ", {"value": ""}, {"value": None}, None, [], [None]])
def test_validate_empty_manager_clears_it(sent: object) -> None:
    doc = validated(**{ENTERPRISE_USER: {"manager": sent, "department": "R"}})
    assert doc[ENTERPRISE_USER] == {"department": "R"}


@pytest.mark.parametrize(
    "sent", [42, True, [{"value": "a"}, {"value": "b"}], {"value": 7}, {"value": "a", "$ref": 1}]
)
def test_validate_malformed_manager_is_invalid_value(sent: object) -> None:
    with pytest.raises(InvalidValue, match="manager"):
        validated(**{ENTERPRISE_USER: {"manager": sent}})


# Group members ------------------------------------------------------------------------------


def test_validate_group_members_are_ids_in_order_without_duplicates() -> None:
    body = {
        "schemas": [GROUP],
        "displayName": "g",
        "members": [
            {"value": "u2", "$ref": None},
            {"value": "u1", "display": "One"},
            {"value": "u2"},
            {"VALUE": "u3", "type": "User"},
        ],
    }
    doc, members = resources.validate_group(body)
    assert members == ["u2", "u1", "u3"]
    assert doc == {"schemas": [GROUP], "displayName": "g"}


@pytest.mark.parametrize(("sent", "ids"), [([], []), (None, None)])
def test_validate_group_empty_or_null_members(sent: object, ids: list[str] | None) -> None:
    _, members = resources.validate_group({"schemas": [GROUP], "displayName": "g", "members": sent})
    assert members == ids


def test_validate_group_members_are_not_part_of_the_document() -> None:
    doc = resources.validate(
        GROUP_TYPE, {"schemas": [GROUP], "displayName": "g", "members": [{"value": "u1"}]}
    )
    assert "members" not in doc


@pytest.mark.parametrize(
    "sent", ["u1", ["u1"], [{"display": "no value"}], [{"value": ""}], [{"value": 7}]]
)
def test_validate_group_malformed_members_is_invalid_value(sent: object) -> None:
    with pytest.raises(InvalidValue, match="members"):
        resources.validate_group({"schemas": [GROUP], "displayName": "g", "members": sent})


# Columns ------------------------------------------------------------------------------------


def test_columns_user_derives_lookup_columns() -> None:
    doc = validated(
        userName="Ada@Example.com",
        externalId="ext-1",
        displayName="Ada",
        active="False",
        emails=[
            {"value": "Home@Example.com", "type": "home"},
            {"value": "Ada.Work@Example.COM", "type": "Work"},
            {"value": "second@example.com", "type": "work"},
        ],
    )
    assert indexed.columns("User", doc) == {
        "user_name": "Ada@Example.com",
        "user_name_ci": "ada@example.com",
        "external_id": "ext-1",
        "display_name": "Ada",
        "work_email_ci": "ada.work@example.com",
        "active": False,
    }


def test_columns_user_without_work_email_or_active_defaults() -> None:
    doc = validated(emails=[{"value": "a@example.com"}, {"value": "b@example.com", "type": "home"}])
    columns = indexed.columns("User", doc)
    assert columns["work_email_ci"] is None
    assert columns["active"] is True
    assert columns["external_id"] is None
    assert columns["display_name"] is None


def test_columns_group_derives_display_name_columns() -> None:
    doc, _ = resources.validate_group(
        {"schemas": [GROUP], "displayName": "Print Admins", "externalId": "e-9"}
    )
    assert indexed.columns("Group", doc) == {
        "display_name": "Print Admins",
        "display_name_ci": "print admins",
        "external_id": "e-9",
    }


# Properties ---------------------------------------------------------------------------------

json_values = builders.json_values(text=20, key=12, width=4, leaves=20)
user_keys = st.sampled_from(
    [
        "userName",
        "USERNAME",
        "name",
        "displayName",
        "active",
        "emails",
        "phoneNumbers",
        "addresses",
        "roles",
        "groups",
        "password",
        "id",
        "meta",
        "externalId",
        "title",
        ENTERPRISE_USER,
        PRINTSYNC_USER,
        f"{ENTERPRISE_USER}:manager",
        "members",
        "schemas",
    ]
) | st.text(max_size=12)
user_bodies = st.dictionaries(user_keys, json_values, max_size=8).map(
    lambda body: {"schemas": [USER, ENTERPRISE_USER], "userName": "a", **body}
)


@settings(max_examples=300, deadline=None)
@given(body=json_values | user_bodies)
def test_validate_arbitrary_json_raises_only_scim_errors(body: object) -> None:
    for resource in (USER_TYPE, GROUP_TYPE):
        with contextlib.suppress(ScimError):
            resources.validate(resource, body)


@settings(max_examples=300, deadline=None)
@given(body=user_bodies)
def test_validate_result_validates_to_itself(body: dict[str, Any]) -> None:
    try:
        doc = resources.validate(USER_TYPE, body)
    except ScimError:
        return
    assert resources.validate(USER_TYPE, doc) == doc
