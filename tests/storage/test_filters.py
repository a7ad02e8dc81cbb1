"""The SCIM filter grammar, and filters compiled to SQL and run on real SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import sql_filters
from storage.records import groups, memberships, metadata, tenants, users
from storage.scim.errors import InvalidFilter, InvalidValue
from storage.scim.filters import (
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Comparison,
    Not,
    Or,
    Present,
    Value,
    ValueFilter,
    ValuePath,
    parse,
)
from storage.scim.schema import (
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    GROUP,
    GROUP_TYPE,
    PRINTSYNC_SCHEMA,
    PRINTSYNC_USER,
    USER,
    USER_SCHEMA,
    USER_TYPE,
    Attribute,
    ResourceType,
    Schema,
)
from storage.sql_filters import compile_filter, sort_expression

POSTGRES_URL = os.environ.get(
    "PRINTSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PS = "urn:ietf:params:scim:schemas:extension:printsync:2.0:User"
TEST_EXTENSION = "urn:example:params:scim:schemas:extension:metrics:2.0:User"
PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")

# A resource type with the attribute types the real schemas lack (numbers, binary, and elements
# with every sub-attribute type).
METRICS_SCHEMA = Schema(
    TEST_EXTENSION,
    "Metrics",
    "Numbers for filter tests",
    (
        Attribute("level", "integer"),
        Attribute("score", "decimal"),
        Attribute("badge", "binary", case_exact=True),
        Attribute(
            "badges",
            "complex",
            multi_valued=True,
            sub_attributes=(
                Attribute("value"),
                Attribute("display"),
                Attribute("type"),
                Attribute("code", case_exact=True),
                Attribute("primary", "boolean"),
                Attribute("rank", "integer"),
                Attribute("weight", "decimal"),
                Attribute("issued", "dateTime"),
            ),
        ),
    ),
)
METRICS_TYPE = ResourceType(
    "User",
    "/Users",
    "Users with metrics.",
    USER_SCHEMA,
    (ENTERPRISE_SCHEMA, PRINTSYNC_SCHEMA, METRICS_SCHEMA),
    frozenset(
        {USER.lower(), ENTERPRISE_USER.lower(), PRINTSYNC_USER.lower(), TEST_EXTENSION.lower()}
    ),
)


# Test data ---------------------------------------------------------------------------------------


def meta(kind: str, created: str, modified: str, version: int) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": created,
        "lastModified": modified,
        "location": f"https://printsync.example/{kind}s/x",
        "version": f'W/"{version}"',
    }


USER_DOCS: list[dict[str, Any]] = [
    {
        "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
        "id": "u-1",
        "userName": "Alice@Example.com",
        "externalId": "ext-1",
        "displayName": "Alice Liddell",
        "active": True,
        "title": "Engineer",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [
            {"type": "work", "value": "Alice@Example.com", "primary": True},
            {"type": "home", "value": "alice@home.org"},
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+49 111"}],
        ENT: {"department": "R&D", "employeeNumber": "100", "manager": {"value": "u-3"}},
        PS: {"cardNumber": "CARD-001", "office": "Berlin"},
        TEST_EXTENSION: {
            "level": 9,
            "score": 1.5,
            "badge": "QUJD",
            "badges": [
                {
                    "value": "Gold",
                    "type": "work",
                    "code": "G-1",
                    "primary": True,
                    "rank": 3,
                    "weight": 1.5,
                    "issued": "2024-06-01T12:00:00.000000Z",
                },
                {
                    "value": "silver",
                    "type": "Home",
                    "code": "g-1",
                    "rank": 10,
                    "issued": "2024-06-01T12:00:00.000001Z",
                },
            ],
        },
        "meta": meta("User", "2024-01-01T00:00:00.000000Z", "2024-06-01T12:00:00.000000Z", 1),
    },
    {
        "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
        "id": "u-2",
        "userName": "bob_smith",
        "externalId": "EXT-2",
        "displayName": "Bob 50% Smith",
        "active": False,
        "name": {"givenName": "Bob"},
        "emails": [{"type": "home", "value": "Bob@Example.org"}],
        ENT: {"department": "Sales", "manager": {"value": "u-1"}},
        PS: {"cardNumber": "card-002"},
        TEST_EXTENSION: {
            "level": 10,
            "score": 2.25,
            "badge": "qujd",
            "badges": [
                {
                    "value": "gold",
                    "type": "other",
                    "code": "X_%",
                    "primary": False,
                    "weight": 2.25,
                    "issued": "2023-12-31T23:59:59.999999Z",
                }
            ],
        },
        "meta": meta("User", "2024-02-01T00:00:00.000000Z", "2024-07-01T00:00:00.000001Z", 2),
    },
    {
        "schemas": [USER, PRINTSYNC_USER],
        "id": "u-3",
        "userName": "carol",
        "active": True,
        "title": "Chief Engineer",
        "emails": [
            {"type": "other", "value": "zed_x@example.com"},
            {"type": "work", "value": "Carol.W@Example.com", "primary": True},
        ],
        PS: {"cardNumber": "A*B?[C]"},
        TEST_EXTENSION: {
            "level": 2,
            "badges": [
                {
                    "value": "Bronze",
                    "display": "b",
                    "rank": -2,
                    "issued": "2024-06-01T14:00:00.000000Z",
                },
                {"type": "work", "primary": True, "weight": 0.5},
            ],
        },
        "meta": meta("User", "2024-03-01T00:00:00.000000Z", "2024-05-01T00:00:00.000000Z", 3),
    },
    {
        "schemas": [USER, ENTERPRISE_USER, PRINTSYNC_USER],
        "id": "u-4",
        "userName": "Dävé",
        "externalId": "ext-4",
        "displayName": "DAVE",
        "active": True,
        ENT: {"department": "r&d"},
        PS: {"cardNumber": "CARD-001x"},
        "meta": meta("User", "2024-04-01T00:00:00.000000Z", "2024-06-01T12:00:00.000000Z", 4),
    },
]
OTHER_TENANT_USER: dict[str, Any] = {
    "schemas": [USER],
    "id": "u-9",
    "userName": "alice@example.com",
    "active": True,
    "meta": meta("User", "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z", 1),
}
GROUP_DOCS: list[dict[str, Any]] = [
    {
        "schemas": [GROUP],
        "id": "g-1",
        "displayName": "Admins",
        "externalId": "gext-1",
        "meta": meta("Group", "2024-01-01T00:00:00.000000Z", "2024-06-01T00:00:00.000000Z", 1),
    },
    {
        "schemas": [GROUP],
        "id": "g-2",
        "displayName": "Printers",
        "meta": meta("Group", "2024-02-01T00:00:00.000000Z", "2024-07-01T00:00:00.000000Z", 1),
    },
    {
        "schemas": [GROUP],
        "id": "g-3",
        "displayName": "Empty Group",
        "externalId": "gext-3",
        "meta": meta("Group", "2024-03-01T00:00:00.000000Z", "2024-08-01T00:00:00.000000Z", 1),
    },
]
MEMBERS = {"g-1": ["u-1", "u-2"], "g-2": ["u-3"], "g-3": []}


def work_email(doc: dict[str, Any]) -> str | None:
    for email in doc.get("emails", []):
        if str(email.get("type", "")).lower() == "work":
            return str(email["value"]).lower()
    return None


def user_row(doc: dict[str, Any], pk: int, tenant: int) -> dict[str, Any]:
    return {
        "pk": pk,
        "tenant_id": tenant,
        "id": doc["id"],
        "user_name": doc["userName"],
        "user_name_ci": doc["userName"].lower(),
        "external_id": doc.get("externalId"),
        "display_name": doc.get("displayName"),
        "work_email_ci": work_email(doc),
        "active": doc["active"],
        "version": 1,
        "created_at": doc["meta"]["created"],
        "last_modified": doc["meta"]["lastModified"],
        "doc": json.dumps(doc),
    }


def group_row(doc: dict[str, Any], pk: int) -> dict[str, Any]:
    return {
        "pk": pk,
        "tenant_id": 1,
        "id": doc["id"],
        "display_name": doc["displayName"],
        "display_name_ci": doc["displayName"].lower(),
        "external_id": doc.get("externalId"),
        "member_count": len(MEMBERS[doc["id"]]),
        "version": 1,
        "created_at": doc["meta"]["created"],
        "last_modified": doc["meta"]["lastModified"],
        "doc": json.dumps(doc),
    }


def load(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    stamp = "2024-01-01T00:00:00.000000Z"
    with engine.begin() as conn:
        conn.execute(
            tenants.insert().values(connector="ledger"),
            [
                {"id": 1, "name": "one", "token_hash": "a" * 64, "created_at": stamp},
                {"id": 2, "name": "two", "token_hash": "b" * 64, "created_at": stamp},
            ],
        )
        rows = [user_row(doc, pk, 1) for pk, doc in enumerate(USER_DOCS, start=1)]
        rows.append(user_row(OTHER_TENANT_USER, 9, 2))
        conn.execute(users.insert(), rows)
        conn.execute(
            groups.insert(), [group_row(doc, pk) for pk, doc in enumerate(GROUP_DOCS, start=1)]
        )
        user_pks = {doc["id"]: pk for pk, doc in enumerate(USER_DOCS, start=1)}
        group_pks = {doc["id"]: pk for pk, doc in enumerate(GROUP_DOCS, start=1)}
        conn.execute(
            memberships.insert(),
            [
                {"group_pk": group_pks[group], "user_pk": user_pks[member], "tenant_id": 1}
                for group, members in MEMBERS.items()
                for member in members
            ],
        )


# Databases ---------------------------------------------------------------------------------------


@dataclass
class Database:
    engine: sa.Engine
    dialect: sql_filters.Dialect

    def matching(self, text: str, resource: ResourceType = USER_TYPE) -> set[str]:
        compiled = compile_filter(text, resource, self.dialect)
        table, alias = ("groups", "g") if resource is GROUP_TYPE else ("users", "u")
        sql = (
            f"SELECT {alias}.id FROM {table} {alias} "
            f"WHERE {alias}.tenant_id = :tenant AND ({compiled.sql})"
        )
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql), {"tenant": 1, **compiled.params})
            return {row[0] for row in rows}

    def sorted_values(self, path: str, resource: ResourceType = USER_TYPE) -> dict[str, Any]:
        expression = sort_expression(path, resource, self.dialect)
        table, alias = ("groups", "g") if resource is GROUP_TYPE else ("users", "u")
        sql = (
            f"SELECT {alias}.id, {expression} FROM {table} {alias} WHERE "
            f"{alias}.tenant_id = 1 ORDER BY {expression} ASC NULLS LAST, {alias}.pk"
        )
        with self.engine.connect() as conn:
            return {row[0]: row[1] for row in conn.execute(sa.text(sql))}


def postgres_engine(schema: str) -> sa.Engine | None:
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(
        url, connect_args={"options": f"-csearch_path={schema}", "connect_timeout": 3}
    )
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        engine.dispose()
        return None
    return engine


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[Database]:
    engine = sa.create_engine("sqlite://")
    load(engine)
    yield Database(engine, "sqlite")
    engine.dispose()


@pytest.fixture(scope="module")
def postgresql_db() -> Iterator[Database]:
    schema = f"filters_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = postgres_engine(schema)
    if engine is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable (CI requires it)")
        pytest.skip("PostgreSQL is not reachable")
    try:
        load(engine)
        yield Database(engine, "postgresql")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue(f"{request.param}_db")
    return database


# The matrix: filter, expected user (or group) ids ------------------------------------------------

ALL_USERS = {"u-1", "u-2", "u-3", "u-4"}

USER_CASES: list[tuple[str, set[str]]] = [
    # userName: indexed, lower-cased column
    ('userName eq "alice@example.com"', {"u-1"}),
    ('USERNAME EQ "ALICE@EXAMPLE.COM"', {"u-1"}),
    ('userName eq "DÄVÉ"', {"u-4"}),
    ('userName ne "carol"', {"u-1", "u-2", "u-4"}),
    ('userName co "_"', {"u-2"}),
    ('userName sw "AL"', {"u-1"}),
    ('userName ew ".COM"', {"u-1"}),
    ('userName gt "c"', {"u-3", "u-4"}),
    ('userName ge "carol"', {"u-3", "u-4"}),
    ('userName lt "bob_smith"', {"u-1"}),
    ('userName le "bob_smith"', {"u-1", "u-2"}),
    ("userName pr", ALL_USERS),
    ('userName eq "nobody"', set()),
    # id and externalId: caseExact
    ('id eq "u-3"', {"u-3"}),
    ('id eq "U-3"', set()),
    ('externalId eq "ext-2"', set()),
    ('externalId eq "EXT-2"', {"u-2"}),
    ('externalId co "xt-"', {"u-1", "u-4"}),
    ('externalId sw "EXT"', {"u-2"}),
    ('externalId ew "-4"', {"u-4"}),
    ("externalId pr", {"u-1", "u-2", "u-4"}),
    ("externalId eq null", {"u-3"}),
    ("externalId ne null", {"u-1", "u-2", "u-4"}),
    ('externalId ne "ext-1"', {"u-2", "u-3", "u-4"}),
    # displayName: column, not caseExact; LIKE escaping
    ('displayName eq "dave"', {"u-4"}),
    ('displayName co "50%"', {"u-2"}),
    ('displayName co "%"', {"u-2"}),
    ('displayName sw "alice"', {"u-1"}),
    ('displayName eq "Bob 50\\u0025 Smith"', {"u-2"}),
    ("not (displayName pr)", {"u-3"}),
    # active: boolean column, string leniency
    ("active eq true", {"u-1", "u-3", "u-4"}),
    ("active eq false", {"u-2"}),
    ('active eq "False"', {"u-2"}),
    ('active eq "TRUE"', {"u-1", "u-3", "u-4"}),
    ("active ne true", {"u-2"}),
    ("active pr", ALL_USERS),
    # JSON strings, not caseExact
    ('title co "engineer"', {"u-1", "u-3"}),
    ('TITLE Ew "ENGINEER"', {"u-1", "u-3"}),
    ('title eq "engineer"', {"u-1"}),
    ('title eq "Chief\\u0020Engineer"', {"u-3"}),
    ('title gt "d"', {"u-1"}),
    ("title pr", {"u-1", "u-3"}),
    ("title eq null", {"u-2", "u-4"}),
    ('not (title eq "engineer")', {"u-2", "u-3", "u-4"}),
    ('title ne "engineer"', {"u-2", "u-3", "u-4"}),
    # single-valued complex
    ('name.givenName eq "bob"', {"u-2"}),
    ('name[givenName sw "A" and familyName eq "liddell"]', {"u-1"}),
    ("name pr", {"u-1", "u-2"}),
    ("name.familyName pr", {"u-1"}),
    # multi-valued: the indexed work e-mail and the generic JSON forms
    ('emails[type eq "work"].value eq "alice@example.com"', {"u-1"}),
    ('emails[type eq "work" and value eq "CAROL.W@example.com"]', {"u-3"}),
    ('emails[value eq "carol.w@example.com" and type eq "work"]', {"u-3"}),
    ('emails[type eq "work"].value eq "alice@home.org"', set()),
    ('emails[type eq "WORK"].value eq "Alice@Example.com"', {"u-1"}),
    ('emails[type eq "home"].value co "EXAMPLE"', {"u-2"}),
    ('Emails[Type EQ "home"].Value pr', {"u-1", "u-2"}),
    ('emails co "example.com"', {"u-1", "u-3"}),
    ('emails.value ew ".org"', {"u-1", "u-2"}),
    ("emails[primary eq true]", {"u-1", "u-3"}),
    ('emails[primary eq "true"]', {"u-1", "u-3"}),
    ('emails[not (type eq "work")]', {"u-1", "u-2", "u-3"}),
    ('emails[type ne "work"]', {"u-1", "u-2", "u-3"}),
    ('emails.type ne "work"', {"u-2", "u-4"}),
    ("emails pr", {"u-1", "u-2", "u-3"}),
    ("emails eq null", {"u-4"}),
    ("emails.primary pr", {"u-1", "u-3"}),
    ('emails[type eq "work" or type eq "other"].value sw "zed"', {"u-3"}),
    ('emails[type eq "work" or type eq "other"].value sw "bob"', set()),
    ('phoneNumbers[type eq "mobile"].value eq "+49 111"', {"u-1"}),
    # enterprise extension, qualified (any case) or not
    (f'{ENT}:department eq "r&d"', {"u-1", "u-4"}),
    (f'{ENT.upper()}:DEPARTMENT eq "sales"', {"u-2"}),
    ('department eq "SALES"', {"u-2"}),
    ('manager eq "u-3"', {"u-1"}),
    ('manager eq "U-3"', set()),
    ('id eq "u-1" and manager eq "u-3"', {"u-1"}),
    ('id eq "u-2" and manager eq "u-3"', set()),
    (f'{ENT}:manager.value eq "u-1"', {"u-2"}),
    (f'{ENT}:manager[value eq "u-1"]', {"u-2"}),
    ("manager pr", {"u-1", "u-2"}),
    ("manager eq null", {"u-3", "u-4"}),
    # printsync extension: caseExact card numbers, GLOB escaping on SQLite
    (f'{PS}:cardNumber eq "CARD-001"', {"u-1"}),
    (f'{PS}:cardNumber eq "card-001"', set()),
    (f'{PS}:cardNumber sw "CARD-001"', {"u-1", "u-4"}),
    (f'{PS}:cardNumber co "card"', {"u-2"}),
    (f'{PS}:cardNumber co "*"', {"u-3"}),
    (f'{PS}:cardNumber co "?[C"', {"u-3"}),
    (f'{PS}:cardNumber ew "[C]"', {"u-3"}),
    (f'{PS}:cardNumber sw "A*B"', {"u-3"}),
    (f'{PS}:cardNumber gt "CARD-001"', {"u-2", "u-4"}),
    (f'{PS}:office eq "BERLIN"', {"u-1"}),
    ("cardNumber pr", ALL_USERS),
    # meta: indexed timestamps and the stored meta object
    ('meta.lastModified gt "2024-06-01T12:00:00Z"', {"u-2"}),
    ('meta.lastModified ge "2024-06-01T12:00:00Z"', {"u-1", "u-2", "u-4"}),
    ('meta.lastModified eq "2024-06-01T14:00:00+02:00"', {"u-1", "u-4"}),
    ('meta.lastModified lt "2024-07-01T00:00:00.0000005Z"', {"u-1", "u-3", "u-4"}),
    ('meta.lastModified le "2024-07-01T00:00:00.0000015Z"', ALL_USERS),
    ('meta.lastModified gt "2024-07-01T00:00:00.0000005Z"', {"u-2"}),
    ('meta.lastModified ge "2024-07-01T00:00:00.0000005Z"', {"u-2"}),
    ('meta.lastModified eq "2024-07-01T00:00:00.0000010Z"', {"u-2"}),
    ('meta.lastModified eq "2024-07-01T00:00:00.0000015Z"', set()),
    ('meta.lastModified ne "2024-06-01T12:00:00Z"', {"u-2", "u-3"}),
    ('meta.created lt "2024-02-15t00:00:00z"', {"u-1", "u-2"}),
    ('meta.resourceType eq "User"', ALL_USERS),
    ('meta.resourceType eq "user"', set()),
    ('meta.version eq "W/\\"2\\""', {"u-2"}),
    ("meta pr", ALL_USERS),
    # groups of a user: memberships
    ('groups eq "g-1"', {"u-1", "u-2"}),
    ('groups[value eq "g-2"]', {"u-3"}),
    ('groups.value eq "g-3"', set()),
    ('groups.display eq "PRINTERS"', {"u-3"}),
    ('groups.type eq "Direct"', {"u-1", "u-2", "u-3"}),
    ("groups pr", {"u-1", "u-2", "u-3"}),
    ("not (groups pr)", {"u-4"}),
    ('groups ne "g-1"', {"u-3", "u-4"}),
    # logic: not > and > or, parentheses
    ('userName eq "carol" or userName eq "dävé" and active eq false', {"u-3"}),
    ('(userName eq "carol" or userName eq "dävé") and active eq true', {"u-3", "u-4"}),
    ('not userName eq "carol" and active eq true', {"u-1", "u-4"}),
    ('not (userName eq "carol" or active eq false)', {"u-1", "u-4"}),
    (
        'userName eq "alice@example.com" or not (emails pr) and displayName eq "dave"',
        {"u-1", "u-4"},
    ),
    ("not (not (title pr))", {"u-1", "u-3"}),
    ('((((userName sw "a"))))OR(userName sw "b")', {"u-1", "u-2"}),
    ('title pr and (emails[type eq "work"] or manager pr)', {"u-1", "u-3"}),
]

GROUP_CASES: list[tuple[str, set[str]]] = [
    ('displayName eq "admins"', {"g-1"}),
    ('displayName co "GROUP"', {"g-3"}),
    ('displayName gt "b"', {"g-2", "g-3"}),
    ('externalId eq "gext-1"', {"g-1"}),
    ("externalId pr", {"g-1", "g-3"}),
    ('id eq "g-2"', {"g-2"}),
    ('members eq "u-1"', {"g-1"}),
    ('members[value eq "u-3"]', {"g-2"}),
    ('members.value eq "u-2"', {"g-1"}),
    ('id eq "g-1" and members[value eq "u-2"]', {"g-1"}),
    ('id eq "g-2" and members[value eq "u-2"]', set()),
    ('members[value eq "u-3" or value eq "u-1"]', {"g-1", "g-2"}),
    ('members[display co "LIDDELL"]', {"g-1"}),
    ('members.type eq "user"', {"g-1", "g-2"}),
    ("members pr", {"g-1", "g-2"}),
    ("members.value pr", {"g-1", "g-2"}),
    ("members eq null", {"g-3"}),
    ('members ne "u-1"', {"g-2", "g-3"}),
    ('meta.lastModified ge "2024-07-01T00:00:00Z"', {"g-2", "g-3"}),
    (f'{GROUP}:displayName eq "PRINTERS"', {"g-2"}),
]

METRICS_CASES: list[tuple[str, set[str]]] = [
    ("level gt 2", {"u-1", "u-2"}),
    ("level eq 10", {"u-2"}),
    ("level le 9.5", {"u-1", "u-3"}),
    (f"{TEST_EXTENSION}:score ge 1.5", {"u-1", "u-2"}),
    ("score lt 2e0", {"u-1"}),
    ("level pr", {"u-1", "u-2", "u-3"}),
    ("score eq null", {"u-3", "u-4"}),
    ("level ne 9", {"u-2", "u-3", "u-4"}),
    ('badge eq "QUJD"', {"u-1"}),
    ('badge co "uj"', {"u-2"}),
]


@pytest.mark.parametrize(("text", "expected"), USER_CASES, ids=[c[0] for c in USER_CASES])
def test_filter_users_on_database_returns_matching_ids(
    db: Database, text: str, expected: set[str]
) -> None:
    assert db.matching(text) == expected


@pytest.mark.parametrize(("text", "expected"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_filter_groups_on_database_returns_matching_ids(
    db: Database, text: str, expected: set[str]
) -> None:
    assert db.matching(text, GROUP_TYPE) == expected


@pytest.mark.parametrize(("text", "expected"), METRICS_CASES, ids=[c[0] for c in METRICS_CASES])
def test_filter_number_and_binary_attributes_on_database_returns_matching_ids(
    db: Database, text: str, expected: set[str]
) -> None:
    assert db.matching(text, METRICS_TYPE) == expected


def test_filter_other_tenant_user_with_same_name_is_not_matched(db: Database) -> None:
    assert db.matching('userName eq "ALICE@example.com"') == {"u-1"}


# SQL hygiene and the shape cache -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_compile_every_case_uses_only_bound_placeholders(dialect: sql_filters.Dialect) -> None:
    cases = [(USER_TYPE, text) for text, _ in USER_CASES]
    cases += [(GROUP_TYPE, text) for text, _ in GROUP_CASES]
    cases += [(METRICS_TYPE, text) for text, _ in METRICS_CASES]
    for resource, text in cases:
        compiled = compile_filter(text, resource, dialect)
        assert set(PLACEHOLDER.findall(compiled.sql)) == set(compiled.params), text
        assert all(re.fullmatch(r"f[0-9]+", name) for name in compiled.params)
        assert "urn" not in compiled.sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_compile_literal_values_are_never_in_sql(dialect: sql_filters.Dialect) -> None:
    text = (
        f'userName eq "zz1\' OR 1=1 --" or {PS}:cardNumber co "zz2" or '
        'emails[value sw "zz3"] or meta.lastModified gt "2030-01-01T00:00:00Z"'
    )
    compiled = compile_filter(text, USER_TYPE, dialect)
    for literal in ("zz1", "zz2", "zz3", "2030"):
        assert literal not in compiled.sql
    assert "zz1' or 1=1 --" in compiled.params.values()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sort_expression_has_no_colon_outside_placeholders(dialect: sql_filters.Dialect) -> None:
    for path in (f"{ENT}:department", f"{PS}:cardNumber", "emails", "manager", "userName"):
        assert ":" not in sort_expression(path, USER_TYPE, dialect)


def test_compile_repeated_shape_skips_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    first = compile_filter('userName eq "first" and active eq true', USER_TYPE, "sqlite")

    def refuse(*args: Any) -> None:
        raise AssertionError("the parser ran for a cached shape")

    monkeypatch.setattr(sql_filters, "parse", refuse)
    second = compile_filter('USERNAME  EQ "Second"  AND active eq FALSE', USER_TYPE, "sqlite")
    assert second.sql == first.sql
    assert sorted(second.params.values(), key=str) == [False, "second"]


def test_compile_work_type_literal_keeps_its_own_shape() -> None:
    home = compile_filter('emails[type eq "home"].value eq "a@b.c"', USER_TYPE, "sqlite")
    work = compile_filter('emails[type eq "work"].value eq "A@b.c"', USER_TYPE, "sqlite")
    again = compile_filter('emails[type eq "other"].value eq "a@b.c"', USER_TYPE, "sqlite")
    assert work.sql == "u.work_email_ci = :f0"
    assert work.params == {"f0": "a@b.c"}
    assert "work_email_ci" not in home.sql
    assert again.sql == home.sql
    assert "other" in again.params.values()


def test_compile_same_shape_per_resource_and_dialect_differs() -> None:
    user = compile_filter('displayName eq "x"', USER_TYPE, "sqlite")
    group = compile_filter('displayName eq "x"', GROUP_TYPE, "sqlite")
    postgres = compile_filter('title eq "x"', USER_TYPE, "postgresql")
    sqlite = compile_filter('title eq "x"', USER_TYPE, "sqlite")
    assert user.sql == "lower(u.display_name) = :f0"
    assert group.sql == "g.display_name_ci = :f0"
    assert postgres.sql != sqlite.sql


def test_a_filter_of_a_shape_compiled_before_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cache is keyed by the filter's shape (its tokens, values left out): a second value
    # of the same shape reuses the compiled SQL and only converts its value.
    monkeypatch.setattr(sql_filters, "_FILTERS", type(sql_filters._FILTERS)(16))  # empty
    warm = compile_filter('userName eq "warm"', USER_TYPE, "postgresql")
    parsed: list[str] = []
    real_parse = sql_filters.parse

    def counting_parse(text: str) -> Any:
        parsed.append(text)
        return real_parse(text)

    monkeypatch.setattr(sql_filters, "parse", counting_parse)
    again = compile_filter('userName eq "ada@example.com"', USER_TYPE, "postgresql")
    assert parsed == []
    assert again.sql == warm.sql
    assert "ada@example.com" in again.params.values()
    compile_filter('userName ne "ada@example.com"', USER_TYPE, "postgresql")
    assert parsed == ['userName ne "ada@example.com"']  # another shape: parsed once


# Parser ------------------------------------------------------------------------------------------


def test_parse_value_path_with_sub_attribute_folds_into_brackets() -> None:
    node = parse('emails[type eq "work"].value eq "a"')
    assert node == ValuePath(
        "emails",
        And(
            (
                Comparison("type", "eq", Value("work", 0)),
                Comparison("value", "eq", Value("a", 1)),
            )
        ),
    )


def test_parse_precedence_not_and_or_builds_expected_tree() -> None:
    node = parse("a pr or not b pr and c eq 1.5 OR d eq null")
    assert node == Or(
        (
            Present("a"),
            And((Not(Present("b")), Comparison("c", "eq", Value(1.5, 0)))),
            Comparison("d", "eq", Value(None, -1)),
        )
    )


def test_parse_literals_decode_json_escapes_and_keywords() -> None:
    node = parse('a eq "\\"q\\" \\u00e9\\n" or b eq TRUE or c eq -12')
    assert node == Or(
        (
            Comparison("a", "eq", Value('"q" é\n', 0)),
            Comparison("b", "eq", Value(True, 1)),
            Comparison("c", "eq", Value(-12, 2)),
        )
    )


def test_parse_nesting_at_limit_is_accepted() -> None:
    text = "(" * MAX_DEPTH + "userName pr" + ")" * MAX_DEPTH
    assert parse(text) == Present("userName")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ('(userName eq "x"', "unbalanced '('"),
        ('userName eq "x")', "unbalanced ')'"),
        ('emails[type eq "work"', "unbalanced '['"),
        ('emails type eq "work"]', "unknown operator 'type'"),
        ('userName xx "x"', "unknown operator 'xx'"),
        ("userName eq", "expected a value after 'eq'"),
        ('userName "x"', "expected an operator"),
        ('userName eq "x" and', "expected an attribute"),
        ('userName eq "x" userName pr', "expected 'and', 'or'"),
        ("userName pr pr", "expected 'and', 'or'"),
        ('userName eq "unterminated', "unterminated string"),
        ('userName eq "bad \\q escape"', "invalid escape"),
        ('userName eq "\\ud800"', "surrogate"),
        ('userName eq "a\\u0000"', "NUL"),
        ('userName eq "a\x00"', "NUL"),
        ("userName eq 1e999", "out of range"),
        ("userName eq 99999999999999999999", "out of range"),
        ("%%%", "unexpected character '%'"),
        ("userName eq #", "unexpected character '#'"),
        ('.value eq "x"', "expected an attribute"),
        ('userName. eq "x"', "not an attribute path"),
        ('a.b.c eq "x"', "not an attribute path"),
        ('urn::x eq "x"', "not an attribute path"),
        ('userName eq "' + "x" * MAX_FILTER_LENGTH + '"', "longer than"),
        ("(" * (MAX_DEPTH + 1) + "userName pr" + ")" * (MAX_DEPTH + 1), "deeper than"),
        ("not " * (MAX_DEPTH + 1) + "userName pr", "deeper than"),
        ("emails[" * (MAX_DEPTH + 1) + "value pr" + "]" * (MAX_DEPTH + 1), "deeper than"),
    ],
)
def test_parse_malformed_filter_raises_invalid_filter(text: str, detail: str) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(detail)):
        parse(text)
    with pytest.raises(InvalidFilter):
        compile_filter(text, USER_TYPE, "sqlite")


def test_parse_error_detail_never_echoes_literal() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse(f'{PS}:cardNumber eq "SECRET-1234" "SECRET-5678"')
    assert "SECRET" not in caught.value.detail


# Compile-time errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "text", "detail"),
    [
        (USER_TYPE, 'nosuch eq "x"', "unknown attribute 'nosuch'"),
        (USER_TYPE, 'name.nosuch eq "x"', "unknown attribute"),
        (USER_TYPE, f'{GROUP}:displayName eq "x"', "unknown attribute"),
        (USER_TYPE, 'password eq "x"', "never returned"),
        (USER_TYPE, "password pr", "never returned"),
        (USER_TYPE, 'emails[nosuch eq "x"]', "not a sub-attribute of 'emails'"),
        (USER_TYPE, 'emails[emails.value eq "x"]', "not a sub-attribute"),
        (USER_TYPE, 'userName[value eq "x"]', "not a complex attribute"),
        (USER_TYPE, 'emails[value[value eq "x"]]', "not a complex attribute"),
        (USER_TYPE, 'name eq "x"', "name one of its sub-attributes"),
        (USER_TYPE, "active gt true", "'gt' is not defined for the boolean"),
        (USER_TYPE, 'active co "t"', "'co' is not defined for the boolean"),
        (USER_TYPE, 'active eq "yes"', "compare it with true or false"),
        (USER_TYPE, 'emails[primary eq "yes"]', "compare it with true or false"),
        (USER_TYPE, "active eq 1", "compare it with true or false"),
        (USER_TYPE, "userName eq 5", "compare it with a string"),
        (USER_TYPE, "userName eq true", "compare it with a string"),
        (USER_TYPE, 'meta.lastModified gt "yesterday"', "xsd:dateTime"),
        (USER_TYPE, 'meta.lastModified gt "2024-02-30T00:00:00Z"', "out of range"),
        (USER_TYPE, 'meta.lastModified gt "2024-02-01T00:00:00+25:00"', "offset"),
        (USER_TYPE, 'meta.lastModified ge "9999-12-31T23:59:59.9999999Z"', "out of range"),
        (USER_TYPE, 'meta.lastModified co "2024"', "'co' is not defined for the dateTime"),
        (USER_TYPE, "meta.lastModified gt 2024", "compare it with a string"),
        (USER_TYPE, "userName gt null", "cannot compare with null"),
        (GROUP_TYPE, 'members.$ref eq "x"', "cannot be used in a filter"),
        (GROUP_TYPE, 'userName eq "x"', "unknown attribute"),
        (METRICS_TYPE, 'level eq "3"', "compare it with a number"),
        (METRICS_TYPE, "level co 1", "'co' is not defined for the number"),
        (METRICS_TYPE, 'badge gt "x"', "'gt' is not defined for the binary"),
    ],
)
def test_compile_invalid_filter_raises_invalid_filter(
    resource: ResourceType, text: str, detail: str
) -> None:
    for dialect in ("sqlite", "postgresql"):
        with pytest.raises(InvalidFilter, match=re.escape(detail)):
            compile_filter(text, resource, dialect)


def test_compile_bad_value_after_cached_shape_still_raises() -> None:
    compile_filter('meta.created gt "2024-01-01T00:00:00Z"', USER_TYPE, "sqlite")
    with pytest.raises(InvalidFilter, match="xsd:dateTime"):
        compile_filter('meta.created gt "soon"', USER_TYPE, "sqlite")


def test_compile_unknown_dialect_raises_value_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        compile_filter("userName pr", USER_TYPE, "oracle")  # type: ignore[arg-type]


# sortBy ------------------------------------------------------------------------------------------


def test_sort_user_name_orders_case_insensitively(db: Database) -> None:
    values = db.sorted_values("userName")
    assert list(values) == ["u-1", "u-2", "u-3", "u-4"]
    assert values["u-4"] == "dävé"


def test_sort_display_name_orders_lower_case_with_missing_last(db: Database) -> None:
    values = db.sorted_values("displayName")
    assert list(values) == ["u-1", "u-2", "u-4", "u-3"]
    assert values["u-3"] is None


def test_sort_json_string_orders_lower_case(db: Database) -> None:
    values = db.sorted_values("title")
    assert list(values)[:2] == ["u-3", "u-1"]


def test_sort_extension_attribute_uses_qualified_path(db: Database) -> None:
    values = db.sorted_values(f"{ENT}:department")
    assert values == {"u-1": "r&d", "u-4": "r&d", "u-2": "sales", "u-3": None}


def test_sort_multi_valued_uses_primary_then_first_value(db: Database) -> None:
    values = db.sorted_values("emails")
    assert values == {
        "u-1": "alice@example.com",
        "u-2": "bob@example.org",
        "u-3": "carol.w@example.com",
        "u-4": None,
    }


def test_sort_complex_uses_value_sub_attribute(db: Database) -> None:
    assert db.sorted_values("manager") == {"u-2": "u-1", "u-1": "u-3", "u-3": None, "u-4": None}


def test_sort_numbers_orders_numerically(db: Database) -> None:
    values = db.sorted_values("level", METRICS_TYPE)
    assert list(values) == ["u-3", "u-1", "u-2", "u-4"]


def test_sort_timestamps_and_group_names_order_as_text(db: Database) -> None:
    assert list(db.sorted_values("meta.lastModified"))[:2] == ["u-3", "u-1"]
    assert list(db.sorted_values("displayName", GROUP_TYPE)) == ["g-1", "g-3", "g-2"]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (USER_TYPE, "nosuch"),
        (USER_TYPE, "password"),
        (USER_TYPE, "name"),
        (USER_TYPE, "groups"),
        (USER_TYPE, "groups.display"),
        (USER_TYPE, "user name"),
        (GROUP_TYPE, "members"),
        (GROUP_TYPE, "members.value"),
    ],
)
def test_sort_unsortable_attribute_raises_invalid_value(resource: ResourceType, path: str) -> None:
    with pytest.raises(InvalidValue):
        sort_expression(path, resource, "sqlite")


# Properties --------------------------------------------------------------------------------------

SUB_ATTRIBUTES = ("value", "type", "display", "primary")
COMPLEX: dict[str, dict[str, tuple[str, ...]]] = {
    "User": {
        "emails": SUB_ATTRIBUTES,
        "phoneNumbers": SUB_ATTRIBUTES,
        "roles": SUB_ATTRIBUTES,
        "addresses": ("postalCode", "country", "type", "primary"),
        "name": ("givenName", "familyName"),
        "manager": ("value", "displayName"),
        f"{ENT}:manager": ("value", "$ref"),
        "meta": ("lastModified", "created", "version"),
        "groups": ("value", "display", "type"),
    },
    "Group": {
        "members": ("value", "display", "type"),
        "meta": ("lastModified", "resourceType"),
    },
}
SIMPLE: dict[str, tuple[str, ...]] = {
    "User": (
        "userName",
        "id",
        "externalId",
        "displayName",
        "active",
        "title",
        "manager",
        f"{ENT}:department",
        f"{PS}:cardNumber",
        "cardNumber",
        "meta.lastModified",
        "emails",
        "emails.value",
        "emails.primary",
        "groups",
        "groups.display",
    ),
    "Group": ("displayName", "id", "externalId", "meta.created", "members", "members.value"),
}
# Occasional mistakes, so the error paths are explored too.
WRONG_PATHS = st.sampled_from(["password", "nosuch", "name", "title", "members", "a.b"])
OPERATORS = st.sampled_from(
    ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Sw", "xx"]
)
VALUES = st.one_of(
    st.text(max_size=8).map(json.dumps),
    st.text(max_size=8).map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from(
        [
            "true",
            "false",
            "null",
            "True",
            '"TRUE"',
            '"2024-01-01T00:00:00Z"',
            '"2024-06-01T12:00:00.1234567+01:00"',
            '"work"',
            '"%_*?["',
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def expressions(paths: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Comparisons and presence tests on ``paths``, combined with and/or/not/parentheses."""
    atoms = st.one_of(
        st.builds(lambda p, o, v: f"{p} {o} {v}", paths, OPERATORS, VALUES),
        paths.map(lambda p: f"{p} pr"),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(
                lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or", "OR"]), inner
            ),
            inner.map(lambda f: f"not ({f})"),
            inner.map(lambda f: f"({f})"),
        ),
        max_leaves=3,
    )


