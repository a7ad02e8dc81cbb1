"""Input limits: each answers with a clear 4xx SCIM error, never a 5xx, and changes nothing.

Body size (413), filter length and depth (400 invalidFilter), page size (capped and announced),
operations per PATCH, string lengths and multi-valued sizes (400 invalidValue), deeply nested and
invalid UTF-8 JSON (400 invalidSyntax), and SQL that only ever receives values as bound
parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import orjson
import pytest

import storage.resources
from storage import groups, paging, tenants, users
from storage.database import open_database
from storage.scim import filters, patch, resources
from tests.api.test_groups import entra_group
from tests.api.test_users import CORE, PRINTSYNC, entra_user
from tests.conftest import Service, TenantClient, count_rows, running

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_BODY = 4096
JSON = {"Content-Type": "application/scim+json"}
TABLES = ("users", "groups", "memberships", "outbox")


@contextmanager
def small_bodies(service: Service, acme: TenantClient) -> Iterator[TenantClient]:
    """acme on a second app over the same database that takes bodies of MAX_BODY bytes."""
    with running(service.database_url, max_body_bytes=MAX_BODY) as small:
        yield TenantClient(small.http, acme.name, acme.token)


@pytest.fixture
def acme(service: Service) -> TenantClient:
    return service.tenant("acme")


def scim_error(response: Any, status: int, scim_type: str | None = None) -> str:
    """Check a SCIM error response; returns its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    detail: str = body["detail"]
    assert detail
    return detail


def rows(service: Service) -> tuple[int, ...]:
    return tuple(count_rows(service.database_url, table) for table in TABLES)


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@pytest.fixture
def targets(acme: TenantClient) -> dict[str, str]:
    user = acme.post("/Users", json=entra_user("ada@acme.example"))
    group = acme.post("/Groups", json=entra_group("Printers"))
    assert (user.status_code, group.status_code) == (201, 201)
    return {"user": user.json()["id"], "group": group.json()["id"]}


def writes(targets: dict[str, str]) -> list[tuple[str, str]]:
    """Every endpoint that reads a body: (method, path)."""
    return [
        ("POST", "/Users"),
        ("PUT", f"/Users/{targets['user']}"),
        ("PATCH", f"/Users/{targets['user']}"),
        ("POST", "/Users/.search"),
        ("POST", "/Groups"),
        ("PUT", f"/Groups/{targets['group']}"),
        ("PATCH", f"/Groups/{targets['group']}"),
        ("POST", "/Groups/.search"),
    ]


# Body size ---------------------------------------------------------------------------------------


def test_body_over_limit_is_413_on_every_write(
    service: Service, acme: TenantClient, targets: dict[str, str]
) -> None:
    before = rows(service)
    oversized = orjson.dumps(entra_user("big@acme.example", title="x" * MAX_BODY))
    with small_bodies(service, acme) as client:
        for method, path in writes(targets):
            response = client.request(method, path, content=oversized, headers=JSON)
            assert str(MAX_BODY) in scim_error(response, 413)
    assert rows(service) == before


