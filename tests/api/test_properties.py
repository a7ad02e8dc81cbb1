"""Property tests over HTTP: whatever a client sends, the server answers without a 5xx, every 4xx
carries a SCIM error body, and a refused request changes nothing.

Hypothesis drives filters, PATCH bodies, resource bodies, query parameters, header values and raw
bodies against one tenant holding two users and a group (SQLite, to stay fast); the few backend-
specific edges found this way are pinned on both databases at the end.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api.test_groups import entra_group
from tests.api.test_users import entra_user
from tests.conftest import Service, TenantClient, count_rows

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
TABLES = ("users", "groups", "memberships", "outbox")
SCIM_TYPES = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
}

# Placeholders replaced by the world's real ids and token before a request is sent.
USER, OTHER, GROUP_ID, TOKEN = "@user", "@other", "@group", "@token"

PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class World:
    """One tenant with two users and a group holding the first; how to snapshot all of it."""

    service: Service
    client: TenantClient
    user_id: str
    other_id: str
    group_id: str
    engine: sa.Engine

    def resolve(self, value: Any) -> Any:
        """``value`` with the placeholders replaced, recursively."""
        if isinstance(value, str):
            return (
                value.replace(USER, self.user_id)
                .replace(OTHER, self.other_id)
                .replace(GROUP_ID, self.group_id)
                .replace(TOKEN, self.client.token)
            )
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            return {self.resolve(key): self.resolve(item) for key, item in value.items()}
        return value

    def counts(self) -> tuple[int, ...]:
        sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in TABLES)
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(sql)).one()
        return tuple(int(value) for value in row)

    def snapshot(self) -> tuple[Any, ...]:
        documents = []
        for path in (
            f"/Users/{self.user_id}",
            f"/Users/{self.other_id}",
            f"/Groups/{self.group_id}",
        ):
            response = self.client.get(path)
            assert response.status_code == 200, response.text
            documents.append(response.json())
        return (*documents, self.counts())


@pytest.fixture
def world(sqlite_service: Service) -> Iterator[World]:
    client = sqlite_service.tenant()
    first = client.post(
        "/Users",
        json=entra_user(
            "prop.user@contoso.com", title="Tester", **{ENTERPRISE: {"department": "QA"}}
        ),
    )
    second = client.post("/Users", json=entra_user("prop.other@contoso.com"))
    group = client.post("/Groups", json=entra_group("Prop Group"))
    assert (first.status_code, second.status_code, group.status_code) == (201, 201, 201)
    user_id, group_id = first.json()["id"], group.json()["id"]
    added = client.patch(
        f"/Groups/{group_id}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        },
    )
    assert added.status_code == 204
    engine = sa.create_engine(sa.make_url(sqlite_service.database_url))
    try:
        yield World(sqlite_service, client, user_id, second.json()["id"], group_id, engine)
    finally:
        engine.dispose()


def check(response: httpx2.Response) -> int:
    """The status, after checking it is not a 5xx and that a 4xx is a proper SCIM error."""
    status = response.status_code
    event(f"status {status}")
    assert status < 500, response.text
    if status >= 400:
        assert response.headers["content-type"].startswith("application/scim+json")
        body = response.json()
        assert body["schemas"] == [ERROR]
        assert body["status"] == str(status)
        assert isinstance(body["detail"], str) and body["detail"]
        if "scimType" in body:
            assert body["scimType"] in SCIM_TYPES
    return status


def send(
    world: World,
    method: str,
    path: str,
    body: Any = None,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, Any] | None = None,
) -> httpx2.Response:
    """A request whose body is serialized here, so any JSON (NaN, huge integers) can be sent."""
    content = None
    extra: dict[str, Any] = {"Content-Type": "application/scim+json"}
    if body is not None:
        content = json.dumps(world.resolve(body)).encode()
    extra.update(headers or {})
    response: httpx2.Response = world.client.request(
        method, world.resolve(path), content=content, params=params, headers=extra
    )
    return response


def unchanged_after_refusal(world: World, before: tuple[Any, ...], status: int) -> None:
    if 400 <= status < 500:
        assert world.snapshot() == before


# Strategies --------------------------------------------------------------------------------

ATTRIBUTE_NAMES = [
    "userName",
    "UserName",
    "displayName",
    "active",
    "title",
    "name",
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "externalId",
    "id",
    "meta",
    "schemas",
    "members",
    "groups",
    "password",
    "nickName",
    "x509Certificates",
    ENTERPRISE,
    "urn:bogus:ext",
]
INTERESTING_STRINGS = [
    "",
    " ",
    "True",
    "false",
    "FALSE",
    "null",
    "0",
    "-1",
    "\u00e9\u00e8",
    "\U0001f600",
    "a" * 5000,
    "@user",
    "@other",
    "@group",
    "work",
    "mobile",
    '"',
    "\\",
    "[",
    "]",
    "2024-02-30T25:61:00Z",
    "2024-01-01T00:00:00Z",
    "urn:ietf:params:scim:schemas:core:2.0:User",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(INTERESTING_STRINGS),
)
keys = st.one_of(
    st.sampled_from([*ATTRIBUTE_NAMES, "value", "type", "primary", "$ref", "display", "givenName"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)

PATHS = [
    "userName",
    "displayName",
    "active",
    "title",
    "name",
    "name.givenName",
    "name.nope",
    "emails",
    "emails.value",
    'emails[type eq "work"].value',
    'emails[type eq "work"]',
    'emails[type eq "home" and value co "x"].value',
    'emails[type eq "work"].primary',
    "emails[value pr].type",
    'emails[not (type eq "work")]',
    "emails[type eq]",
    "emails[",
    'emails[type eq "work"].nope',
    'emails[type eq "work"]x',
    'emails[type eq "a"][x]',
    'addresses[type eq "work"].formatted',
    'addresses[type eq "work"].locality',
    'phoneNumbers[type eq "mobile"].value',
    "roles",
    "manager",
    "manager.value",
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:nope",
    ENTERPRISE,
    CORE,
    f"{CORE}:userName",
    "members",
    "members.value",
    'members[value eq "@other"]',
    'members[value eq "@user"]',
    'members[value eq "@user" or value eq "@other"]',
    'members[display eq "x"]',
    'members[value eq "@other"].display',
    "externalId",
    "id",
    "meta",
    "meta.version",
    "groups",
    "schemas",
    "password",
    "urn:bogus:attr",
    "",
    " ",
    ".",
    "a.b.c",
    "émails",
]
paths = st.one_of(st.sampled_from(PATHS), st.text(max_size=20))
member_lists = st.lists(
    st.fixed_dictionaries(
        {"value": st.one_of(st.sampled_from([USER, OTHER, GROUP_ID, "missing", "", " "]), scalars)},
        optional={
            "$ref": st.one_of(st.none(), st.text(max_size=8)),
            "display": st.text(max_size=8),
            "type": st.sampled_from(["User", "Group"]),
        },
    ),
    max_size=3,
)
manager_values = st.one_of(
    st.sampled_from([OTHER, USER, "", "missing"]),
    st.fixed_dictionaries(
        {"value": st.sampled_from([OTHER, "", "x"])}, optional={"$ref": st.text(max_size=8)}
    ),
    st.lists(st.fixed_dictionaries({"value": st.sampled_from([OTHER, ""])}), max_size=2),
)
patch_values = st.one_of(
    json_values,
    member_lists,
    manager_values,
    st.sampled_from(["True", "False", "tRUE", "", None, [], {}, "@other"]),
    st.dictionaries(paths, json_values, max_size=4),
)
op_names = st.one_of(
    st.sampled_from(
        [
            "add",
            "replace",
            "remove",
            "Add",
            "Replace",
            "Remove",
            "REPLACE",
            "ADD",
            "move",
            "",
            "add ",
        ]
    ),
    scalars,
)
operations = st.one_of(
    st.fixed_dictionaries(
        {"op": op_names}, optional={"path": st.one_of(paths, scalars), "value": patch_values}
    ),
    st.fixed_dictionaries({"op": op_names, "path": paths, "value": patch_values}),
    json_values,
)
SIMPLE_PATHS = [
    "displayName",
    "title",
    "nickName",
    "externalId",
    "name.givenName",
    "userName",
    'emails[type eq "work"].value',
    'emails[type eq "home"].value',
    'phoneNumbers[type eq "mobile"].value',
    'addresses[type eq "work"].locality',
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
]
short_text = st.one_of(st.text(max_size=10), st.sampled_from(INTERESTING_STRINGS))
known_members = st.lists(
    st.fixed_dictionaries(
        {"value": st.sampled_from([USER, OTHER])},
        optional={"$ref": st.none(), "display": st.text(max_size=6)},
    ),
    min_size=1,
    max_size=2,
)
user_operations = st.one_of(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace", "Add", "Replace"]),
            "path": st.sampled_from(SIMPLE_PATHS),
            "value": short_text,
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["replace", "Replace"]),
            "path": st.just("active"),
            "value": st.sampled_from([True, False, "True", "false", "no"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["remove", "Remove"]),
            "path": st.sampled_from([*SIMPLE_PATHS, "roles", "manager"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "Add"]),
            "path": st.just("roles"),
            "value": st.lists(st.fixed_dictionaries({"value": short_text}), max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace", "Replace"]),
            "path": st.sampled_from(["manager", f"{ENTERPRISE}:manager"]),
            "value": manager_values,
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["replace", "add"]),
            "value": st.dictionaries(
                st.sampled_from([*SIMPLE_PATHS, "active", "id", "meta", "schemas"]),
                short_text,
                max_size=4,
            ),
        }
    ),
)
group_operations = st.one_of(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "replace", "Replace"]),
            "path": st.sampled_from(["displayName", "externalId"]),
            "value": short_text,
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "Add", "replace", "Remove"]),
            "path": st.just("members"),
            "value": known_members,
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "Remove", "replace"]),
            "path": st.just("members"),
            "value": member_lists,
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["remove", "Remove"]),
            "path": st.sampled_from(
                [p for p in PATHS if "members[" in p] + ["members", "externalId"]
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["replace", "add"]),
            "value": st.dictionaries(
                st.sampled_from(["displayName", "externalId", "id", "meta", "members"]),
                st.one_of(short_text, known_members),
                max_size=3,
            ),
        }
    ),
)


def patch_bodies(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-formed requests of plausible operations, some with junk mixed in, and some
    malformed envelopes."""
    well_formed = st.fixed_dictionaries(
        {"schemas": st.just([PATCH_OP]), "Operations": st.lists(plausible, min_size=1, max_size=3)}
    )
    return st.one_of(
        well_formed,
        well_formed,
        well_formed,
        st.fixed_dictionaries(
            {
                "schemas": st.just([PATCH_OP]),
                "Operations": st.lists(st.one_of(plausible, operations), min_size=1, max_size=4),
            }
        ),
        st.fixed_dictionaries(
            {
                "schemas": st.sampled_from(
                    [[PATCH_OP], [PATCH_OP.upper()], [], [CORE], PATCH_OP, None]
                ),
                "Operations": st.one_of(st.lists(operations, max_size=5), scalars),
            }
        ),
        json_values,
    )


