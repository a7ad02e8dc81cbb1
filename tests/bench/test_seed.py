"""The bulk seed of the scale benchmarks writes what the API itself would have stored.

A tiny tenant is seeded with ``bench.seed`` and then read back through the real API, on SQLite
and PostgreSQL: the users are found by filter and by id, the big group lists its members, and a
row built by the seed's builder equals the row ``POST /Users`` stores for the same body.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from bench.scale import member_patch
from bench.seed import (
    USER_COLUMNS,
    SeedPlan,
    SeedResult,
    mark_reconciled,
    seed,
    user_body,
    user_row,
)
from storage import reconcile as reconcile_records
from storage.counts import slot_of
from storage.database import open_database
from tests.conftest import PUBLIC_URL, Service, TenantClient, count_rows
from tests.harness import sync_engine

USERS = 50
MEMBERS = 20
SCIM_JSON = {"Content-Type": "application/scim+json"}


def _rows(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with sync_engine(database_url) as engine, engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params)]


@pytest.fixture
def seeded(service: Service) -> tuple[TenantClient, SeedResult]:
    plan = SeedPlan(users=USERS, group_members=MEMBERS, sample=USERS, outsiders=10, batch=16)
    result = seed(service.database_url, plan, public_url=PUBLIC_URL, rng=random.Random(7))
    return TenantClient(service.http, result.name, result.token), result


def test_seed_writes_users_groups_and_memberships_but_no_effects(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    _, result = seeded
    assert count_rows(service.database_url, "users") == USERS
    assert count_rows(service.database_url, "groups") == 2
    assert count_rows(service.database_url, "memberships") == MEMBERS
    assert count_rows(service.database_url, "outbox") == 0
    assert len(result.sample) == USERS
    assert len(result.outsiders) == 10
    assert len(result.member_ids) == MEMBERS
    assert not {user_id for _, user_id in result.outsiders} & set(result.member_ids)
    summary = result.summary()
    assert summary["tenant_url"] == f"{PUBLIC_URL}/scim/v2/{result.name}"
    assert summary["token"] == result.token


def test_seeded_users_are_found_by_filter_and_read_back_as_stored(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    client, result = seeded
    for user_name, user_id in result.sample:
        found = client.get("/Users", params={"filter": f'userName eq "{user_name}"'})
        assert found.status_code == 200
        assert found.json()["totalResults"] == 1
        assert found.json()["Resources"][0]["id"] == user_id
        response = client.get(f"/Users/{user_id}")
        assert response.status_code == 200
        assert response.headers["ETag"] == 'W/"1"'
        (stored,) = _rows(service.database_url, "SELECT doc FROM users WHERE id = :id", id=user_id)[
            0
        ]
        read = response.json()
        groups = read.pop("groups", None)  # read from the memberships, not stored
        assert read == orjson.loads(stored)
        assert (groups is not None) == (user_id in result.member_ids)
        assert response.json()["meta"]["location"] == f"{result.tenant_url}/Users/{user_id}"
    listed = client.get("/Users", params={"count": 10})
    assert listed.json()["totalResults"] == USERS
    assert client.get("/Groups", params={"count": 1}).json()["totalResults"] == 2


def test_seed_builds_the_row_post_users_stores(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    client, result = seeded
    body = user_body(USERS, result.tag)
    response = client.post("/Users", json=body)
    assert response.status_code == 201
    created = response.json()
    columns = ", ".join(USER_COLUMNS)
    (stored,) = _rows(
        service.database_url,
        f"SELECT {columns} FROM users WHERE id = :id",
        id=created["id"],
    )
    built = user_row(
        body,
        pk=stored[0],
        tenant_id=result.tenant_id,
        base=result.tenant_url,
        user_id=created["id"],
        now=created["meta"]["created"],
    )
    as_stored = dict(zip(USER_COLUMNS, stored, strict=True))
    as_built = dict(zip(USER_COLUMNS, built, strict=True))
    as_stored["active"] = bool(as_stored["active"])  # SQLite returns 1
    assert as_built == as_stored
    assert orjson.loads(as_built["doc"]) == created


def test_seeded_groups_show_their_members_and_take_patches(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    client, result = seeded
    big = client.get(f"/Groups/{result.big_group_id}").json()
    assert sorted(m["value"] for m in big["members"]) == sorted(result.member_ids)
    assert "members" not in client.get(f"/Groups/{result.empty_group_id}").json()
    _, outsider = result.outsiders[0]
    for group_id in (result.big_group_id, result.empty_group_id):
        for op in ("add", "remove"):
            response = client.patch(
                f"/Groups/{group_id}", content=member_patch(op, outsider), headers=SCIM_JSON
            )
            assert response.status_code in (200, 204), response.text
    again = client.get(f"/Groups/{result.big_group_id}").json()
    assert sorted(m["value"] for m in again["members"]) == sorted(result.member_ids)
    counts = _rows(service.database_url, "SELECT id, member_count FROM groups")
    assert dict(counts) == {result.big_group_id: MEMBERS, result.empty_group_id: 0}


def test_seed_keeps_the_resource_counts_per_slot(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    _, result = seeded
    stored = _rows(
        service.database_url,
        "SELECT resource, slot, n FROM resource_counts WHERE tenant_id = :tenant",
        tenant=result.tenant_id,
    )
    expected: Counter[tuple[str, int]] = Counter()
    for resource, table in (("User", "users"), ("Group", "groups")):
        for (resource_id,) in _rows(service.database_url, f"SELECT id FROM {table}"):
            expected[(resource, slot_of(resource_id))] += 1
    assert {(resource, slot): n for resource, slot, n in stored} == dict(expected)


def test_marked_reconciled_the_schedule_records_no_reconcile_until_the_next_interval(
    service: Service, seeded: tuple[TenantClient, SeedResult]
) -> None:
    _, result = seeded
    interval = 604_800
    marked = mark_reconciled(service.database_url, interval)
    states = _rows(
        service.database_url,
        "SELECT tenant_id, state FROM outbox WHERE kind = :k",
        k="tenant.reconcile",
    )
    assert marked == len(states) >= 1
    assert (result.tenant_id, "done") in states
    assert {state for _, state in states} == {"done"}

    async def schedule_again() -> None:
        db = await open_database(service.database_url, pool_size=1)
        try:
            await reconcile_records.schedule_due(db, interval)
        finally:
            await db.close()

    asyncio.run(schedule_again())
    assert count_rows(service.database_url, "outbox") == len(states)
    assert mark_reconciled(service.database_url, interval) == 0
