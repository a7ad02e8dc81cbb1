"""Hostile or unlucky input: every answer is a clear SCIM 4xx, never a 500, and nothing changes.

Out-of-range log times, repeated JSON keys, media types that only mention JSON, empty ids and
trailing slashes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from api.app import create_app
from printsync.cli import cli
from storage import indexed
from storage.settings import DatabaseSettings
from tests.api.test_admin import ADMIN_TOKEN, admin_service, as_admin
from tests.api.test_groups import entra_group
from tests.api.test_users import entra_user
from tests.conftest import Service, count_rows, make_app_settings

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SCIM_JSON = {"Content-Type": "application/scim+json"}
OUT_OF_RANGE_TIMES = (
    "99999999d",
    "9999999999999h",
    "1" * 400 + "s",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-05:00",
)


def scim_error(response: object, status: int, scim_type: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body["scimType"] == scim_type
    return body


@pytest.fixture
def admin(database_url: str) -> Iterator[Service]:
    yield from admin_service(database_url, ADMIN_TOKEN)


# Item: out-of-range times --------------------------------------------------------------------


def test_admin_log_out_of_range_times_are_400(admin: Service) -> None:
    admin.tenant("acme")
    for name in ("since", "until"):
        for value in OUT_OF_RANGE_TIMES:
            response = admin.http.get("/admin/log", headers=as_admin(), params={name: value})
            body = scim_error(response, 400, "invalidValue")
            assert "year" in str(body["detail"]), (name, value)


def test_log_command_out_of_range_time_is_one_line_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", sqlite_url)
    for option in ("--since", "--until"):
        for value in OUT_OF_RANGE_TIMES:
            result = CliRunner().invoke(cli, ["log", option, value])
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert option in result.output and "year" in result.output


# Item: repeated keys ---------------------------------------------------------------------------


def _raw_user(name_pair: str) -> bytes:
    return b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],' + name_pair.encode() + b"}"


def test_repeated_key_at_any_depth_is_400_invalid_syntax(service: Service) -> None:
    acme = service.tenant()
    bodies = [
        _raw_user('"userName":"a@x.example","userName":"b@x.example"'),
        # Spelled differently, the same key: a \\u escape spells the repeat.
        _raw_user('"userName":"a@x.example","user\\u004eame":"b@x.example"'),
        _raw_user('"userName":"a@x.example","name":{"givenName":"A","givenName":"B"}'),
        _raw_user(
            '"userName":"a@x.example","emails":[{"value":"a@x.example","type":"work",'
            '"type":"home"}]'
        ),
        _raw_user('"userName":"a\\u0022b@x.example","name":{"givenName":"A","givenName":"B"}'),
        # Deeper than orjson writes JSON back (its limit is 254 levels).
        _raw_user(
            '"userName":"a@x.example","title":' + '{"a":' * 300 + '{"b":1,"b":2}' + "}" * 300
        ),
    ]
    for raw in bodies:
        body = scim_error(acme.post("/Users", content=raw, headers=SCIM_JSON), 400)
        assert body["scimType"] == "invalidSyntax", raw
        assert "repeats a key" in str(body["detail"])
    assert count_rows(service.database_url, "users") == 0

    user = acme.post("/Users", json=entra_user("kept@x.example")).json()
    patch = (
        b'{"schemas":["' + PATCH_OP.encode() + b'"],"Operations":[{"op":"replace",'
        b'"path":"displayName","value":"A","value":"B"}]}'
    )
    scim_error(acme.patch(f"/Users/{user['id']}", content=patch, headers=SCIM_JSON), 400)
    search = b'{"schemas":["' + SEARCH.encode() + b'"],"count":1,"count":2}'
    scim_error(acme.post("/Users/.search", content=search, headers=SCIM_JSON), 400)
    assert acme.get(f"/Users/{user['id']}").json()["meta"]["version"] == user["meta"]["version"]


def test_distinct_keys_with_escapes_and_quotes_are_accepted(service: Service) -> None:
    acme = service.tenant()
    raw = _raw_user(
        '"userName":"quote\\"d@x.example","displayName":"J\\u00f6rg \\"J\\"",'
        '"name":{"givenName":"J\\u00f6rg","familyName":"\\u0022Q\\u0022"}'
    )
    created = acme.post("/Users", content=raw, headers=SCIM_JSON)
    assert created.status_code == 201, created.text
    assert created.json()["displayName"] == 'Jörg "J"'
    assert created.json()["name"]["familyName"] == '"Q"'


# Item: media types -----------------------------------------------------------------------------


def test_only_json_media_types_are_accepted(service: Service) -> None:
    acme = service.tenant()
    body = orjson.dumps(entra_user("m@x.example"))
    for content_type in (
        "text/plain; x=json",
        "text/json",
        "application/jsonp",
        "application/json-patch+json",
        "application/x-www-form-urlencoded; charset=json",
        "multipart/form-data; boundary=json",
        "application/json; charset=latin-1",
    ):
        response = acme.post("/Users", content=body, headers={"Content-Type": content_type})
        scim_error(response, 415)
    assert count_rows(service.database_url, "users") == 0
    for number, content_type in enumerate(
        (
            "application/scim+json",
            "application/json",
            "Application/SCIM+JSON; charset=UTF-8",
            "application/json;charset=utf-8",
            ' application/json ; charset="utf-8"',
        )
    ):
        body = orjson.dumps(entra_user(f"m{number}@x.example"))
        response = acme.post("/Users", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 201, (content_type, response.text)


# Item: empty ids and trailing slashes ----------------------------------------------------------


def _requests_counted(status: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name != "printsync_scim_requests":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("status") == status:
                total += sample.value
    return total


def test_empty_ids_and_trailing_slashes_are_404_without_redirect(service: Service) -> None:
    acme = service.tenant()
    user = acme.post("/Users", json=entra_user("slash@x.example")).json()
    group = acme.post("/Groups", json=entra_group("Slashers")).json()
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    redirects = _requests_counted("307")
    for path in (
        "/Users/",
        "/Groups/",
        f"/Users/{user['id']}/",
        f"/Groups/{group['id']}/",
        "/ServiceProviderConfig/",
        "/Schemas/",
        "/ResourceTypes/",
    ):
        for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            response = acme.http.request(
                method,
                acme.base + path,
                content=orjson.dumps(patch),
                headers=acme.headers(SCIM_JSON),
                follow_redirects=False,
            )
            assert response.status_code in (404, 405), (method, path, response.status_code)
            assert "location" not in response.headers
            assert response.json()["status"] == str(response.status_code)
    assert acme.http.get("/admin/tenants/", follow_redirects=False).status_code == 404
    assert _requests_counted("307") == redirects
    assert acme.get(f"/Users/{user['id']}").json()["active"] is True
    assert acme.get(f"/Groups/{group['id']}").status_code == 200


# Item: indexed values longer than an index entry takes ---------------------------------------


def _long(n_bytes: int) -> str:
    """Random (incompressible) text of ``n_bytes`` UTF-8 bytes, 2 bytes a character."""
    alphabet = "äöüßéèêëïîôçñåøæ"
    return "".join(secrets.choice(alphabet) for _ in range(n_bytes // 2))


def test_indexed_values_over_their_byte_limit_are_400_naming_the_attribute(
    service: Service,
) -> None:
    acme = service.tenant()
    limit = indexed.MAX_INDEXED_BYTES
    too_long = _long(limit + 2)  # within the character limit, over the byte limit
    incompressible = "u" + secrets_text(3000)  # over PostgreSQL's 2,704-byte index entry
    for label, body in (
        ("userName", entra_user(too_long)),
        ("userName", entra_user(incompressible)),
        ("externalId", entra_user("x1@x.example", externalId=incompressible)),
        (
            'emails[type eq "work"].value',
            entra_user("x2@x.example", emails=[{"type": "work", "value": incompressible}]),
        ),
    ):
        response = acme.post("/Users", json=body)
        detail = str(scim_error(response, 400, "invalidValue")["detail"])
        assert detail.startswith(label) and "bytes" in detail, detail
    for body in (entra_group(too_long), {**entra_group("G"), "externalId": incompressible}):
        scim_error(acme.post("/Groups", json=body), 400, "invalidValue")
    assert count_rows(service.database_url, "users") == 0
    assert count_rows(service.database_url, "groups") == 0

    # At the limit: accepted, and the same through PUT and PATCH.
    at_limit = _long(limit)
    user = acme.post("/Users", json=entra_user(at_limit))
    assert user.status_code == 201, user.text
    group = acme.post("/Groups", json=entra_group(at_limit))
    assert group.status_code == 201, group.text
    user_id, group_id = user.json()["id"], group.json()["id"]
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "userName", "value": incompressible}],
    }
    scim_error(acme.patch(f"/Users/{user_id}", json=patch), 400, "invalidValue")
    scim_error(acme.put(f"/Groups/{group_id}", json=entra_group(incompressible)), 400)
    assert acme.get(f"/Users/{user_id}").json()["userName"] == at_limit


def secrets_text(n_bytes: int) -> str:
    """Random ASCII text of ``n_bytes``, which no compression shortens much."""
    return secrets.token_urlsafe(n_bytes)[:n_bytes]


# Item: a member deleted while a PATCH adds it (PostgreSQL) -----------------------------------


def test_member_deleted_while_being_added_is_400_not_500(postgres_url: str) -> None:
    app = create_app(make_app_settings(), DatabaseSettings(database_url=postgres_url))
    with TestClient(app, raise_server_exceptions=False) as http:
        acme = Service(http, postgres_url).tenant()
        user_id = acme.post("/Users", json=entra_user("gone@x.example")).json()["id"]
        group_id = acme.post("/Groups", json=entra_group("Leavers")).json()["id"]
        add = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        }
        url = sa.make_url(postgres_url).set(drivername="postgresql+psycopg")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as deleting:
                # The user's delete, as the resource engine runs it, held open.
                pk = deleting.execute(
                    sa.text("SELECT pk FROM users WHERE id = :id FOR UPDATE"), {"id": user_id}
                ).scalar_one()
                deleting.execute(sa.text("DELETE FROM memberships WHERE user_pk = :pk"), {"pk": pk})
                deleting.execute(sa.text("DELETE FROM users WHERE pk = :pk"), {"pk": pk})
                with ThreadPoolExecutor(1) as pool:
                    adding = pool.submit(acme.patch, f"/Groups/{group_id}", json=add)
                    _wait_for_lock_wait(engine)
                    deleting.commit()
                    response = adding.result(timeout=30)
        finally:
            engine.dispose()
        scim_error(response, 400, "invalidValue")
        group = acme.get(f"/Groups/{group_id}").json()
        assert group.get("members", []) == []
        assert acme.get(f"/Users/{user_id}").status_code == 404


def _wait_for_lock_wait(engine: sa.Engine, timeout: float = 15.0) -> None:
    """Until another session of the database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with engine.connect() as watching:
        while time.monotonic() < deadline:
            waiting = watching.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            watching.rollback()
            time.sleep(0.05)
    raise AssertionError("the PATCH never waited for the deleted user's row")