user_bodies = st.fixed_dictionaries(
    {
        "schemas": st.sampled_from(
            [[CORE], [CORE, ENTERPRISE], [ENTERPRISE, CORE], [], [CORE, "urn:bogus"], [GROUP], "x"]
        )
    },
    optional={
        "userName": st.one_of(
            st.text(max_size=10),
            st.sampled_from(["prop.user@contoso.com", "PROP.OTHER@contoso.com"]),
            scalars,
        ),
        "active": st.one_of(st.sampled_from(["True", "false", "maybe"]), scalars),
        "externalId": st.one_of(st.text(max_size=8), scalars),
        "displayName": scalars,
        "emails": st.one_of(
            st.lists(st.dictionaries(keys, scalars, max_size=3), max_size=3), json_values
        ),
        "name": json_values,
        "id": st.sampled_from([USER, OTHER, "x"]),
        "meta": json_values,
        ENTERPRISE: st.one_of(
            st.fixed_dictionaries({}, optional={"department": scalars, "manager": manager_values}),
            json_values,
        ),
    },
)
group_bodies = st.fixed_dictionaries(
    {
        "schemas": st.sampled_from(
            [
                [GROUP],
                [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                [CORE],
                [],
            ]
        )
    },
    optional={
        "displayName": st.one_of(st.text(max_size=10), st.sampled_from(["prop group"]), scalars),
        "externalId": st.one_of(st.text(max_size=8), scalars),
        "members": st.one_of(member_lists, json_values),
        "id": st.sampled_from([GROUP_ID, "x"]),
    },
)
plausible_users = st.builds(
    lambda name, extra: entra_user(name, **extra),
    st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["prop.user@contoso.com"])),
    st.fixed_dictionaries(
        {},
        optional={
            "displayName": short_text,
            "title": short_text,
            "active": st.sampled_from([True, "False", "TRUE"]),
            "externalId": short_text,
            "name": st.fixed_dictionaries({"givenName": short_text}),
            ENTERPRISE: st.fixed_dictionaries(
                {}, optional={"department": short_text, "manager": manager_values}
            ),
        },
    ),
)
plausible_groups = st.builds(
    lambda name, members: {**entra_group(name), "members": members},
    st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["prop group"])),
    member_lists,
)
resource_bodies = st.one_of(
    st.builds(
        lambda body, junk: {**junk, **body},
        user_bodies,
        st.dictionaries(keys, json_values, max_size=2),
    ),
    group_bodies,
    json_values,
    plausible_users,
    plausible_users,
    plausible_groups,
    plausible_groups,
)