def value_path(attribute: str, subs: tuple[str, ...]) -> st.SearchStrategy[str]:
    inner = expressions(st.sampled_from(subs))
    return st.one_of(
        inner.map(lambda f: f"{attribute}[{f}]"),
        st.builds(
            lambda f, s, o, v: f"{attribute}[{f}].{s} {o} {v}",
            inner,
            st.sampled_from(subs),
            OPERATORS,
            VALUES,
        ),
    )


def filters_for(resource: str) -> st.SearchStrategy[str]:
    paths = st.one_of(st.sampled_from(SIMPLE[resource]), WRONG_PATHS)
    value_paths = st.one_of(*(value_path(a, subs) for a, subs in COMPLEX[resource].items()))
    return st.recursive(
        st.one_of(expressions(paths), value_paths),
        lambda inner: st.one_of(
            st.builds(
                lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or"]), inner
            ),
            inner.map(lambda f: f"not ({f})"),
        ),
        max_leaves=3,
    )


FILTERS = st.one_of(
    st.tuples(st.just(USER_TYPE), filters_for("User")),
    st.tuples(st.just(GROUP_TYPE), filters_for("Group")),
)
TOKEN_SOUP = st.lists(
    st.sampled_from(
        [
            "(",
            ")",
            "[",
            "]",
            ".value",
            "not",
            "and",
            "or",
            "pr",
            "eq",
            "co",
            "gt",
            "userName",
            "emails",
            "members",
            "title",
            "active",
            '"x"',
            "1",
            "true",
            "null",
            '"',
            "\\",
            ":",
            "urn:x:y",
        ]
    ),
    max_size=20,
).map(" ".join)


