"""``POST /Bulk`` (RFC 7644 §3.7) through the HTTP API, on SQLite and PostgreSQL: operations
run as their single requests would, bulkId references, failOnErrors, the limits, and what the
provisioning log, the outbox, the rate limit and the request metrics see."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.app import create_app
from storage.scim.bulk import MAX_OPERATIONS
from tests.api.test_groups import PATCH, entra_group
from tests.api.test_middleware import log_entries
from tests.api.test_users import ENTERPRISE, entra_user
from tests.conftest import Service, TenantClient, count_rows, create_tenant, make_app_settings

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def bulk(client: TenantClient, *operations: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    response = client.post(
        "/Bulk", json={"schemas": [BULK], "Operations": list(operations), **extra}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [BULK_RESPONSE]
    results: list[dict[str, Any]] = body["Operations"]
    for result in results:
        assert isinstance(result["status"], str)
        if int(result["status"]) >= 400:
            assert result["response"]["schemas"] == [ERROR]
            assert result["response"]["status"] == result["status"]
            assert result["response"]["detail"]
    return results


def post(bulk_id: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "bulkId": bulk_id, "path": path, "data": data}


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def error_of(result: dict[str, Any]) -> tuple[str, str | None]:
    return result["status"], result["response"].get("scimType")


def test_create_user_and_group_naming_it_by_bulk_id(service: Service) -> None:
    acme = service.tenant()
    group = {**entra_group("Printers"), "members": [{"value": "bulkId:u1"}]}
    results = bulk(
        acme,
        post("u1", "/Users", entra_user("ada@contoso.com")),
        post("g1", "/Groups", group),
    )
    assert [(r["method"], r["bulkId"], r["status"]) for r in results] == [
        ("POST", "u1", "201"),
        ("POST", "g1", "201"),
    ]
    user_id = results[0]["location"].rsplit("/", 1)[1]
    assert results[0]["location"] == f"http://testserver{acme.base}/Users/{user_id}"
    assert results[0]["version"] == 'W/"1"'
    fetched = acme.get(results[1]["location"].split("testserver", 1)[1].removeprefix(acme.base))
    assert fetched.status_code == 200
    assert [member["value"] for member in fetched.json()["members"]] == [user_id]
    user = acme.get(f"/Users/{user_id}").json()
    assert [item["display"] for item in user["groups"]] == ["Printers"]


def test_forward_reference_runs_after_the_post_it_names_results_in_request_order(
    service: Service,
) -> None:
    acme = service.tenant()
    results = bulk(
        acme,
        post("g1", "/Groups", {**entra_group("Early"), "members": [{"value": "bulkId:u1"}]}),
        post("u1", "/Users", entra_user("late@contoso.com")),
        {
            "method": "PATCH",
            "path": "/Users/bulkId:u1",
            "data": patch_body({"op": "replace", "path": "title", "value": "Boss"}),
        },
        {
            "method": "PATCH",
            "path": "/Groups/bulkId:g1",
            "data": patch_body({"op": "replace", "path": "displayName", "value": "Renamed"}),
        },
    )
    assert [r["status"] for r in results] == ["201", "201", "200", "204"]
    assert [r.get("bulkId") for r in results] == ["g1", "u1", None, None]
    user_id = results[1]["location"].rsplit("/", 1)[1]
    group_id = results[0]["location"].rsplit("/", 1)[1]
    assert results[2]["location"].endswith(f"/Users/{user_id}")
    assert results[2]["version"] == 'W/"2"'
    group = acme.get(f"/Groups/{group_id}").json()
    assert group["displayName"] == "Renamed"
    assert [member["value"] for member in group["members"]] == [user_id]
    assert acme.get(f"/Users/{user_id}").json()["title"] == "Boss"


def test_put_patch_delete_with_versions_answer_as_single_requests(service: Service) -> None:
    acme = service.tenant()
    ada = acme.post("/Users", json=entra_user("ada@contoso.com")).json()
    bob = acme.post("/Users", json=entra_user("bob@contoso.com")).json()
    group = acme.post("/Groups", json=entra_group("Team")).json()
    results = bulk(
        acme,
        {
            "method": "PUT",
            "path": f"/Users/{ada['id']}",
            "version": 'W/"1"',
            "data": entra_user("ada@contoso.com", title="Countess"),
        },
        {
            "method": "PATCH",
            "path": f"/Users/{bob['id']}",
            "version": 'W/"7"',
            "data": patch_body({"op": "replace", "path": "active", "value": False}),
        },
        {
            "method": "patch",
            "path": f"/Groups/{group['id']}",
            "data": patch_body({"op": "add", "path": "members", "value": [{"value": bob["id"]}]}),
        },
        {"method": "DELETE", "path": f"/Users/{ada['id']}"},
        {"method": "DELETE", "path": f"/Users/{ada['id']}"},
        {"method": "PUT", "path": "/Groups/no-such-group", "data": entra_group("X")},
    )
    statuses = [r["status"] for r in results]
    assert statuses == ["200", "412", "204", "204", "404", "404"]
    assert results[0]["version"] == 'W/"2"'
    assert results[1]["location"].endswith(f"/Users/{bob['id']}")  # kept on a failure
    assert "version" not in results[1]
    assert results[2]["method"] == "PATCH"
    assert results[2]["version"] == 'W/"2"'
    assert "version" not in results[3]
    assert results[5]["location"].endswith("/Groups/no-such-group")
    assert acme.get(f"/Users/{ada['id']}").status_code == 404
    assert acme.get(f"/Users/{bob['id']}").json()["active"] is True  # the 412 changed nothing
    members = acme.get(f"/Groups/{group['id']}").json()["members"]
    assert [member["value"] for member in members] == [bob["id"]]


def test_unresolvable_references_fail_their_operations_only(service: Service) -> None:
    acme = service.tenant()
    taken = acme.post("/Users", json=entra_user("taken@contoso.com")).json()
    manager_of = {ENTERPRISE: {"manager": {"value": "bulkId:b"}}}
    results = bulk(
        acme,
        post("a", "/Users", entra_user("a@contoso.com", **{ENTERPRISE: {"manager": "bulkId:b"}})),
        post("b", "/Users", entra_user("b@contoso.com", **{ENTERPRISE: {"manager": "bulkId:a"}})),
        post("c", "/Users", entra_user("c@contoso.com", **manager_of)),
        post("d", "/Groups", {**entra_group("D"), "members": [{"value": "bulkId:nowhere"}]}),
        post("dup", "/Users", entra_user("dup1@contoso.com")),
        post("dup", "/Users", entra_user("dup2@contoso.com")),
        post("e", "/Users", entra_user("TAKEN@contoso.com")),
        post("f", "/Groups", {**entra_group("F"), "members": [{"value": "bulkId:e"}]}),
        post("self", "/Groups", {**entra_group("S"), "members": [{"value": "bulkId:self"}]}),
        post("ok", "/Users", entra_user("ok@contoso.com")),
    )
    outcome = [error_of(r) if r["status"] != "201" else ("201", None) for r in results]
    invalid = ("400", "invalidValue")
    assert outcome == [
        invalid,  # a <-> b: a cycle
        invalid,
        invalid,  # waits on the cycle
        invalid,  # no POST declares it
        invalid,  # declared twice
        invalid,
        ("409", "uniqueness"),
        invalid,  # its POST failed
        invalid,  # refers to itself
        ("201", None),
    ]
    assert "location" not in results[6]  # a failed POST has none
    assert "'nowhere'" in results[3]["response"]["detail"]
    assert "'e'" in results[7]["response"]["detail"]
    assert "cycle" in results[0]["response"]["detail"]
    assert count_rows(service.database_url, "users") == 2  # taken and ok
    assert count_rows(service.database_url, "groups") == 0
    assert acme.get(f"/Users/{taken['id']}").json()["userName"] == "taken@contoso.com"


def test_fail_on_errors_stops_after_that_many_errors(service: Service) -> None:
    acme = service.tenant()
    operations = [
        post("u1", "/Users", entra_user("one@contoso.com")),
        {"method": "DELETE", "path": "/Users/missing-1"},
        post("u2", "/Users", entra_user("two@contoso.com")),
        {"method": "DELETE", "path": "/Users/missing-2"},
        post("u3", "/Users", entra_user("three@contoso.com")),
    ]
    results = bulk(acme, *operations, failOnErrors=2)
    assert [r["status"] for r in results] == ["201", "404", "201", "404"]
    assert count_rows(service.database_url, "users") == 2
    once = bulk(service.tenant(), *operations, failOnErrors=1)
    assert [r["status"] for r in once] == ["201", "404"]
    carry_on = bulk(service.tenant(), *operations)
    assert [r["status"] for r in carry_on] == ["201", "404", "201", "404", "201"]


def test_invalid_operations_get_their_own_400(service: Service) -> None:
    acme = service.tenant()
    results = bulk(
        acme,
        "not an object",  # type: ignore[arg-type]
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Users", "data": entra_user("nobulkid@contoso.com")},
        {"method": "POST", "bulkId": "m", "path": "/Me", "data": entra_user("me@contoso.com")},
        {"method": "POST", "bulkId": "x", "path": "/Users/abc", "data": entra_user("x@c.com")},
        {"method": "PATCH", "path": "/Users"},
        {"method": "PUT", "path": "/Groups/g"},
        {"method": "DELETE"},
        {"method": "POST", "bulkId": 5, "path": "/Users", "data": {}},
        post("bad", "/Users", {"schemas": ["urn:nope"], "userName": "x"}),
        post("good", "/Users", entra_user("good@contoso.com")),
    )
    assert [r["status"] for r in results] == ["400"] * 10 + ["201"]
    assert [error_of(r)[1] for r in results[:10]] == [
        "invalidSyntax",
        *["invalidValue"] * 8,
        "invalidSyntax",  # the single POST's own error
    ]


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([], "invalidSyntax"),
        ({"Operations": []}, "invalidValue"),
        ({"schemas": [BULK]}, "invalidValue"),
        ({"schemas": [BULK], "Operations": {}}, "invalidValue"),
        ({"schemas": [BULK], "Operations": [], "failOnErrors": 0}, "invalidValue"),
        ({"schemas": [BULK], "Operations": [], "failOnErrors": "1"}, "invalidValue"),
        ({"schemas": [BULK], "Operations": [], "failOnErrors": True}, "invalidValue"),
    ],
)
def test_a_message_that_is_no_bulk_request_is_refused_whole(
    service: Service, body: Any, scim_type: str
) -> None:
    acme = service.tenant()
    response = acme.post("/Bulk", json=body)
    assert response.status_code == 400
    assert response.json()["scimType"] == scim_type


def test_empty_bulk_answers_no_results(service: Service) -> None:
    assert bulk(service.tenant()) == []


def test_over_max_operations_is_413_naming_the_limit_and_changes_nothing(
    service: Service,
) -> None:
    acme = service.tenant()
    operations = [
        post(f"u{n}", "/Users", entra_user(f"u{n}@contoso.com")) for n in range(MAX_OPERATIONS + 1)
    ]
    response = acme.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert response.status_code == 413
    error = response.json()
    assert error["status"] == "413"
    assert "scimType" not in error
    assert f"maxOperations ({MAX_OPERATIONS})" in error["detail"]
    assert count_rows(service.database_url, "users") == 0


def test_over_max_payload_size_is_413_naming_the_limit(service: Service) -> None:
    acme = service.tenant()
    config = acme.get("/ServiceProviderConfig").json()["bulk"]
    assert config == {
        "supported": True,
        "maxOperations": MAX_OPERATIONS,
        "maxPayloadSize": 1_048_576,
    }
    padding = "x" * 4000
    operations = [
        post(f"u{n}", "/Users", entra_user(f"u{n}@contoso.com", title=padding)) for n in range(300)
    ]
    response = acme.post("/Bulk", json={"schemas": [BULK], "Operations": operations})
    assert response.status_code == 413
    assert "maxPayloadSize (1048576 bytes)" in response.json()["detail"]
    assert count_rows(service.database_url, "users") == 0


def test_each_operation_is_logged_and_records_its_effects(sqlite_url: str) -> None:
    from starlette.testclient import TestClient

    from storage.settings import DatabaseSettings

    def bulk_requests() -> float:
        labels = {"resource": "Bulk", "method": "POST", "status": "200", "tenant": "acme"}
        return REGISTRY.get_sample_value("printsync_scim_requests_total", labels) or 0.0

    token = create_tenant(sqlite_url, "acme")
    app = create_app(make_app_settings(), DatabaseSettings(database_url=sqlite_url))
    before = bulk_requests()
    with TestClient(app) as http:
        acme = TenantClient(http, "acme", token)
        results = bulk(
            acme,
            post("u1", "/Users", entra_user("ada@contoso.com")),
            post("g1", "/Groups", {**entra_group("Team"), "members": [{"value": "bulkId:u1"}]}),
            {"method": "DELETE", "path": "/Users/missing"},
        )
    assert bulk_requests() == before + 1
    user_id = results[0]["location"].rsplit("/", 1)[1]
    group_id = results[1]["location"].rsplit("/", 1)[1]
    _, logged = log_entries(sqlite_url)
    entries = [e for e in logged if e.source == "scim"]
    assert [(e.operation, e.status, e.target_id) for e in entries] == [
        ("POST /Users", 201, user_id),
        ("POST /Groups", 201, group_id),
        ("DELETE /Users", 404, "missing"),
    ]
    assert [e.target_name for e in entries[:2]] == ["ada@contoso.com", "Team"]
    assert entries[2].error == "User not found"
    # The group's create added the user: the user's story has it, as for a single request.
    [joined] = [e for e in logged if e.source == "group"]
    assert (joined.operation, joined.target_id, joined.target_name) == (
        "POST /Groups",
        user_id,
        "ada@contoso.com",
    )
    # The effects of each operation, as its single request records them: the user's account,
    # the group, and the account again for the membership.
    assert count_rows(sqlite_url, "outbox") == 3


def test_a_bulk_of_n_operations_counts_as_n_against_the_rate_limit(sqlite_url: str) -> None:
    from starlette.testclient import TestClient

    from storage.settings import DatabaseSettings

    token = create_tenant(sqlite_url, "acme")
    settings = make_app_settings(rate_limit_per_second=0.001, rate_limit_burst=10)
    app = create_app(settings, DatabaseSettings(database_url=sqlite_url))
    with TestClient(app) as http:
        acme = TenantClient(http, "acme", token)
        results = bulk(
            acme, *[post(f"u{n}", "/Users", entra_user(f"u{n}@c.com")) for n in range(8)]
        )
        assert [r["status"] for r in results] == ["201"] * 8
        assert acme.get("/Users").status_code == 200  # the 9th and 10th tokens
        assert acme.get("/Users").status_code == 200
        refused = acme.get("/Users")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # A bulk larger than what is left is still admitted once a token is there, and its
        # operations go into debt: nothing else passes afterwards.
    other = create_tenant(sqlite_url, "globex")
    with TestClient(create_app(settings, DatabaseSettings(database_url=sqlite_url))) as http:
        globex = TenantClient(http, "globex", other)
        big = [post(f"g{n}", "/Users", entra_user(f"g{n}@c.com")) for n in range(25)]
        assert [r["status"] for r in bulk(globex, *big)] == ["201"] * 25
        assert globex.get("/Users").status_code == 429