FILTER_PATHS = [
    "userName",
    "UserName",
    "displayName",
    "title",
    "active",
    "externalId",
    "id",
    "emails",
    "emails.value",
    "emails.type",
    "name.givenName",
    "name",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "members",
    "members.value",
    "manager",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:manager.value",
    f"{CORE}:userName",
    "groups",
    "groups.value",
    "password",
    "roles.value",
    "addresses.locality",
    "nope",
    "emails.nope",
    "phoneNumbers.value",
]
FILTER_OPERATORS = [
    "eq",
    "ne",
    "co",
    "sw",
    "ew",
    "gt",
    "ge",
    "lt",
    "le",
    "EQ",
    "Sw",
    "xx",
    "",
    "pr",
]
FILTER_LITERALS = [
    '"a"',
    '"prop.user@contoso.com"',
    '"@user"',
    '"@other"',
    "true",
    "false",
    "null",
    "1",
    "-1.5e3",
    "1e999",
    "99999999999999999999999",
    '"2024-01-01T00:00:00Z"',
    '"2024-01-01"',
    '"\\u0041"',
    '"\\x"',
    '"open',
    "'single'",
    '""',
    '"%_*?["',
    "True",
    "nul",
]
literals = st.one_of(
    st.sampled_from(FILTER_LITERALS), st.text(max_size=8).map(json.dumps), st.integers().map(str)
)
attribute_filters = st.builds(
    lambda path, op, literal: f"{path} pr" if op == "pr" else f"{path} {op} {literal}",
    st.one_of(st.sampled_from(FILTER_PATHS), st.text(max_size=6)),
    st.sampled_from(FILTER_OPERATORS),
    literals,
)