def check(database: Database, text: str, resource: ResourceType) -> None:
    with contextlib.suppress(InvalidFilter):
        database.matching(text, resource)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=FILTERS)
def test_compile_generated_filters_raise_only_invalid_filter_and_run_on_sqlite(
    sqlite_db: Database, case: tuple[ResourceType, str]
) -> None:
    check(sqlite_db, case[1], case[0])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(st.text(max_size=200), TOKEN_SOUP),
    resource=st.sampled_from([USER_TYPE, GROUP_TYPE]),
)
def test_compile_arbitrary_text_raises_only_invalid_filter(
    sqlite_db: Database, text: str, resource: ResourceType
) -> None:
    check(sqlite_db, text, resource)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=FILTERS)
def test_compile_generated_filters_match_same_rows_on_both_databases(
    sqlite_db: Database, postgresql_db: Database, case: tuple[ResourceType, str]
) -> None:
    resource, text = case
    try:
        expected = sqlite_db.matching(text, resource)
    except InvalidFilter:
        return
    assert postgresql_db.matching(text, resource) == expected


# In memory and in SQL: value filters select the same elements ------------------------------------


def attribute_of(schema: Schema, name: str) -> Attribute:
    attribute = schema.attribute(name)
    assert attribute is not None
    return attribute


ELEMENTS: dict[str, tuple[Attribute, Callable[[dict[str, Any]], list[Any]]]] = {
    "emails": (attribute_of(USER_SCHEMA, "emails"), lambda doc: doc.get("emails", [])),
    "badges": (
        attribute_of(METRICS_SCHEMA, "badges"),
        lambda doc: doc.get(TEST_EXTENSION, {}).get("badges", []),
    ),
}


