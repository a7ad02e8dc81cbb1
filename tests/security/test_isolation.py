"""Tenant isolation: a token of one tenant can neither read, change nor detect another's data.

Two tenants: acme (users alice and bob, bob's manager alice, a group holding both) and globex
(user carol, a group holding her). Every probe below is a request globex could send that names
something of acme's: an id, a userName, an externalId, a group name, a card number. Each probe is
sent twice, once with acme's real values and once with random ones, and

- under globex's own Tenant URL both answers have the same status (the one the probe expects)
  and the same body once the probe's own values are masked, and neither mentions anything of
  acme's: the answer for an existing id of another tenant is the answer for an id that exists
  nowhere;
- under acme's Tenant URL globex's token gets the very 401 a garbage token gets, and the same 401
  it gets under the URL of a tenant that does not exist;
- afterwards acme's users, groups, memberships and outbox are exactly as before.

The matrix runs on SQLite and on PostgreSQL, whose filter SQL differs.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from api.app import create_app
from storage import tenants
from storage.database import open_database
from storage.settings import DatabaseSettings
from tests.api.test_groups import entra_group
from tests.api.test_users import CORE, ENTERPRISE, PRINTSYNC, entra_user
from tests.conftest import Service, TenantClient, make_app_settings

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
GARBAGE_TOKEN = "pst_" + "g" * 43

# Placeholders a probe may use; each run of a probe fills them with acme's values or random ones.
USER, USER_NAME, EXTERNAL_ID, DISPLAY = "<user>", "<user-name>", "<external-id>", "<display>"
CARD, GROUP_ID, GROUP_NAME, GROUP_EXTERNAL_ID = "<card>", "<group>", "<group-name>", "<group-ext>"
# globex's own resources a probe writes to: created afresh for each run of a "fresh" probe.
OWN_USER, OWN_USER_NAME, OWN_GROUP, OWN_GROUP_NAME = (
    "<own-user>",
    "<own-user-name>",
    "<own-group>",
    "<own-group-name>",
)
# Server-made ids that are neither acme's nor the probe's (carol's, a created resource's).
OTHER_ID = "<other-id>"
SERVER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    expect: int
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    fresh: bool = False  # writes to globex's own resources, so each run gets new ones


def listing(name: str, resource: str, expression: str, **params: str) -> Probe:
    return Probe(name, "GET", f"/{resource}", 200, params={"filter": expression, **params})


def search(name: str, resource: str, expression: str, **extra: Any) -> Probe:
    return Probe(
        name,
        "POST",
        f"/{resource}/.search",
        200,
        body={"schemas": [SEARCH], "filter": expression, **extra},
    )


MEMBERSHIP = {"value": USER}
PROBES: list[Probe] = [
    # Reads by id.
    Probe("get-user", "GET", f"/Users/{USER}", 404),
    Probe("get-user-projected", "GET", f"/Users/{USER}", 404, params={"attributes": "userName"}),
    Probe(
        "get-user-if-none-match", "GET", f"/Users/{USER}", 404, headers={"If-None-Match": 'W/"1"'}
    ),
    Probe("get-group", "GET", f"/Groups/{GROUP_ID}", 404),
    Probe(
        "get-group-without-members",
        "GET",
        f"/Groups/{GROUP_ID}",
        404,
        params={"excludedAttributes": "members"},
    ),
    Probe(
        "get-group-if-none-match",
        "GET",
        f"/Groups/{GROUP_ID}",
        404,
        headers={"If-None-Match": 'W/"2"'},
    ),
    # Users filters.
    listing("users-id", "Users", f'id eq "{USER}"'),
    listing("users-id-count-zero", "Users", f'id eq "{USER}"', count="0"),
    listing("users-username", "Users", f'userName eq "{USER_NAME}"'),
    listing(
        "users-username-paged", "Users", f'userName eq "{USER_NAME}"', startIndex="1", count="1"
    ),
    listing("users-username-prefix", "Users", f'userName sw "{USER_NAME}"'),
    listing("users-external-id", "Users", f'externalId eq "{EXTERNAL_ID}"'),
    listing("users-display-name", "Users", f'displayName eq "{DISPLAY}"'),
    listing(
        "users-email-value-path", "Users", f'emails[type eq "work" and value eq "{USER_NAME}"]'
    ),
    listing("users-email-contains", "Users", f'emails.value co "{USER_NAME}"'),
    listing("users-manager", "Users", f'manager eq "{USER}"'),
    listing("users-manager-qualified", "Users", f'{ENTERPRISE}:manager.value eq "{USER}"'),
    listing("users-groups", "Users", f'groups eq "{GROUP_ID}"'),
    listing("users-groups-value-path", "Users", f'groups[value eq "{GROUP_ID}"]'),
    listing("users-groups-display", "Users", f'groups.display eq "{GROUP_NAME}"'),
    listing("users-card-number", "Users", f'{PRINTSYNC}:cardNumber eq "{CARD}"'),
    listing("users-not-id", "Users", f'not (id eq "{USER}")'),
    listing(
        "users-id-or-present",
        "Users",
        f'id eq "{USER}" or userName pr',
        sortBy="userName",
        sortOrder="descending",
    ),
    listing(
        "users-created-and-id",
        "Users",
        f'meta.created gt "2000-01-01T00:00:00Z" and id eq "{USER}"',
    ),
    listing(
        "users-username-projected",
        "Users",
        f'userName eq "{USER_NAME}"',
        attributes="userName,groups",
    ),
    # Groups filters.
    listing("groups-id", "Groups", f'id eq "{GROUP_ID}"'),
    listing("groups-display-name", "Groups", f'displayName eq "{GROUP_NAME}"'),
    listing("groups-external-id", "Groups", f'externalId eq "{GROUP_EXTERNAL_ID}"'),
    listing("groups-members", "Groups", f'members eq "{USER}"'),
    listing("groups-members-value-path", "Groups", f'members[value eq "{USER}"]'),
    listing(
        "groups-members-value", "Groups", f'members.value eq "{USER}"', excludedAttributes="members"
    ),
    listing("groups-members-display", "Groups", f'members.display eq "{DISPLAY}"'),
    listing("groups-members-ne", "Groups", f'members ne "{USER}"'),
    listing("groups-members-present-or-id", "Groups", f'members pr or id eq "{GROUP_ID}"'),
    # POST .search.
    search("search-users-id", "Users", f'id eq "{USER}"'),
    search("search-users-username", "Users", f'userName eq "{USER_NAME}"', attributes=["userName"]),
    search("search-users-manager", "Users", f'manager eq "{USER}"', count=0),
    search("search-groups-members", "Groups", f'members eq "{USER}"', attributes=["members"]),
    search("search-groups-display-name", "Groups", f'displayName eq "{GROUP_NAME}"'),
    # Writes to acme's ids under globex's URL.
    Probe("put-user", "PUT", f"/Users/{USER}", 404, body=entra_user(USER_NAME)),
    Probe(
        "put-user-if-match",
        "PUT",
        f"/Users/{USER}",
        404,
        body=entra_user(USER_NAME),
        headers={"If-Match": 'W/"1"'},
    ),
    Probe(
        "patch-user",
        "PATCH",
        f"/Users/{USER}",
        404,
        body=patch_body({"op": "replace", "path": "active", "value": False}),
    ),
    Probe(
        "patch-user-card",
        "PATCH",
        f"/Users/{USER}",
        404,
        body=patch_body({"op": "replace", "path": f"{PRINTSYNC}:cardNumber", "value": "1"}),
    ),
    Probe("delete-user", "DELETE", f"/Users/{USER}", 404),
    Probe("delete-user-if-match", "DELETE", f"/Users/{USER}", 404, headers={"If-Match": 'W/"1"'}),
    Probe("put-group", "PUT", f"/Groups/{GROUP_ID}", 404, body=entra_group(GROUP_NAME)),
    Probe(
        "patch-group",
        "PATCH",
        f"/Groups/{GROUP_ID}",
        404,
        body=patch_body({"op": "replace", "path": "displayName", "value": "taken over"}),
    ),
    Probe(
        "patch-group-remove-members",
        "PATCH",
        f"/Groups/{GROUP_ID}",
        404,
        body=patch_body({"op": "remove", "path": "members"}),
    ),
    Probe("delete-group", "DELETE", f"/Groups/{GROUP_ID}", 404),
    # acme's user as a reference in globex's own resources.
    Probe(
        "patch-own-group-add-member",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        400,
        body=patch_body({"op": "add", "path": "members", "value": [MEMBERSHIP]}),
    ),
    Probe(
        "patch-own-group-replace-members",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        400,
        body=patch_body({"op": "replace", "path": "members", "value": [MEMBERSHIP]}),
    ),
    Probe(
        "patch-own-group-pathless-members",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        400,
        body=patch_body({"op": "add", "value": {"members": [MEMBERSHIP]}}),
    ),
    Probe(
        "patch-own-group-remove-member",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        204,
        body=patch_body({"op": "remove", "path": f'members[value eq "{USER}"]'}),
    ),
    Probe(
        "patch-own-group-remove-member-list",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        204,
        body=patch_body({"op": "remove", "path": "members", "value": [MEMBERSHIP]}),
    ),
    Probe(
        "put-own-group-with-member",
        "PUT",
        f"/Groups/{OWN_GROUP}",
        400,
        body={**entra_group(OWN_GROUP_NAME), "members": [MEMBERSHIP]},
    ),
    Probe(
        "create-group-with-member",
        "POST",
        "/Groups",
        400,
        body={**entra_group("Smuggled"), "members": [MEMBERSHIP]},
    ),
    Probe(
        "patch-own-user-manager",
        "PATCH",
        f"/Users/{OWN_USER}",
        200,
        fresh=True,
        body=patch_body(
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": USER}}
        ),
    ),
    Probe(
        "put-own-user-manager",
        "PUT",
        f"/Users/{OWN_USER}",
        200,
        fresh=True,
        body=entra_user(
            OWN_USER_NAME, externalId=OWN_USER_NAME, **{ENTERPRISE: {"manager": {"value": USER}}}
        ),
    ),
    # acme's unique values are free in globex (uniqueness is per tenant).
    Probe(
        "create-user-with-acme-names",
        "POST",
        "/Users",
        201,
        body=entra_user(USER_NAME, externalId=EXTERNAL_ID, displayName=DISPLAY),
    ),
    Probe(
        "create-group-with-acme-names",
        "POST",
        "/Groups",
        201,
        body={**entra_group(GROUP_NAME), "externalId": GROUP_EXTERNAL_ID},
    ),
    Probe(
        "rename-own-user-to-acme-name",
        "PATCH",
        f"/Users/{OWN_USER}",
        200,
        fresh=True,
        body=patch_body({"op": "replace", "path": "userName", "value": USER_NAME}),
    ),
    Probe(
        "rename-own-group-to-acme-name",
        "PATCH",
        f"/Groups/{OWN_GROUP}",
        204,
        fresh=True,
        body=patch_body({"op": "replace", "path": "displayName", "value": GROUP_NAME}),
    ),
    # Whole lists and discovery: globex sees only itself.
    Probe("list-users", "GET", "/Users", 200, params={"count": "1000"}),
    Probe("list-groups", "GET", "/Groups", 200, params={"count": "1000"}),
    Probe("search-all-users", "POST", "/Users/.search", 200, body={"schemas": [SEARCH]}),
    Probe("service-provider-config", "GET", "/ServiceProviderConfig", 200),
    Probe("resource-types", "GET", "/ResourceTypes", 200),
    Probe("resource-type-user", "GET", "/ResourceTypes/User", 200),
    Probe("schemas", "GET", "/Schemas", 200),
    Probe("schema-user", "GET", f"/Schemas/{CORE}", 200),
    # The SCIM root: searches across resource types, Bulk and /Me.
    Probe("root-search", "POST", "/.search", 200, body={"schemas": [SEARCH]}),
    Probe(
        "root-search-names",
        "POST",
        "/.search",
        200,
        body={
            "schemas": [SEARCH],
            "filter": f'userName eq "{USER_NAME}" or displayName eq "{GROUP_NAME}"',
            "attributes": ["groups", "members"],
        },
    ),
    Probe(
        "root-search-cursor",
        "POST",
        "/.search",
        200,
        body={"schemas": [SEARCH], "filter": f'id eq "{USER}" or id eq "{GROUP_ID}"', "cursor": ""},
    ),
    Probe("root-query-members", "GET", "", 200, params={"filter": f'members eq "{USER}"'}),
    Probe(
        "bulk-on-acme-resources",
        "POST",
        "/Bulk",
        200,
        body={
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "PATCH",
                    "path": f"/Users/{USER}",
                    "data": patch_body({"op": "replace", "path": "active", "value": False}),
                },
                {"method": "DELETE", "path": f"/Groups/{GROUP_ID}"},
                {
                    "method": "POST",
                    "bulkId": "g",
                    "path": "/Groups",
                    "data": {**entra_group("Smuggled"), "members": [MEMBERSHIP]},
                },
            ],
        },
    ),
    Probe("me", "GET", "/Me", 501),
]


@dataclass
class World:
    service: Service
    acme: TenantClient
    globex: TenantClient
    acme_values: dict[str, str]
    markers: list[str]  # everything of acme's that must never reach globex
    acme_bob: str
    globex_group: str
    runs: int = 0

    def random_values(self) -> dict[str, str]:
        tag = uuid.uuid4().hex[:10]
        return {
            USER: str(uuid.uuid4()),
            USER_NAME: f"nobody-{tag}@example.org",
            EXTERNAL_ID: str(uuid.uuid4()),
            DISPLAY: f"Nobody {tag}",
            CARD: "4999" + "".join(random.choices("0123456789", k=12)),
            GROUP_ID: str(uuid.uuid4()),
            GROUP_NAME: f"Nobody Group {tag}",
            GROUP_EXTERNAL_ID: str(uuid.uuid4()),
        }

    def own_values(self, probe: Probe) -> dict[str, str]:
        """globex's resources the probe writes to: new ones for a fresh probe."""
        if not probe.fresh:
            return {OWN_GROUP: self.globex_group, OWN_GROUP_NAME: "Globex Printers"}
        self.runs += 1
        name = f"fresh-{self.runs}@globex.example"
        user = self.globex.post("/Users", json=entra_user(name))
        group_name = f"Fresh Group {self.runs}"
        group = self.globex.post("/Groups", json=entra_group(group_name))
        assert (user.status_code, group.status_code) == (201, 201)
        return {
            OWN_USER: user.json()["id"],
            OWN_USER_NAME: name,
            OWN_GROUP: group.json()["id"],
            OWN_GROUP_NAME: group_name,
        }