def _combined(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda a, b, joint: f"{a} {joint} {b}",
            inner,
            inner,
            st.sampled_from(["and", "or", "AND", "Or", "nand"]),
        ),
        inner.map(lambda a: f"not ({a})"),
        inner.map(lambda a: f"({a})"),
        st.builds(
            lambda path, a: f"{path}[{a}]",
            st.sampled_from(["emails", "members", "addresses", "groups", "userName"]),
            inner,
        ),
        st.builds(
            lambda path, a, sub: f"{path}[{a}].{sub}",
            st.sampled_from(["emails", "phoneNumbers"]),
            inner,
            st.sampled_from(['value eq "x"', "type pr", "value", "nope co 1"]),
        ),
    )


structured_filters = st.recursive(attribute_filters, _combined, max_leaves=6)
filters = st.one_of(structured_filters, structured_filters, st.text(max_size=60))

QUERY_KEYS = [
    "startIndex",
    "count",
    "sortBy",
    "sortOrder",
    "attributes",
    "excludedAttributes",
    "filter",
    "STARTINDEX",
    "Count",
    "cursor",
    "unknown",
]
query_values = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "5",
            "userName",
            "meta.created",
            "emails.value",
            "members",
            "id",
            "displayName,members",
            "ascending",
            "DESCENDING",
            'emails[type eq "work"]',
            "urn:bogus",
            f"{ENTERPRISE}:department",
            'userName eq "prop.user@contoso.com"',
            "name.givenName",
            "groups",
        ]
    ),
)
query_params = st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=5)