def in_memory(path: str, inner: str) -> set[str]:
    """The users with an element of ``path`` that ``inner`` selects, evaluated in memory."""
    node = parse(f"{path}[{inner}]")
    assert isinstance(node, ValuePath)
    attribute, elements = ELEMENTS[path]
    value_filter = ValueFilter(attribute, node.filter)
    return {doc["id"] for doc in USER_DOCS if any(map(value_filter.matches, elements(doc)))}


ELEMENT_CASES: list[tuple[str, str, set[str]]] = [
    ("emails", 'type eq "work" and value eq "ALICE@example.com"', {"u-1"}),
    ("emails", 'type eq "work" and value co "carol"', {"u-3"}),
    ("emails", 'not type eq "work"', {"u-1", "u-2", "u-3"}),
    ("emails", 'value ew ".org" or primary eq true', {"u-1", "u-2", "u-3"}),
    ("emails", 'primary ne true and value sw "b"', {"u-2"}),
    ("badges", 'value eq "GOLD"', {"u-1", "u-2"}),
    ("badges", 'code eq "g-1"', {"u-1"}),
    ("badges", 'code eq "x_%"', set()),
    ("badges", 'code co "_%"', {"u-2"}),
    ("badges", 'not type eq "work"', {"u-1", "u-2", "u-3"}),
    ("badges", 'not (type eq "work")', {"u-1", "u-2", "u-3"}),
    ("badges", 'type eq "work" and not primary eq true', set()),
    ("badges", 'value sw "g" and type ne "work"', {"u-2"}),
    ("badges", 'issued eq "2024-06-01T14:00:00+02:00"', {"u-1"}),
    ("badges", 'issued gt "2024-06-01T13:00:00+01:00"', {"u-1", "u-3"}),
    ("badges", 'issued le "2024-01-01T00:59:59.9999995+01:00"', {"u-2"}),
    ("badges", 'issued lt "2024-06-01T12:00:00.0000005Z"', {"u-1", "u-2"}),
    ("badges", 'issued ge "2024-06-01t12:00:00.0000005z"', {"u-1", "u-3"}),
    ("badges", 'issued ne "2024-06-01T12:00:00Z"', {"u-1", "u-2", "u-3"}),
    ("badges", "rank gt 2 or weight lt 1", {"u-1", "u-3"}),
    ("badges", "rank ne 3", {"u-1", "u-2", "u-3"}),
    ("badges", "weight pr and not rank pr", {"u-2", "u-3"}),
    ("badges", "display pr", {"u-3"}),
    ("badges", "display eq null", {"u-1", "u-2", "u-3"}),
    ("badges", 'primary eq "FALSE"', {"u-2"}),
    ("badges", "primary ne true", {"u-1", "u-2", "u-3"}),
]