def created(client: TenantClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def add_members(client: TenantClient, group_id: str, *user_ids: str) -> None:
    response = client.patch(
        f"/Groups/{group_id}",
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": user_id} for user_id in user_ids]}
        ),
    )
    assert response.status_code == 204, response.text


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    """The app with the rate limit off: a probe sends a few dozen requests at once."""
    app = create_app(
        make_app_settings(rate_limit_per_second=0), DatabaseSettings(database_url=database_url)
    )
    with TestClient(app, raise_server_exceptions=False) as http:
        yield Service(http, database_url)


@pytest.fixture
def world(service: Service) -> World:
    acme, globex = service.tenant("acme"), service.tenant("globex")
    alice = created(
        acme,
        "/Users",
        {
            **entra_user("alice@acme.example", displayName="Alice Acme"),
            "schemas": [CORE, ENTERPRISE, PRINTSYNC],
            PRINTSYNC: {"cardNumber": "4000123412341234"},
        },
    )
    bob = created(
        acme,
        "/Users",
        entra_user(
            "bob@acme.example",
            displayName="Bob Acme",
            **{ENTERPRISE: {"manager": {"value": alice["id"]}, "department": "Print"}},
        ),
    )
    group = created(acme, "/Groups", entra_group("Acme Printers"))
    add_members(acme, group["id"], alice["id"], bob["id"])
    carol = created(
        globex, "/Users", entra_user("carol@globex.example", displayName="Carol Globex")
    )
    globex_group = created(globex, "/Groups", entra_group("Globex Printers"))
    add_members(globex, globex_group["id"], carol["id"])
    values = {
        USER: alice["id"],
        USER_NAME: alice["userName"],
        EXTERNAL_ID: alice["externalId"],
        DISPLAY: alice["displayName"],
        CARD: alice[PRINTSYNC]["cardNumber"],
        GROUP_ID: group["id"],
        GROUP_NAME: group["displayName"],
        GROUP_EXTERNAL_ID: group["externalId"],
    }
    markers = [
        *values.values(),
        bob["id"],
        bob["userName"],
        bob["externalId"],
        bob["displayName"],
        "/scim/v2/acme/",
    ]
    return World(service, acme, globex, values, markers, bob["id"], globex_group["id"])