header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.binary(max_size=24).map(
        lambda raw: bytes(byte for byte in raw if byte >= 32 and byte != 127)
    ),
    st.sampled_from(
        [
            f"Bearer {TOKEN}",
            f"bearer   {TOKEN}",
            f"Bearer {TOKEN}x",
            "Bearer",
            "Basic dXNlcjpwYXNz",
            "",
            "*",
            'W/"1"',
            'W/"2"',
            '"1"',
            'W/"1", W/"2"',
            'W/"',
            "application/json",
            "application/scim+json; charset=utf-8",
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
        ]
    ),
)
HEADER_NAMES = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Accept",
    "Accept-Encoding",
    "X-Request-Id",
]
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4)


# Properties --------------------------------------------------------------------------------


@PROPERTIES
@given(
    expression=filters,
    kind=st.sampled_from(["Users", "Groups"]),
    excluded=st.sampled_from([None, "members"]),
)
def test_list_with_arbitrary_filter_is_200_or_400_invalid_filter(
    world: World, expression: str, kind: str, excluded: str | None
) -> None:
    before = world.counts()
    params = {"filter": world.resolve(expression)}
    if excluded is not None:
        params["excludedAttributes"] = excluded
    response = send(world, "GET", f"/{kind}", params=params)
    status = check(response)
    assert status in (200, 400), response.text
    search = send(world, "POST", f"/{kind}/.search", {"schemas": [SEARCH], **params})
    assert check(search) == status
    if status == 400:
        assert response.json()["scimType"] == "invalidFilter", response.text
        nul_in_body = "\x00" in params["filter"]
        assert search.json()["scimType"] == ("invalidValue" if nul_in_body else "invalidFilter"), (
            search.text
        )
    else:
        body = response.json()
        assert body["schemas"] == [LIST]
        assert body["itemsPerPage"] == len(body["Resources"]) <= body["totalResults"]
        assert [item["id"] for item in search.json()["Resources"]] == [
            item["id"] for item in body["Resources"]
        ]
        if excluded:
            assert all("members" not in item for item in body["Resources"])
    assert world.counts() == before


@PROPERTIES
@given(target=st.sampled_from(["user", "group"]), data=st.data())
def test_patch_with_arbitrary_body_never_5xx_and_refusal_changes_nothing(
    world: World, target: str, data: st.DataObject
) -> None:
    body = data.draw(
        patch_bodies(user_operations if target == "user" else group_operations), label="body"
    )
    before = world.snapshot()
    path = f"/Users/{USER}" if target == "user" else f"/Groups/{GROUP_ID}"
    response = send(world, "PATCH", path, body)
    status = check(response)
    unchanged_after_refusal(world, before, status)
    if status < 400:
        assert status == (200 if target == "user" else 204), response.text
        fresh = send(world, "GET", path)
        assert fresh.status_code == 200
        assert response.headers["ETag"] == fresh.headers["ETag"]
        if target == "user":
            assert response.json() == fresh.json()


@PROPERTIES
@given(
    body=resource_bodies,
    target=st.sampled_from(
        [
            "POST /Users",
            "POST /Groups",
            f"PUT /Users/{USER}",
            f"PUT /Users/{OTHER}",
            f"PUT /Groups/{GROUP_ID}",
        ]
    ),
)
def test_write_with_arbitrary_resource_body_never_5xx_and_refusal_changes_nothing(
    world: World, body: Any, target: str
) -> None:
    before = world.snapshot()
    method, path = target.split(" ")
    response = send(world, method, path, body)
    status = check(response)
    unchanged_after_refusal(world, before, status)
    if status < 400:
        assert status == (201 if method == "POST" else 200), response.text
        location = response.json()["meta"]["location"]
        fresh = world.client.http.get(location, headers=world.client.headers())
        assert fresh.status_code == 200
        if "Users" in path:
            assert fresh.json() == response.json()