@pytest.mark.parametrize(
    ("path", "inner", "expected"), ELEMENT_CASES, ids=[f"{c[0]}[{c[1]}]" for c in ELEMENT_CASES]
)
def test_value_filter_in_memory_and_in_sql_select_same_elements(
    db: Database, path: str, inner: str, expected: set[str]
) -> None:
    assert in_memory(path, inner) == expected
    assert db.matching(f"{path}[{inner}]", METRICS_TYPE) == expected


@pytest.mark.parametrize(
    ("path", "inner"),
    [
        ("badges", 'issued gt "yesterday"'),
        ("badges", 'issued co "2024"'),
        ("badges", "issued eq 2024"),
        ("badges", 'issued lt "2024-02-30T00:00:00Z"'),
        ("badges", 'rank eq "3"'),
        ("badges", "rank sw 3"),
        ("badges", 'primary eq "yes"'),
        ("badges", "primary gt true"),
        ("badges", "code eq 5"),
        ("badges", "value gt null"),
        ("badges", 'nosuch eq "x"'),
        ("emails", 'emails.value eq "x"'),
        ("emails", 'value[type eq "x"]'),
    ],
)
def test_value_filter_ill_typed_raises_invalid_filter_in_memory_and_in_sql(
    path: str, inner: str
) -> None:
    with pytest.raises(InvalidFilter):
        in_memory(path, inner)
    with pytest.raises(InvalidFilter):
        compile_filter(f"{path}[{inner}]", METRICS_TYPE, "sqlite")