def resolve(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, actual in values.items():
            value = value.replace(placeholder, actual)
        return value
    if isinstance(value, list):
        return [resolve(item, values) for item in value]
    if isinstance(value, dict):
        return {resolve(key, values): resolve(item, values) for key, item in value.items()}
    return value


def send(client: TenantClient, probe: Probe, values: dict[str, str]) -> Any:
    return client.request(
        probe.method,
        resolve(probe.path, values),
        json=resolve(probe.body, values),
        params=resolve(probe.params, values) or None,
        headers=probe.headers or None,
    )


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_times(item)
            for key, item in value.items()
            if key not in ("created", "lastModified")
        }
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


def masked(response: Any, values: dict[str, str]) -> str:
    """The body with the run's own values replaced by their placeholders, other server-made ids
    replaced by one mark, and timestamps dropped: what must not differ between runs."""
    text: str = response.text
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    replacements = dict(
        sorted(
            ((actual, placeholder) for placeholder, actual in values.items()),
            key=lambda pair: -len(pair[0]),
        )
    )
    if document is not None:
        text = json.dumps(_without_times(document), sort_keys=True)
    for actual, placeholder in replacements.items():
        text = text.replace(actual, placeholder)
    return SERVER_ID.sub(OTHER_ID, text)


def acme_state(world: World) -> Any:
    """Everything of acme's, as acme sees it and as the tables hold it."""
    acme = world.acme
    users = acme.get("/Users", params={"count": "1000"}).json()
    groups = acme.get("/Groups", params={"count": "1000"}).json()
    one_by_one = [acme.get(f"/Users/{user['id']}").json() for user in users["Resources"]]
    one_by_one += [acme.get(f"/Groups/{group['id']}").json() for group in groups["Resources"]]
    url = sa.make_url(world.service.database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT t.token_hash, t.disabled,"
                    " (SELECT count(*) FROM users u WHERE u.tenant_id = t.id),"
                    " (SELECT count(*) FROM groups g WHERE g.tenant_id = t.id),"
                    " (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id),"
                    " (SELECT count(*) FROM outbox o WHERE o.tenant_id = t.id)"
                    " FROM tenants t WHERE t.name = :name"
                ),
                {"name": "acme"},
            ).all()
    finally:
        engine.dispose()
    return users, groups, one_by_one, [tuple(row) for row in rows]