@PROPERTIES
@given(
    params=query_params,
    target=st.sampled_from(
        [
            "GET /Users",
            "GET /Groups",
            f"GET /Users/{USER}",
            f"GET /Groups/{GROUP_ID}",
            "POST /Users/.search",
            "POST /Groups/.search",
            "POST /.search",
            "GET ",
        ]
    ),
)
def test_read_with_arbitrary_query_parameters_is_200_or_400(
    world: World, params: dict[str, str], target: str
) -> None:
    before = world.counts()
    method, path = target.split(" ")
    if method == "POST":
        body: dict[str, Any] = {"schemas": [SEARCH]}
        for key, value in params.items():
            # Decimal digits only: str.isdigit() also accepts '¹', which int() refuses.
            body[key] = int(value) if re.fullmatch(r"-?[0-9]+", value) else value
        response = send(world, method, path, body)
    else:
        response = send(world, method, path, params=world.resolve(params))
    status = check(response)
    assert status in (200, 400), response.text
    if status == 200:
        listed = response.json()
        if "Resources" in listed:
            assert listed["itemsPerPage"] == len(listed["Resources"])
            # An index page has its startIndex; a cursor page (RFC 9865) has none.
            assert ("startIndex" in listed) != ("cursor" in params)
            assert listed.get("startIndex", 1) >= 1
            assert all("id" in item for item in listed["Resources"])
        else:
            assert listed["id"] in (world.user_id, world.group_id)
    assert world.counts() == before


@PROPERTIES
@given(
    extra=headers,
    target=st.sampled_from(
        ["GET user", "GET group", "GET list", "PATCH user", "PATCH group", "PUT user", "POST user"]
    ),
)
def test_request_with_arbitrary_header_values_never_5xx(
    world: World, extra: dict[str, Any], target: str
) -> None:
    before = world.snapshot()
    resolved = {
        name: world.resolve(value) if isinstance(value, str) else value
        for name, value in extra.items()
    }
    if target == "GET user":
        response = send(world, "GET", f"/Users/{USER}", headers=resolved)
    elif target == "GET group":
        response = send(world, "GET", f"/Groups/{GROUP_ID}", headers=resolved)
    elif target == "GET list":
        response = send(
            world, "GET", "/Users", params={"filter": 'userName eq "x"'}, headers=resolved
        )
    elif target == "PATCH user":
        response = send(
            world,
            "PATCH",
            f"/Users/{USER}",
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": str(uuid.uuid4())}],
            },
            headers=resolved,
        )
    elif target == "PATCH group":
        response = send(
            world,
            "PATCH",
            f"/Groups/{GROUP_ID}",
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "externalId", "value": str(uuid.uuid4())}],
            },
            headers=resolved,
        )
    elif target == "PUT user":
        response = send(
            world,
            "PUT",
            f"/Users/{OTHER}",
            entra_user("prop.other@contoso.com", title=str(uuid.uuid4())),
            headers=resolved,
        )
    else:
        response = send(
            world, "POST", "/Users", entra_user(f"{uuid.uuid4()}@contoso.com"), headers=resolved
        )
    status = check(response)
    unchanged_after_refusal(world, before, status)
    if status == 304:
        assert response.content == b""
    elif status < 300 and target.startswith("GET"):
        assert response.headers["content-type"].startswith("application/scim+json")


@PROPERTIES
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.text(max_size=200).map(str.encode),
    ),
    content_type=st.one_of(
        header_values,
        st.sampled_from(
            [
                "application/scim+json",
                "application/json; charset=utf-8",
                "APPLICATION/JSON",
                "application/scim+json; charset=latin-1",
            ]
        ),
    ),
    target=st.sampled_from(
        [
            "POST /Users",
            "POST /Groups",
            f"PATCH /Users/{USER}",
            f"PATCH /Groups/{GROUP_ID}",
            f"PUT /Users/{USER}",
            "POST /Users/.search",
            "POST /.search",
            "POST /Bulk",
        ]
    ),
)
def test_write_with_arbitrary_raw_body_never_5xx_and_refusal_changes_nothing(
    world: World, raw: bytes, content_type: str | bytes, target: str
) -> None:
    before = world.snapshot()
    method, path = target.split(" ")
    extra: dict[str, Any] = {"Content-Type": content_type}
    response = world.client.request(method, world.resolve(path), content=raw, headers=extra)
    status = check(response)
    unchanged_after_refusal(world, before, status)