ELEMENT_SUBS: dict[str, tuple[str, ...]] = {
    "emails": ("value", "type", "display", "primary"),
    "badges": ("value", "display", "type", "code", "primary", "rank", "weight", "issued"),
}
ELEMENT_VALUES = st.one_of(
    st.sampled_from(
        [
            '"gold"',
            '"G-1"',
            '"g"',
            '"work"',
            '"WORK"',
            '"_%"',
            '"alice@example.com"',
            '"example"',
            '"true"',
            "true",
            "false",
            "null",
            "3",
            "-2",
            "2.25",
            "1e0",
            '"2024-06-01T12:00:00Z"',
            '"2024-06-01T14:00:00.0000005+02:00"',
            '"2023-12-31T23:59:59.999999Z"',
            '"2024-06-01"',
        ]
    ),
    st.text(max_size=6).map(json.dumps),
    st.integers(min_value=-20, max_value=20).map(str),
)


def element_filters(subs: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Filters on the sub-attributes ``subs``, with ``not`` with and without parentheses."""
    atoms = st.one_of(
        st.builds(lambda p, o, v: f"{p} {o} {v}", st.sampled_from(subs), OPERATORS, ELEMENT_VALUES),
        st.sampled_from(subs).map(lambda p: f"{p} pr"),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.builds(
                lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["and", "or"]), inner
            ),
            inner.map(lambda f: f"not ({f})"),
            inner.map(lambda f: f"not {f}"),
            inner.map(lambda f: f"({f})"),
        ),
        max_leaves=4,
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.one_of(
        *(st.tuples(st.just(path), element_filters(subs)) for path, subs in ELEMENT_SUBS.items())
    )
)
def test_value_filter_generated_in_memory_and_in_sql_agree(
    db: Database, case: tuple[str, str]
) -> None:
    path, inner = case
    try:
        expected: set[str] | None = in_memory(path, inner)
    except InvalidFilter:
        expected = None
    try:
        found: set[str] | None = db.matching(f"{path}[{inner}]", METRICS_TYPE)
    except InvalidFilter:
        found = None
    assert found == expected, inner
