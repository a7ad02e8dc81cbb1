"""Concurrent writes over real HTTP lose no update (ENTRA.md §6: several Entra jobs may hit one
tenant at once).

The app runs under uvicorn on a free loopback port; several threads, each with its own HTTP
connection, fire PATCHes at one group or one user at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import pytest

from tests.api.test_groups import entra_group
from tests.api.test_users import entra_user
from tests.builders import members, patch_body
from tests.conftest import Served, count_rows, served
from tests.harness import scalar

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
THREADS = 8
PER_THREAD = 25
T = TypeVar("T")


@pytest.fixture
def live(database_url: str) -> Iterator[Served]:
    with served(database_url, "race") as live:
        yield live


def in_parallel(live: Served, jobs: list[Callable[[httpx.Client], T]]) -> list[T]:
    """Run each job on its own thread and connection, all released at the same moment."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[httpx.Client], T]) -> T:
        with live.client() as http:
            http.get("/ServiceProviderConfig").raise_for_status()  # connect before the start
            barrier.wait(timeout=10)
            return job(http)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def create_users(live: Served, prefix: str, count: int) -> list[str]:
    def job(index: int) -> Callable[[httpx.Client], list[str]]:
        def create(http: httpx.Client) -> list[str]:
            ids = []
            for number in range(index, count, THREADS):
                response = http.post("/Users", json=entra_user(f"{prefix}{number}@contoso.com"))
                assert response.status_code == 201, response.text
                ids.append(str(response.json()["id"]))
            return ids

        return create

    created = in_parallel(live, [job(index) for index in range(THREADS)])
    return [user_id for batch in created for user_id in batch]


def test_concurrent_member_adds_to_one_group_lose_no_update(live: Served) -> None:
    with live.client() as http:
        response = http.post("/Groups", json=entra_group("Contended"))
        assert response.status_code == 201, response.text
        group_id = response.json()["id"]
    user_ids = create_users(live, "member", THREADS * PER_THREAD)
    assert len(set(user_ids)) == THREADS * PER_THREAD
    batches = [user_ids[index::THREADS] for index in range(THREADS)]

    def job(batch: list[str]) -> Callable[[httpx.Client], list[int]]:
        def add(http: httpx.Client) -> list[int]:
            return [
                http.patch(
                    f"/Groups/{group_id}",
                    json=members("Add", user_id),
                ).status_code
                for user_id in batch
            ]

        return add

    statuses = in_parallel(live, [job(batch) for batch in batches])
    assert [status for batch in statuses for status in batch] == [204] * len(user_ids)
    with live.client() as http:
        group = http.get(f"/Groups/{group_id}").json()
    assert sorted(member["value"] for member in group["members"]) == sorted(user_ids)
    assert group["meta"]["version"] == f'W/"{1 + len(user_ids)}"'
    assert count_rows(live.database_url, "memberships") == len(user_ids)
    assert scalar(live.database_url, "SELECT member_count FROM groups") == len(user_ids)


def test_concurrent_member_adds_and_removes_keep_every_other_member(live: Served) -> None:
    with live.client() as http:
        group_id = http.post("/Groups", json=entra_group("Churn")).json()["id"]
    user_ids = create_users(live, "churn", THREADS * 10)
    batches = [user_ids[index::THREADS] for index in range(THREADS)]

    def job(batch: list[str]) -> Callable[[httpx.Client], list[int]]:
        def churn(http: httpx.Client) -> list[int]:
            statuses = []
            for user_id in batch:
                statuses.append(
                    http.patch(
                        f"/Groups/{group_id}",
                        json=members("add", user_id),
                    ).status_code
                )
            for user_id in batch[::2]:
                statuses.append(
                    http.patch(
                        f"/Groups/{group_id}",
                        json=members("Remove", user_id),
                    ).status_code
                )
            return statuses

        return churn

    statuses = in_parallel(live, [job(batch) for batch in batches])
    assert {status for batch in statuses for status in batch} == {204}
    expected = sorted(user_id for batch in batches for user_id in batch[1::2])
    with live.client() as http:
        group = http.get(f"/Groups/{group_id}").json()
    assert sorted(member["value"] for member in group["members"]) == expected
    assert scalar(live.database_url, "SELECT member_count FROM groups") == len(expected)


def test_concurrent_patches_of_one_users_attributes_lose_no_update(live: Served) -> None:
    rounds = 15
    with live.client() as http:
        response = http.post(
            "/Users",
            json=entra_user(
                "contended@contoso.com", emails=[{"type": "work", "value": "start@contoso.com"}]
            ),
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]

    def replacing(path: str, value: str) -> Callable[[httpx.Client], list[int]]:
        def run(http: httpx.Client) -> list[int]:
            return [
                http.patch(
                    f"/Users/{user_id}",
                    json=patch_body({"op": "Replace", "path": path, "value": value.format(k=k)}),
                ).status_code
                for k in range(rounds)
            ]

        return run

    def adding_roles(worker: int) -> Callable[[httpx.Client], list[int]]:
        def run(http: httpx.Client) -> list[int]:
            return [
                http.patch(
                    f"/Users/{user_id}",
                    json=patch_body(
                        {"op": "Add", "path": "roles", "value": [{"value": f"r{worker}-{k}"}]}
                    ),
                ).status_code
                for k in range(rounds)
            ]

        return run

    jobs = [
        replacing('emails[type eq "work"].value', "w{k}@contoso.com"),
        replacing("displayName", "Name {k}"),
        replacing('phoneNumbers[type eq "mobile"].value', "+1 555 {k:04d}"),
        replacing(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "Dept {k}"
        ),
        *[adding_roles(worker) for worker in range(4)],
    ]
    statuses = in_parallel(live, jobs)
    assert [status for batch in statuses for status in batch] == [200] * (len(jobs) * rounds)
    with live.client() as http:
        user = http.get(f"/Users/{user_id}").json()
    last = rounds - 1
    assert user["emails"] == [{"type": "work", "value": f"w{last}@contoso.com"}]
    assert user["displayName"] == f"Name {last}"
    assert user["phoneNumbers"] == [{"type": "mobile", "value": f"+1 555 {last:04d}"}]
    assert user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == {
        "department": f"Dept {last}"
    }
    assert sorted(role["value"] for role in user["roles"]) == sorted(
        f"r{worker}-{k}" for worker in range(4) for k in range(rounds)
    )
    assert user["meta"]["version"] == f'W/"{1 + len(jobs) * rounds}"'
    assert count_rows(live.database_url, "outbox") == 1 + len(jobs) * rounds