bulk_operations = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET", "patch", None]),
            "path": st.sampled_from(
                [
                    "/Users",
                    "/Groups",
                    f"/Users/{USER}",
                    f"/Groups/{GROUP_ID}",
                    "/Users/bulkId:a",
                    "/Groups/bulkId:b",
                    "/Me",
                    "",
                    None,
                ]
            ),
            "data": st.one_of(
                resource_bodies,
                patch_bodies(user_operations),
                patch_bodies(group_operations),
                st.just(
                    {"schemas": [GROUP], "displayName": "B", "members": [{"value": "bulkId:a"}]}
                ),
                json_values,
            ),
        },
        optional={
            "bulkId": st.sampled_from(["a", "b", "bulkId:a", "", 5]),
            "version": st.sampled_from(['W/"1"', 'W/"2"', "x", 3]),
        },
    ),
)


@PROPERTIES
@given(
    operations=st.lists(bulk_operations, max_size=5),
    fail_on_errors=st.one_of(st.none(), st.integers(min_value=-1, max_value=3), st.just("1")),
)
def test_bulk_with_arbitrary_operations_never_5xx_and_each_result_is_well_formed(
    world: World, operations: list[Any], fail_on_errors: Any
) -> None:
    before = world.counts()  # operations may delete the world's resources: counts only
    body: dict[str, Any] = {"schemas": [BULK], "Operations": operations}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    response = send(world, "POST", "/Bulk", body)
    status = check(response)
    if status != 200:
        assert status == 400, response.text
        assert world.counts() == before
        return
    results = response.json()["Operations"]
    assert len(results) <= len(operations)
    if not isinstance(fail_on_errors, int) or fail_on_errors < 1:
        assert len(results) == len(operations)
    for result in results:
        code = int(result["status"])
        assert 200 <= code < 500, result
        if code >= 400:
            error = result["response"]
            assert error["schemas"] == [ERROR] and error["status"] == result["status"]
            assert error.get("scimType", "invalidValue") in SCIM_TYPES
        else:
            assert result["location"].startswith("http://testserver/")


# Edges pinned on both databases ------------------------------------------------------------


def _refused_without_change(
    service: Service, response: httpx2.Response, before: dict[str, int]
) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["status"] == "400"
    assert response.json()["scimType"] == "invalidValue"
    assert {table: count_rows(service.database_url, table) for table in TABLES} == before


def test_write_with_nul_character_in_a_string_is_400_on_every_backend(service: Service) -> None:
    acme = service.tenant()
    created = acme.post("/Users", json=entra_user("nul@contoso.com")).json()
    group = acme.post("/Groups", json=entra_group("Nul")).json()
    before = {table: count_rows(service.database_url, table) for table in TABLES}
    _refused_without_change(
        service, acme.post("/Users", json=entra_user("a\u0000b@contoso.com")), before
    )
    _refused_without_change(service, acme.post("/Groups", json=entra_group("g\u0000")), before)
    _refused_without_change(
        service,
        acme.put(
            f"/Users/{created['id']}", json=entra_user("nul@contoso.com", displayName="x\u0000")
        ),
        before,
    )
    _refused_without_change(
        service,
        acme.patch(
            f"/Users/{created['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": "\u0000"}],
            },
        ),
        before,
    )
    _refused_without_change(
        service,
        acme.patch(
            f"/Groups/{group['id']}",
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"displayName": "n\u0000"}}],
            },
        ),
        before,
    )
    assert acme.get(f"/Users/{created['id']}").json() == created
    literal = acme.post("/Users", json=entra_user("slash@contoso.com", title="\\u0000"))
    assert literal.status_code == 201
    assert literal.json()["title"] == "\\u0000"


@pytest.mark.parametrize("value", [str(2**63), str(2**64), str(-(2**64)), "9" * 40])
@pytest.mark.parametrize("name", ["startIndex", "count"])
def test_list_with_out_of_range_paging_is_never_5xx(
    service: Service, name: str, value: str
) -> None:
    acme = service.tenant()
    acme.post("/Users", json=entra_user("page@contoso.com"))
    response = acme.get("/Users", params={name: value})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["scimType"] == "invalidValue"
    search = acme.post(
        "/Users/.search",
        headers={"Content-Type": "application/scim+json"},
        content=json.dumps({"schemas": [SEARCH], name: int(value)}).encode(),
    )
    assert search.status_code in (200, 400), search.text