@pytest.mark.parametrize("probe", PROBES, ids=[probe.name for probe in PROBES])
def test_other_tenant_probe_answers_as_for_nonexistent_and_changes_nothing(
    world: World, probe: Probe
) -> None:
    before = acme_state(world)

    # globex under its own Tenant URL: acme's values answer like values that exist nowhere.
    answers = []
    for values in (world.acme_values, world.random_values()):
        run_values = {**values, **world.own_values(probe)}
        response = send(world.globex, probe, run_values)
        assert response.status_code == probe.expect, (values is world.acme_values, response.text)
        answers.append(masked(response, run_values))
        for marker in world.markers:
            assert marker not in answers[-1], marker
    assert answers[0] == answers[1]

    # globex's token under acme's Tenant URL: the 401 of a garbage token or of no tenant at all.
    http = world.service.http
    intruder = TenantClient(http, "acme", world.globex.token)
    acme_own = {
        OWN_USER: world.acme_bob,
        OWN_USER_NAME: "bob@acme.example",
        OWN_GROUP: world.acme_values[GROUP_ID],
        OWN_GROUP_NAME: "Acme Printers",
    }
    refusals = []
    for values in (world.acme_values, world.random_values()):
        run_values = {**values, **acme_own}
        for client in (
            intruder,
            TenantClient(http, "acme", GARBAGE_TOKEN),
            TenantClient(http, "no-such-tenant", world.globex.token),
        ):
            response = send(client, probe, run_values)
            refusals.append(
                (response.status_code, response.text, response.headers.get("www-authenticate"))
            )
    assert refusals[0][0] == 401
    assert set(refusals) == {refusals[0]}
    assert "acme" not in refusals[0][1]

    assert acme_state(world) == before


def test_other_tenant_disabled_target_still_401_not_403(world: World) -> None:
    """globex cannot tell a disabled tenant from a missing one; only acme's own token sees 403."""

    async def disable() -> None:
        db = await open_database(world.service.database_url)
        try:
            await tenants.set_disabled(db, "acme", True)
        finally:
            await db.close()

    asyncio.run(disable())
    http = world.service.http
    intruder = TenantClient(http, "acme", world.globex.token).get("/Users")
    missing = TenantClient(http, "no-such-tenant", world.globex.token).get("/Users")
    assert (intruder.status_code, intruder.text) == (missing.status_code, missing.text)
    assert intruder.status_code == 401
    assert world.acme.get("/Users").status_code == 403


def test_other_tenant_lists_count_only_own_resources(world: World) -> None:
    users = world.globex.get("/Users", params={"count": "0"}).json()
    groups = world.globex.get("/Groups", params={"count": "0"}).json()
    assert (users["totalResults"], groups["totalResults"]) == (1, 1)
    found = world.globex.get("/Users", params={"filter": 'userName co "@"'}).json()
    assert [user["userName"] for user in found["Resources"]] == ["carol@globex.example"]
