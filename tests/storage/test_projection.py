"""attributes / excludedAttributes projection (RFC 7644 §3.4.2.5, RFC 7643 ``returned``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.scim.projection import parse_attribute_list, project, wants_members
from storage.scim.schema import (
    ENTERPRISE_USER,
    GROUP,
    GROUP_TYPE,
    PRINTSYNC_USER,
    USER,
    USER_TYPE,
)

ENTERPRISE = ENTERPRISE_USER
META = {
    "resourceType": "User",
    "created": "2026-01-02T03:04:05.000000Z",
    "lastModified": "2026-01-02T03:04:05.000000Z",
    "version": 'W/"1"',
    "location": "https://h/scim/v2/Users/u-1",
}


def user_doc() -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE, PRINTSYNC_USER],
        "id": "u-1",
        "externalId": "ext-1",
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "active": True,
        "emails": [
            {"type": "work", "value": "ada@work.example", "primary": True},
            {"type": "home", "value": "ada@home.example"},
        ],
        "groups": [{"value": "g-1", "display": "Printers"}],
        ENTERPRISE: {"department": "Research", "manager": {"value": "m-1"}},
        PRINTSYNC_USER: {"cardNumber": "0042"},
        "meta": dict(META),
    }


def group_doc() -> dict[str, Any]:
    return {
        "schemas": [GROUP],
        "id": "g-1",
        "displayName": "Printers",
        "externalId": "gx-1",
        "members": [{"value": "u-1", "display": "Ada"}, {"value": "u-2"}],
        "meta": {"resourceType": "Group"},
    }


def users(attributes: str | None = None, excluded: str | None = None) -> dict[str, Any]:
    return project(
        USER_TYPE, user_doc(), parse_attribute_list(attributes), parse_attribute_list(excluded)
    )


# parse_attribute_list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        ("id", ("id",)),
        (" userName , name.givenName ,, emails ", ("userName", "name.givenName", "emails")),
        (f"{ENTERPRISE}:manager,id", (f"{ENTERPRISE}:manager", "id")),
    ],
)
def test_parse_attribute_list_splits_and_trims(raw: str | None, names: tuple[str, ...]) -> None:
    assert parse_attribute_list(raw) == names


# Default and always-returned ------------------------------------------------------------------


def test_project_without_lists_returns_whole_document() -> None:
    assert users() == user_doc()


def test_project_default_returns_manager_as_object() -> None:
    assert users()[ENTERPRISE]["manager"] == {"value": "m-1"}
    assert users(excluded="members,groups")[ENTERPRISE]["manager"] == {"value": "m-1"}


def test_project_never_returned_attribute_is_dropped_even_when_requested() -> None:
    doc = {**user_doc(), "password": "hunter2"}
    assert "password" not in project(USER_TYPE, doc, (), ())
    assert "password" not in project(USER_TYPE, doc, ("password", "userName"), ())


def test_project_attributes_id_returns_schemas_and_id_only() -> None:
    assert users("id") == {"schemas": [USER], "id": "u-1"}


def test_project_attributes_always_keeps_schemas_and_id() -> None:
    assert users("userName") == {"schemas": [USER], "id": "u-1", "userName": "ada@example.com"}


def test_project_excluded_always_returned_attributes_are_kept() -> None:
    projected = users(excluded="id,schemas,userName")
    assert projected["id"] == "u-1"
    assert projected["schemas"] == [USER, ENTERPRISE, PRINTSYNC_USER]
    assert "userName" not in projected


# attributes -----------------------------------------------------------------------------------


def test_project_attributes_sub_attribute_path_keeps_only_that_part() -> None:
    assert users("name.givenName")["name"] == {"givenName": "Ada"}


def test_project_attributes_sub_attribute_of_multi_valued_applies_to_each_item() -> None:
    assert users("emails.value")["emails"] == [
        {"value": "ada@work.example"},
        {"value": "ada@home.example"},
    ]


def test_project_attributes_whole_attribute_wins_over_its_sub_attribute() -> None:
    assert users("name.givenName,name")["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert users("name,name.givenName")["name"] == {"givenName": "Ada", "familyName": "Lovelace"}


def test_project_attributes_names_are_case_insensitive() -> None:
    projected = users("USERNAME,Name.GIVENNAME,EMAILS.Type")
    assert projected == {
        "schemas": [USER],
        "id": "u-1",
        "userName": "ada@example.com",
        "name": {"givenName": "Ada"},
        "emails": [{"type": "work"}, {"type": "home"}],
    }


def test_project_attributes_urn_qualified_extension_attribute() -> None:
    projected = users(f"{ENTERPRISE}:manager")
    assert projected == {
        "schemas": [USER, ENTERPRISE],
        "id": "u-1",
        ENTERPRISE: {"manager": {"value": "m-1"}},
    }


def test_project_attributes_urn_qualified_extension_sub_attribute() -> None:
    projected = users(f"{ENTERPRISE.lower()}:MANAGER.value")
    assert projected[ENTERPRISE] == {"manager": {"value": "m-1"}}


def test_project_attributes_whole_extension_urn() -> None:
    projected = users(PRINTSYNC_USER)
    assert projected == {
        "schemas": [USER, PRINTSYNC_USER],
        "id": "u-1",
        PRINTSYNC_USER: {"cardNumber": "0042"},
    }


def test_project_attributes_urn_qualified_core_attribute() -> None:
    assert users(f"{USER}:userName")["userName"] == "ada@example.com"


def test_project_attributes_core_urn_returns_core_attributes_only() -> None:
    projected = users(USER)
    assert ENTERPRISE not in projected and PRINTSYNC_USER not in projected
    assert projected["schemas"] == [USER]
    assert projected["emails"] == user_doc()["emails"]


def test_project_attributes_unqualified_extension_attribute_name() -> None:
    assert users("department")[ENTERPRISE] == {"department": "Research"}


def test_project_attributes_absent_attribute_is_simply_missing() -> None:
    assert users("nickName,id") == {"schemas": [USER], "id": "u-1"}


def test_project_attributes_unknown_names_are_ignored() -> None:
    assert users("shoeSize,name.nickname,urn:example:x:attr,,userName") == users("userName")


def test_project_attributes_meta_sub_attribute() -> None:
    assert users("meta.version")["meta"] == {"version": 'W/"1"'}


# excludedAttributes ---------------------------------------------------------------------------


def test_project_excluded_attribute_is_removed() -> None:
    projected = users(excluded="emails,groups")
    assert "emails" not in projected and "groups" not in projected
    assert projected["userName"] == "ada@example.com"


def test_project_excluded_sub_attribute_is_removed_from_each_item() -> None:
    projected = users(excluded="emails.primary,name.familyName")
    assert projected["emails"] == [
        {"type": "work", "value": "ada@work.example"},
        {"type": "home", "value": "ada@home.example"},
    ]
    assert projected["name"] == {"givenName": "Ada"}


def test_project_excluded_whole_extension_drops_its_schema_urn() -> None:
    projected = users(excluded=ENTERPRISE)
    assert ENTERPRISE not in projected
    assert projected["schemas"] == [USER, PRINTSYNC_USER]


def test_project_excluded_last_extension_attribute_drops_its_schema_urn() -> None:
    projected = users(excluded=f"{PRINTSYNC_USER}:cardNumber")
    assert PRINTSYNC_USER not in projected
    assert projected["schemas"] == [USER, ENTERPRISE]


def test_project_excluded_unknown_names_are_ignored() -> None:
    assert users(excluded="shoeSize,urn:example:x,emails.label") == user_doc()


def test_project_group_excluded_members_omits_them() -> None:
    projected = project(GROUP_TYPE, group_doc(), (), ("members",))
    assert projected == {
        "schemas": [GROUP],
        "id": "g-1",
        "displayName": "Printers",
        "externalId": "gx-1",
        "meta": {"resourceType": "Group"},
    }


def test_project_group_attributes_members_value() -> None:
    projected = project(GROUP_TYPE, group_doc(), ("members.value",), ())
    assert projected == {
        "schemas": [GROUP],
        "id": "g-1",
        "members": [{"value": "u-1"}, {"value": "u-2"}],
    }


def test_project_both_lists_select_then_exclude() -> None:
    projected = users("name,emails", "name.familyName")
    assert projected["name"] == {"givenName": "Ada"}
    assert set(projected) == {"schemas", "id", "name", "emails"}


def test_project_does_not_modify_the_document() -> None:
    doc = user_doc()
    before = copy.deepcopy(doc)
    project(USER_TYPE, doc, ("name.givenName", "emails.value"), ("emails.type",))
    project(USER_TYPE, doc, (), (ENTERPRISE, "name.familyName"))
    assert doc == before


# wants_members --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "excluded", "wanted"),
    [
        ((), (), True),
        ((), ("members",), False),
        ((), ("MEMBERS",), False),
        ((), (f"{GROUP}:members",), False),
        ((), ("members.display",), True),
        ((), ("displayName",), True),
        (("displayName",), (), False),
        (("id",), (), False),
        (("members",), (), True),
        (("members.value",), (), True),
        ((f"{GROUP}:Members",), (), True),
        ((GROUP,), (), True),
        (("members",), ("members",), False),
        (("shoeSize",), (), False),
    ],
)
def test_wants_members_follows_the_lists(
    attributes: tuple[str, ...], excluded: tuple[str, ...], wanted: bool
) -> None:
    assert wants_members(attributes, excluded) is wanted


# Properties -----------------------------------------------------------------------------------

names = st.sampled_from(
    [
        "id",
        "schemas",
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.value",
        "meta",
        "meta.version",
        "groups.display",
        ENTERPRISE,
        f"{ENTERPRISE}:manager.value",
        PRINTSYNC_USER,
        "department",
        USER,
        "members",
        "password",
        "x",
        "",
    ]
) | st.text(max_size=20)


@settings(max_examples=200, deadline=None)
@given(attributes=st.lists(names, max_size=4), excluded=st.lists(names, max_size=4))
def test_project_any_lists_keep_schemas_and_id_and_add_nothing(
    attributes: list[str], excluded: list[str]
) -> None:
    doc = user_doc()
    projected = project(USER_TYPE, doc, attributes, excluded)
    assert projected["id"] == "u-1"
    assert projected["schemas"][0] == USER
    assert set(projected) <= set(doc)
    assert doc == user_doc()
