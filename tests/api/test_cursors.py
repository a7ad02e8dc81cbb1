"""Cursor pagination (RFC 9865) through the HTTP API, on SQLite and PostgreSQL: walks that miss
and repeat nothing while resources are deleted and created, cursors bound to their query and
tamper-evident, expiry, previous pages, and the advertisement in ServiceProviderConfig."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from storage import cursors
from tests.api.test_groups import entra_group
from tests.conftest import Service, TenantClient

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _user(n: int, **extra: Any) -> dict[str, Any]:
    return {"schemas": [CORE], "userName": f"user{n:04d}@example.com", **extra}


def _create_users(client: TenantClient, count: int, **extra: Any) -> list[str]:
    ids = []
    for n in range(count):
        response = client.post("/Users", json=_user(n, **extra))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _page(client: TenantClient, params: dict[str, Any], path: str = "/Users") -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "startIndex" not in body
    assert body["itemsPerPage"] == len(body.get("Resources", []))
    for name in ("nextCursor", "previousCursor"):
        if name in body:
            assert set(body[name]) <= UNRESERVED, body[name]
    return body


def _walk(client: TenantClient, params: dict[str, Any], path: str = "/Users") -> list[str]:
    """Every id of a forward cursor walk, page after page."""
    seen: list[str] = []
    page = _page(client, {**params, "cursor": ""}, path)
    assert "previousCursor" not in page  # never on the first page
    while True:
        seen += [item["id"] for item in page.get("Resources", [])]
        if "nextCursor" not in page:
            return seen
        page = _page(client, {**params, "cursor": page["nextCursor"]}, path)


def _error(response: Any, scim_type: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "400"
    assert body["scimType"] == scim_type
    assert body["detail"]


def test_walk_while_every_third_user_is_deleted_misses_and_repeats_none(
    service: Service,
) -> None:
    acme = service.tenant()
    ids = _create_users(acme, 300)
    doomed = set(ids[2::3])
    seen: list[str] = []
    page = _page(acme, {"cursor": "", "count": 7})
    deletions = iter(sorted(doomed, key=ids.index, reverse=True))  # from the end backwards too
    while True:
        seen += [item["id"] for item in page["Resources"]]
        for _ in range(5):  # five deletions between two pages, spread over the whole list
            victim = next(deletions, None)
            if victim is not None:
                assert acme.delete(f"/Users/{victim}").status_code == 204
        if "nextCursor" not in page:
            break
        page = _page(acme, {"cursor": page["nextCursor"], "count": 7})
    assert len(seen) == len(set(seen)), "a user was returned twice"
    survivors = [user for user in ids if user not in doomed]
    assert [user for user in seen if user in set(survivors)] == survivors
    assert set(seen) <= set(ids)


def test_walk_while_users_are_created_returns_each_once(service: Service) -> None:
    acme = service.tenant()
    ids = _create_users(acme, 20)
    seen: list[str] = []
    page = _page(acme, {"cursor": "", "count": 6})
    extra = 0
    while True:
        seen += [item["id"] for item in page["Resources"]]
        created = acme.post("/Users", json=_user(1000 + extra))
        assert created.status_code == 201
        ids.append(created.json()["id"])
        extra += 1
        if "nextCursor" not in page:
            break
        page = _page(acme, {"cursor": page["nextCursor"], "count": 6})
    assert len(seen) == len(set(seen))
    assert seen == ids[: len(seen)]  # in creation order, nothing skipped
    assert len(seen) >= 20


def test_first_page_carries_total_and_next_cursor_last_page_none(service: Service) -> None:
    acme = service.tenant()
    _create_users(acme, 5)
    first = _page(acme, {"cursor": "", "count": 2})
    assert first["totalResults"] == 5
    assert len(first["Resources"]) == 2
    assert "nextCursor" in first
    exact = _page(acme, {"cursor": "", "count": 5})
    assert "nextCursor" not in exact and "previousCursor" not in exact
    assert len(exact["Resources"]) == 5
    only_total = _page(acme, {"cursor": "", "count": 0})
    assert only_total["totalResults"] == 5
    assert only_total["Resources"] == []
    assert "nextCursor" not in only_total
    # A bare ?cursor (no value) asks for the first page too, with the default page size.
    bare = acme.http.get(f"{acme.base}/Users?cursor", headers=acme.headers())
    assert bare.status_code == 200
    assert len(bare.json()["Resources"]) == 5


def test_previous_cursor_walks_back_to_the_first_page(service: Service) -> None:
    acme = service.tenant()
    ids = _create_users(acme, 11)
    pages = [_page(acme, {"cursor": "", "count": 3})]
    while "nextCursor" in pages[-1]:
        pages.append(_page(acme, {"cursor": pages[-1]["nextCursor"], "count": 3}))
    assert [len(page["Resources"]) for page in pages] == [3, 3, 3, 2]
    assert all("previousCursor" in page for page in pages[1:])
    page = pages[-1]
    back = []
    while "previousCursor" in page:
        page = _page(acme, {"cursor": page["previousCursor"], "count": 3})
        back.append([item["id"] for item in page["Resources"]])
        assert "nextCursor" in page
    assert back == [ids[6:9], ids[3:6], ids[0:3]]
    # Forward again from a page reached backwards.
    again = _page(acme, {"cursor": page["nextCursor"], "count": 3})
    assert [item["id"] for item in again["Resources"]] == ids[3:6]


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_sorted_walk_with_missing_values_matches_index_order(service: Service, order: str) -> None:
    acme = service.tenant()
    for n in range(17):
        extra = {"displayName": f"Name {n % 5}"} if n % 4 else {}  # ties, and no value at all
        assert acme.post("/Users", json=_user(n, **extra)).status_code == 201
    params = {"sortBy": "displayName", "sortOrder": order}
    walked = _walk(acme, {**params, "count": 4})
    indexed = acme.get("/Users", params={**params, "count": 100}).json()["Resources"]
    assert walked == [item["id"] for item in indexed]
    names = [item.get("displayName") for item in indexed]
    present = [name for name in names if name is not None]
    assert present == sorted(present, reverse=order == "descending")
    # RFC 7644 §3.4.2.3: without a value, last when ascending, first when descending.
    if order == "ascending":
        assert names[-5:] == [None] * 5 and None not in names[:-5]
    else:
        assert names[:5] == [None] * 5 and None not in names[5:]


def test_sorted_walk_while_users_are_deleted_and_created_misses_none(service: Service) -> None:
    acme = service.tenant()
    ids = [
        acme.post("/Users", json=_user(n, displayName=f"n{n:03d}")).json()["id"] for n in range(40)
    ]
    deleted: set[str] = set()
    seen: list[str] = []
    params = {"count": 6, "sortBy": "displayName"}
    page = _page(acme, {**params, "cursor": ""})
    while True:
        seen += [item["id"] for item in page["Resources"]]
        if seen:
            # Delete the user two places after the page's last one, and add one sorting before
            # everything already seen: neither may shift what the next page starts with.
            after = ids.index(seen[-1]) + 2
            if after < len(ids):
                assert acme.delete(f"/Users/{ids[after]}").status_code == 204
                deleted.add(ids[after])
            early = acme.post("/Users", json=_user(500 + len(seen), displayName="a"))
            assert early.status_code == 201
        if "nextCursor" not in page:
            break
        page = _page(acme, {**params, "cursor": page["nextCursor"]})
    assert seen == [user for user in ids if user not in deleted]


def test_filtered_walk_and_search_body_cursor(service: Service) -> None:
    acme = service.tenant()
    ids = _create_users(acme, 9, title="Engineer")
    _create_users_other = [
        acme.post("/Users", json=_user(100 + n, title="Sales")).json()["id"] for n in range(4)
    ]
    walked = _walk(acme, {"filter": 'title eq "Engineer"', "count": 4})
    assert walked == ids
    body = {"schemas": [SEARCH], "filter": 'title eq "Sales"', "count": 3, "cursor": ""}
    first = acme.post("/Users/.search", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["totalResults"] == 4
    second = acme.post("/Users/.search", json={**body, "cursor": first.json()["nextCursor"]})
    found = [item["id"] for item in first.json()["Resources"] + second.json()["Resources"]]
    assert found == _create_users_other
    assert "nextCursor" not in second.json()


def test_groups_walk_by_cursor(service: Service) -> None:
    acme = service.tenant()
    ids = [acme.post("/Groups", json=entra_group(f"G{n}")).json()["id"] for n in range(5)]
    assert _walk(acme, {"count": 2, "excludedAttributes": "members"}, "/Groups") == ids


def test_cursor_of_another_query_tenant_or_endpoint_is_invalid(service: Service) -> None:
    acme = service.tenant()
    globex = service.tenant()
    _create_users(acme, 4)
    _create_users(globex, 4)
    acme.post("/Groups", json=entra_group("G1"))
    acme.post("/Groups", json=entra_group("G2"))
    cursor = _page(acme, {"cursor": "", "count": 1, "filter": "userName pr"})["nextCursor"]
    assert _page(acme, {"cursor": cursor, "count": 1, "filter": "userName pr"})["Resources"]
    _error(acme.get("/Users", params={"cursor": cursor, "count": 1}), "invalidCursor")
    _error(
        acme.get("/Users", params={"cursor": cursor, "filter": "userName pr", "sortBy": "id"}),
        "invalidCursor",
    )
    _error(
        globex.get("/Users", params={"cursor": cursor, "filter": "userName pr"}), "invalidCursor"
    )
    unfiltered = _page(acme, {"cursor": "", "count": 1})["nextCursor"]
    _error(acme.get("/Groups", params={"cursor": unfiltered}), "invalidCursor")
    # The count may change from page to page: the position is what the cursor holds.
    assert len(_page(acme, {"cursor": unfiltered, "count": 2})["Resources"]) == 2


def test_forged_or_altered_cursor_is_invalid(service: Service) -> None:
    acme = service.tenant()
    _create_users(acme, 3)
    cursor = _page(acme, {"cursor": "", "count": 1})["nextCursor"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for index in (0, 5, len(raw) // 2, len(raw) - 1):
        altered = bytearray(raw)
        altered[index] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode()
        _error(acme.get("/Users", params={"cursor": text}), "invalidCursor")
    junk = (cursor[:4] + "!" + cursor[4:], cursor + "=", cursor[:-1] + "+", "A" * 5000)
    for garbage in ("x", "%%%", "AAAA", cursor[:-2], cursor + "A", "bnVsbA", "é", *junk):
        _error(acme.get("/Users", params={"cursor": garbage}), "invalidCursor")
    # An altered byte, not an altered last character: that one may only carry padding bits.
    search = acme.post("/Users/.search", json={"schemas": [SEARCH], "cursor": text})
    assert search.status_code == 400
    assert search.json()["scimType"] in ("invalidCursor",)


def test_expired_cursor_is_refused(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    acme = service.tenant()
    _create_users(acme, 3)
    cursor = _page(acme, {"cursor": "", "count": 1})["nextCursor"]
    real = cursors.time.time
    monkeypatch.setattr(cursors.time, "time", lambda: real() + cursors.TIMEOUT_SECONDS - 5)
    assert _page(acme, {"cursor": cursor, "count": 1})["Resources"]  # still valid
    monkeypatch.setattr(cursors.time, "time", lambda: real() + cursors.TIMEOUT_SECONDS + 5)
    _error(acme.get("/Users", params={"cursor": cursor, "count": 1}), "expiredCursor")


def test_cursor_with_start_index_or_bad_type_is_400(service: Service) -> None:
    acme = service.tenant()
    _error(acme.get("/Users", params={"cursor": "", "startIndex": "1"}), "invalidValue")
    body = {"schemas": [SEARCH], "cursor": "", "startIndex": 1}
    _error(acme.post("/Users/.search", json=body), "invalidValue")
    _error(acme.post("/Users/.search", json={"schemas": [SEARCH], "cursor": 3}), "invalidValue")


def test_cursor_survives_a_new_app_on_the_same_database(service: Service) -> None:
    """Another replica (a new process: its own key cache) opens the cursors this one issued:
    the key is the deployment's, kept in the database."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from storage.settings import DatabaseSettings
    from tests.conftest import make_app_settings

    acme = service.tenant()
    ids = _create_users(acme, 4)
    cursor = _page(acme, {"cursor": "", "count": 2})["nextCursor"]
    cursors._keys.clear()
    other = create_app(make_app_settings(), DatabaseSettings(database_url=service.database_url))
    with TestClient(other) as http:
        replica = TenantClient(http, acme.name, acme.token)
        page = _page(replica, {"cursor": cursor, "count": 2})
    assert [item["id"] for item in page["Resources"]] == ids[2:]


def test_index_paging_is_unchanged_and_default(service: Service) -> None:
    acme = service.tenant()
    _create_users(acme, 3)
    body = acme.get("/Users", params={"count": 2}).json()
    assert body["startIndex"] == 1
    assert "nextCursor" not in body and "previousCursor" not in body


def test_service_provider_config_advertises_both_methods_index_by_default(
    service: Service,
) -> None:
    acme = service.tenant()
    config = acme.get("/ServiceProviderConfig").json()
    assert config["pagination"] == {
        "cursor": True,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": 100,
        "maxPageSize": 1000,
        "cursorTimeout": cursors.TIMEOUT_SECONDS,
    }
