"""Unfiltered lists: totals from the per-tenant counts, pages walked from page marks.

Each test compares what the API answers with what the table holds, so a count that drifts or a
page mark that skips or repeats a resource fails."""

from __future__ import annotations

from typing import Any

from storage.paging import PageMarks
from tests.conftest import Service, TenantClient, count_rows


def _user(n: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"user{n:04d}@example.com",
        "active": True,
    }


def _create_users(client: TenantClient, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = client.post("/Users", json=_user(n))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _page(client: TenantClient, start: int, count: int, resource: str = "Users") -> Any:
    response = client.get(f"/{resource}", params={"startIndex": start, "count": count})
    assert response.status_code == 200, response.text
    return response.json()


def _walk(client: TenantClient, count: int, resource: str = "Users") -> list[str]:
    seen: list[str] = []
    start = 1
    while True:
        page = _page(client, start, count, resource)
        seen += [item["id"] for item in page.get("Resources", [])]
        if start + count > page["totalResults"]:
            return seen
        start += count


def test_totals_follow_creates_failed_creates_and_deletes(service: Service) -> None:
    client = service.tenant()
    other = service.tenant()
    ids = _create_users(client, 12)
    _create_users(other, 3)
    assert client.post("/Users", json=_user(0)).status_code == 409  # rolled back, not counted
    assert client.delete(f"/Users/{ids[0]}").status_code == 204
    assert client.delete(f"/Users/{ids[0]}").status_code == 404  # not counted twice
    group = client.post(
        "/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"},
    )
    assert group.status_code == 201

    assert _page(client, 1, 5)["totalResults"] == 11
    assert _page(client, 1, 0)["totalResults"] == 11
    assert _page(other, 1, 5)["totalResults"] == 3
    assert _page(client, 1, 5, "Groups")["totalResults"] == 1
    assert count_rows(service.database_url, "users") == 14
    assert client.delete(f"/Groups/{group.json()['id']}").status_code == 204
    assert _page(client, 1, 5, "Groups")["totalResults"] == 0


def test_sequential_and_out_of_order_pages_match_the_table_order(service: Service) -> None:
    client = service.tenant()
    ids = _create_users(client, 23)
    assert _walk(client, 5) == ids  # every user once, in creation order
    assert _walk(client, 5) == ids  # again, now from the marks of the first walk
    # Out of order, and from positions no page ended at: skips from the nearest mark.
    for start, count in ((13, 4), (2, 7), (21, 10), (24, 5), (1, 23)):
        page = _page(client, start, count)
        assert [item["id"] for item in page.get("Resources", [])] == ids[
            start - 1 : start - 1 + count
        ]
        assert page["startIndex"] == start
        assert page["totalResults"] == 23


def test_a_delete_forgets_the_marks_so_positions_stay_exact(service: Service) -> None:
    client = service.tenant()
    ids = _create_users(client, 12)
    assert _walk(client, 4) == ids
    assert client.delete(f"/Users/{ids[1]}").status_code == 204
    remaining = ids[:1] + ids[2:]
    assert [item["id"] for item in _page(client, 5, 4)["Resources"]] == remaining[4:8]
    assert _walk(client, 4) == remaining
    created = _create_users_named(client, ["late@example.com"])
    assert _walk(client, 4) == remaining + created  # creates append: marks stay right


def _create_users_named(client: TenantClient, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}
        response = client.post("/Users", json=body)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_filtered_and_sorted_lists_do_not_use_marks(service: Service) -> None:
    client = service.tenant()
    ids = _create_users(client, 6)
    response = client.get(
        "/Users",
        params={"filter": 'userName sw "user000"', "startIndex": 3, "count": 2},
    )
    body = response.json()
    assert body["totalResults"] == 6
    assert [item["id"] for item in body["Resources"]] == ids[2:4]
    response = client.get(
        "/Users", params={"sortBy": "userName", "sortOrder": "descending", "count": 2}
    )
    assert [item["id"] for item in response.json()["Resources"]] == ids[::-1][:2]


def test_page_marks_expire_and_stay_bounded() -> None:
    marks = PageMarks(max_lists=2, max_marks=3, ttl=60)
    for offset in (10, 20, 30, 40):
        marks.remember("users", 1, offset, offset * 2)
    assert marks.nearest("users", 1, 9) is None
    assert marks.nearest("users", 1, 25) == (20, 40)
    assert marks.nearest("users", 1, 99) == (30, 60)  # the fourth mark was not kept
    marks.remember("users", 2, 10, 1)
    marks.remember("groups", 1, 10, 1)  # a third list: the least recently used one goes
    assert marks.nearest("users", 1, 25) is None
    assert marks.nearest("users", 2, 10) == (10, 1)
    marks.forget("users", 2)
    assert marks.nearest("users", 2, 10) is None
    expired = PageMarks(ttl=0)
    expired.remember("users", 1, 10, 5)
    assert expired.nearest("users", 1, 10) is None