def test_body_streamed_without_length_over_limit_is_413(
    service: Service,
    acme: TenantClient,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"schemas":["' + CORE.encode() + b'"],"userName":"big@acme.example","title":"'
        for _ in range(MAX_BODY // 512 + 1):
            yield b"x" * 512
        yield b'"}'

    with small_bodies(service, acme) as client:
        scim_error(client.post("/Users", content=chunks(), headers=JSON), 413)
    assert count_rows(service.database_url, "users") == 0


def test_body_at_limit_is_accepted(service: Service, acme: TenantClient) -> None:
    body = entra_user("fits@acme.example")
    padding = MAX_BODY - len(orjson.dumps({**body, "title": ""}))
    exact = orjson.dumps({**body, "title": "x" * padding})
    assert len(exact) == MAX_BODY
    with small_bodies(service, acme) as client:
        response = client.post("/Users", content=exact, headers=JSON)
        assert response.status_code == 201, response.text


# Filters -----------------------------------------------------------------------------------------


def test_filter_over_max_length_is_400_invalid_filter(acme: TenantClient) -> None:
    head = 'userName eq "'
    at_limit = head + "a" * (filters.MAX_FILTER_LENGTH - len(head) - 1) + '"'
    assert len(at_limit) == filters.MAX_FILTER_LENGTH
    assert acme.get("/Users", params={"filter": at_limit}).status_code == 200
    too_long = at_limit[:-1] + 'a"'
    for response in (
        acme.get("/Users", params={"filter": too_long}),
        acme.get("/Groups", params={"filter": too_long.replace("userName", "displayName")}),
        acme.post("/Users/.search", json={"schemas": [SEARCH], "filter": too_long}),
    ):
        detail = scim_error(response, 400, "invalidFilter")
        assert str(filters.MAX_FILTER_LENGTH) in detail


@pytest.mark.parametrize("shape", ["parentheses", "not", "value-path"])
def test_filter_over_max_depth_is_400_invalid_filter(acme: TenantClient, shape: str) -> None:
    def nested(depth: int) -> str:
        if shape == "parentheses":
            return "(" * depth + 'userName eq "a"' + ")" * depth
        if shape == "not":
            return "not " * (depth - 1) + '(userName eq "a")'
        return "emails[" + "(" * (depth - 1) + 'value eq "a"' + ")" * (depth - 1) + "]"

    assert acme.get("/Users", params={"filter": nested(filters.MAX_DEPTH)}).status_code == 200
    for depth in (filters.MAX_DEPTH + 1, 500):
        for response in (
            acme.get("/Users", params={"filter": nested(depth)}),
            acme.post("/Users/.search", json={"schemas": [SEARCH], "filter": nested(depth)}),
        ):
            detail = scim_error(response, 400, "invalidFilter")
            assert str(filters.MAX_DEPTH) in detail


def test_patch_path_filter_nested_too_deep_is_400(
    acme: TenantClient, targets: dict[str, str]
) -> None:
    path = "emails[" + "(" * 100 + 'value eq "a"' + ")" * 100 + "].type"
    response = acme.patch(
        f"/Users/{targets['user']}",
        json=patch_body({"op": "replace", "path": path, "value": "work"}),
    )
    scim_error(response, 400, "invalidFilter")


# Page size ---------------------------------------------------------------------------------------


def test_count_above_cap_is_capped_and_announced(sqlite_url: str) -> None:
    cap = paging.MAX_PAGE_SIZE

    async def fill() -> str:
        db = await open_database(sqlite_url)
        try:
            tenant, token = await tenants.create(db, "acme", connector="ledger")
            for index in range(cap + 1):
                await storage.resources.create(
                    db,
                    users.SPEC,
                    tenant.id,
                    entra_user(f"u{index:04d}@acme.example"),
                    base="http://testserver/scim/v2/acme",
                )
            return token
        finally:
            await db.close()

    token = asyncio.run(fill())
    with running(sqlite_url) as service:
        acme = TenantClient(service.http, "acme", token)
        config = acme.get("/ServiceProviderConfig").json()
        assert config["filter"]["maxResults"] == cap
        for response in (
            acme.get("/Users", params={"count": str(cap * 5)}),
            acme.post("/Users/.search", json={"schemas": [SEARCH], "count": cap * 5}),
        ):
            page = response.json()
            assert response.status_code == 200
            assert (page["totalResults"], page["itemsPerPage"]) == (cap + 1, cap)
            assert len(page["Resources"]) == cap
        rest = acme.get("/Users", params={"count": str(cap * 5), "startIndex": str(cap + 1)})
        assert (rest.json()["itemsPerPage"], rest.json()["startIndex"]) == (1, cap + 1)


def test_count_negative_or_huge_is_clamped_not_error(
    acme: TenantClient, targets: dict[str, str]
) -> None:
    del targets
    for count, expected in (("-5", 0), ("0", 0), ("9" * 40, 1)):
        page = acme.get("/Users", params={"count": count}).json()
        assert (page["totalResults"], page["itemsPerPage"]) == (1, expected), count


# PATCH operations --------------------------------------------------------------------------------


def test_patch_over_max_operations_is_400_and_changes_nothing(
    service: Service, acme: TenantClient, targets: dict[str, str]
) -> None:
    path = f"/Users/{targets['user']}"
    before = acme.get(path).json()
    operation = {"op": "replace", "path": "title", "value": "Engineer"}
    too_many = patch_body(*[operation] * (patch.MAX_OPERATIONS + 1))
    detail = scim_error(acme.patch(path, json=too_many), 400, "invalidValue")
    assert str(patch.MAX_OPERATIONS) in detail
    group_ops = patch_body(
        *[{"op": "add", "path": "members", "value": [{"value": targets["user"]}]}]
        * (patch.MAX_OPERATIONS + 1)
    )
    scim_error(acme.patch(f"/Groups/{targets['group']}", json=group_ops), 400, "invalidValue")
    assert acme.get(path).json() == before
    assert count_rows(service.database_url, "memberships") == 0
    at_limit = acme.patch(path, json=patch_body(*[operation] * patch.MAX_OPERATIONS))
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["title"] == "Engineer"


# String lengths and value counts -----------------------------------------------------------------


LONG = "x" * (resources.MAX_STRING_LENGTH + 1)


@pytest.mark.parametrize(
    ("resource", "body"),
    [
        ("/Users", entra_user(LONG + "@acme.example")),
        ("/Users", entra_user("a@acme.example", displayName=LONG)),
        ("/Users", entra_user("a@acme.example", externalId=LONG)),
        ("/Users", entra_user("a@acme.example", title=LONG)),
        ("/Users", entra_user("a@acme.example", name={"givenName": LONG})),
        (
            "/Users",
            {
                **entra_user("a@acme.example"),
                "schemas": [CORE, PRINTSYNC],
                PRINTSYNC: {"cardNumber": LONG},
            },
        ),
        ("/Groups", entra_group(LONG)),
        ("/Groups", {**entra_group("g"), "members": [{"value": LONG}]}),
    ],
    ids=[
        "userName",
        "displayName",
        "externalId",
        "title",
        "name.givenName",
        "cardNumber",
        "group displayName",
        "member value",
    ],
)
def test_string_over_max_length_is_400_invalid_value(
    service: Service, acme: TenantClient, resource: str, body: dict[str, Any]
) -> None:
    detail = scim_error(acme.post(resource, json=body), 400, "invalidValue")
    assert str(resources.MAX_STRING_LENGTH) in detail
    assert rows(service) == (0, 0, 0, 0)


def test_string_at_max_length_is_accepted_one_more_refused(acme: TenantClient) -> None:
    fits = "x" * resources.MAX_STRING_LENGTH
    response = acme.post("/Users", json=entra_user("a@acme.example", title=fits))
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    scim_error(
        acme.patch(
            f"/Users/{user_id}",
            json=patch_body({"op": "replace", "path": "title", "value": fits + "x"}),
        ),
        400,
        "invalidValue",
    )
    scim_error(
        acme.patch(
            f"/Users/{user_id}",
            json=patch_body(
                {"op": "replace", "path": "x" * (resources.MAX_STRING_LENGTH + 1), "value": "a"}
            ),
        ),
        400,
        "invalidPath",
    )
    assert acme.get(f"/Users/{user_id}").json()["title"] == fits


def test_too_many_values_or_members_is_400_invalid_value(
    service: Service, acme: TenantClient, targets: dict[str, str]
) -> None:
    emails = [{"value": f"{index}@acme.example"} for index in range(resources.MAX_VALUES + 1)]
    scim_error(
        acme.post("/Users", json=entra_user("many@acme.example", emails=emails)),
        400,
        "invalidValue",
    )
    members = [{"value": f"m{index}"} for index in range(groups.MAX_MEMBERS_PER_REQUEST + 1)]
    response = acme.patch(
        f"/Groups/{targets['group']}",
        json=patch_body({"op": "add", "path": "members", "value": members}),
    )
    assert str(groups.MAX_MEMBERS_PER_REQUEST) in scim_error(response, 400, "invalidValue")
    assert count_rows(service.database_url, "memberships") == 0


# Malformed JSON ----------------------------------------------------------------------------------


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@pytest.mark.parametrize("nested", [deep_object, deep_array], ids=["object", "array"])
def test_deeply_nested_json_is_400_not_500(
    service: Service, acme: TenantClient, targets: dict[str, str], nested: Any
) -> None:
    before = rows(service)
    body = nested(100_000)
    for method, path in writes(targets):
        scim_error(acme.request(method, path, content=body, headers=JSON), 400, "invalidSyntax")
    assert rows(service) == before


def test_nested_values_within_parser_depth_never_500(
    service: Service, acme: TenantClient, targets: dict[str, str]
) -> None:
    """Nesting the JSON parser still accepts (1000 levels), in every place a value goes."""
    deep = deep_object(1000).decode()
    user, group = targets["user"], targets["group"]
    bodies = [
        ("POST", "/Users", f'{{"schemas":["{CORE}"],"userName":"d@acme.example","title":{deep}}}'),
        ("POST", "/Users", f'{{"schemas":["{CORE}"],"userName":"e@acme.example","name":{deep}}}'),
        (
            "POST",
            "/Users",
            f'{{"schemas":["{CORE}","{PRINTSYNC}"],"userName":"f@acme.example",'
            f'"{PRINTSYNC}":{deep}}}',
        ),
        (
            "POST",
            "/Users",
            f'{{"schemas":["{CORE}"],"userName":"g@acme.example","emails":[{deep}]}}',
        ),
        (
            "PUT",
            f"/Users/{user}",
            f'{{"schemas":["{CORE}"],"userName":"ada@acme.example","name":{{"givenName":{deep}}}}}',
        ),
        (
            "PATCH",
            f"/Users/{user}",
            f'{{"schemas":["{PATCH_OP}"],"Operations":[{{"op":"add","value":{{"name":{deep}}}}}]}}',
        ),
        (
            "PATCH",
            f"/Users/{user}",
            f'{{"schemas":["{PATCH_OP}"],"Operations":'
            f'[{{"op":"replace","path":"title","value":{deep}}}]}}',
        ),
        (
            "PATCH",
            f"/Groups/{group}",
            f'{{"schemas":["{PATCH_OP}"],"Operations":'
            f'[{{"op":"add","path":"members","value":[{deep}]}}]}}',
        ),
        (
            "POST",
            "/Groups",
            f'{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],'
            f'"displayName":"d","members":[{{"value":{deep}}}]}}',
        ),
        ("POST", "/Users/.search", f'{{"schemas":["{SEARCH}"],"filter":{deep}}}'),
    ]
    for method, path, text in bodies:
        response = acme.request(method, path, content=text.encode(), headers=JSON)
        assert response.status_code < 500, (method, path, response.text)
        if response.status_code >= 400:
            assert response.json()["schemas"] == [ERROR]
    assert service.http.get("/healthz").status_code == 200


INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]


@pytest.mark.parametrize(
    "raw", INVALID_UTF8, ids=["ff", "overlong", "surrogate", "truncated", "five-byte"]
)
def test_invalid_utf8_body_is_400_invalid_syntax(
    service: Service, acme: TenantClient, targets: dict[str, str], raw: bytes
) -> None:
    before = rows(service)
    in_value = b'{"schemas":["' + CORE.encode() + b'"],"userName":"a' + raw + b'"}'
    in_key = b'{"schemas":["' + CORE.encode() + b'"],"user' + raw + b'Name":"a"}'
    for method, path in writes(targets):
        for body in (in_value, in_key):
            scim_error(acme.request(method, path, content=body, headers=JSON), 400, "invalidSyntax")
    assert rows(service) == before


def test_invalid_utf8_in_url_or_header_is_never_500(
    service: Service, acme: TenantClient, targets: dict[str, str]
) -> None:
    http = service.http
    bearer = {"Authorization": f"Bearer {acme.token}"}
    query = http.get(f"{acme.base}/Users?filter=userName%20eq%20%22%FF%C0%22", headers=bearer)
    assert query.status_code == 200
    assert query.json()["totalResults"] == 0
    scim_error(http.get(f"{acme.base}/Users/%FF%ED%A0%80", headers=bearer), 404)
    scim_error(
        http.get(
            f"{acme.base}/Users/{targets['user']}",
            headers=[(b"Authorization", b"Bearer \xff\xfe" + acme.token.encode())],
        ),
        401,
    )
    scim_error(http.get("/scim/v2/%FF%FE/Users", headers=bearer), 401)


# Bound parameters --------------------------------------------------------------------------------


HOSTILE = [
    "x' OR '1'='1",
    'x" OR "1"="1',
    "x'; DROP TABLE users; --",
    "x') OR 1=1 --",
    "%",
    "_",
    "\\",
    "x' UNION SELECT token_hash FROM tenants --",
]


def test_hostile_values_are_data_never_sql(service: Service, acme: TenantClient) -> None:
    globex = service.tenant("globex")
    assert globex.post("/Users", json=entra_user("carol@globex.example")).status_code == 201
    stored = []
    for index, value in enumerate(HOSTILE):
        name = f"{value}{index}@acme.example"
        response = acme.post("/Users", json=entra_user(name, displayName=value, title=value))
        assert response.status_code == 201, response.text
        stored.append((name, response.json()["id"]))
    for index, value in enumerate(HOSTILE):
        name, user_id = stored[index]
        literal = orjson.dumps(name).decode()
        exact = acme.get("/Users", params={"filter": f"userName eq {literal}"}).json()
        assert [user["id"] for user in exact["Resources"]] == [user_id], value
        title = orjson.dumps(value).decode()
        by_title = acme.get("/Users", params={"filter": f"title eq {title}"}).json()
        assert [user["id"] for user in by_title["Resources"]] == [user_id], value
        contains = acme.get("/Users", params={"filter": f"displayName co {title}"}).json()
        expected = [uid for (_, uid), other in zip(stored, HOSTILE, strict=True) if value in other]
        assert [user["id"] for user in contains["Resources"]] == expected, value
        scim_error(acme.get(f"/Users/{quote(value, safe='')}"), 404)
    everyone = acme.get("/Users", params={"count": "100"}).json()
    assert everyone["totalResults"] == len(HOSTILE)
    for hostile_path in ("userName; DROP TABLE users", "userName) --", "title' --"):
        scim_error(acme.get("/Users", params={"sortBy": hostile_path}), 400, "invalidValue")
        scim_error(
            acme.get("/Users", params={"filter": f'{hostile_path} eq "x"'}), 400, "invalidFilter"
        )
    # Both tenants' data and the tenants table are intact.
    assert count_rows(service.database_url, "users") == len(HOSTILE) + 1
    assert count_rows(service.database_url, "tenants") == 2
    assert globex.get("/Users").json()["totalResults"] == 1
