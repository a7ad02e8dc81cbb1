"""Secrets: tokens only as SHA-256 hashes, compared in constant time, rotatable with an overlap;
no token, PIN or card number in any response, log line, metric or provisioning-log row."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import structlog
from starlette.testclient import TestClient

from metrics import logs
from storage import clock, ledger, resources, tenants
from tests.api.test_users import CORE, ENTERPRISE, PRINTSYNC
from tests.conftest import Served, Service, TenantClient, create_tenant, served
from tests.conftest import running as app_running
from tests.harness import run, sync_engine

CARD = "8675309012345678"
SECOND_CARD = "5550123456789012"
PIN = "90817263"
ADMIN_TOKEN = "admin-" + "a" * 40
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
CLIENT_LOGGERS = ("httpx", "httpcore", "httpx2")  # the tests' HTTP client, not the application


def card_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [CORE, ENTERPRISE, PRINTSYNC],
        "userName": user_name,
        "active": True,
        "pin": PIN,
        PRINTSYNC: {"cardNumber": CARD, "secondaryCardNumber": SECOND_CARD, "pin": PIN},
        **extra,
    }


def secrets_of(*tokens: str) -> tuple[str, ...]:
    return (*tokens, CARD, SECOND_CARD, PIN)


def assert_free_of(text: str, secrets: tuple[str, ...], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{where} holds {secret!r}"


@contextmanager
def running(database_url: str, **settings: Any) -> Iterator[Service]:
    """The app with the admin endpoints on; the bare 500 of an unexpected error is under test."""
    values = {"raise_server_exceptions": False, "admin_token": ADMIN_TOKEN, **settings}
    with app_running(database_url, **values) as service:
        yield service


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    with running(database_url) as service:
        yield service


def every_row(database_url: str) -> str:
    """Every row of every table, as text."""
    with sync_engine(database_url) as engine, engine.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        dumped = []
        for name in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f"SELECT * FROM {quote(name)}")).all()
            dumped.append(f"{name}: {[tuple(row) for row in rows]!r}")
    return "\n".join(dumped)


def admin(http: TestClient, path: str, **params: str) -> Any:
    return http.get(path, params=params or None, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


# Tokens ------------------------------------------------------------------------------------------


def test_tokens_stored_only_as_sha256_hashes_nowhere_in_clear(database_url: str) -> None:
    first = create_tenant(database_url, "acme")
    second = run(database_url, lambda db: tenants.rotate_token(db, "acme", overlap_seconds=3600))
    wrong = first[:-4] + "XXXX"
    with running(database_url) as service:
        for token in (first, second):
            client = TenantClient(service.http, "acme", token)
            assert (
                client.post("/Users", json=card_user(f"{token[-6:]}@acme.example")).status_code
                == 201
            )
            assert client.get("/Users").status_code == 200
        assert TenantClient(service.http, "acme", wrong).get("/Users").status_code == 401
    # The app has stopped: the provisioning log is written out.
    stored = every_row(database_url)
    assert_free_of(stored, (first, second, wrong, first[4:], second[4:]), "the database")
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT token_hash, previous_token_hash FROM tenants WHERE name = :name"),
            {"name": "acme"},
        ).one()
    engine.dispose()
    assert tuple(row) == (
        hashlib.sha256(second.encode()).hexdigest(),
        hashlib.sha256(first.encode()).hexdigest(),
    )
    assert "provisioning_log" in stored  # the scan covered the request log too


def test_rotate_token_overlap_expires_then_old_token_refused(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = service.tenant("acme")
    newer = run(
        service.database_url, lambda db: tenants.rotate_token(db, "acme", overlap_seconds=600)
    )
    assert acme.get("/Users").status_code == 200
    real_now = clock.now

    def later() -> datetime:
        return real_now() + timedelta(seconds=601)

    monkeypatch.setattr(clock, "now", later)
    expired = acme.get("/Users")
    assert expired.status_code == 401
    assert TenantClient(service.http, "acme", newer).get("/Users").status_code == 200
    # A rotation without overlap cuts the previous token off at once.
    newest = run(service.database_url, lambda db: tenants.rotate_token(db, "acme"))
    assert TenantClient(service.http, "acme", newer).get("/Users").status_code == 401
    assert TenantClient(service.http, "acme", newest).get("/Users").status_code == 200


def test_token_checks_compare_in_constant_time(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = service.tenant("acme")
    compared: list[tuple[bytes | str, bytes | str]] = []
    real = hmac.compare_digest

    def spy(left: Any, right: Any) -> bool:
        compared.append((left, right))
        return real(left, right)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    digest = tenants.hash_token(acme.token)
    assert acme.get("/Users").status_code == 200
    assert (digest, digest) in compared  # the stored hash against the presented token's
    assert (b"acme", b"acme") in compared  # the token's tenant against the URL's
    compared.clear()
    assert admin(service.http, "/admin/tenants").status_code == 200
    assert (ADMIN_TOKEN.encode(), ADMIN_TOKEN.encode()) in compared


def test_wrong_token_response_never_echoes_presented_token(service: Service) -> None:
    acme = service.tenant("acme")
    globex = service.tenant("globex")
    near_miss = acme.token[:-1] + ("A" if acme.token[-1] != "A" else "B")
    for token, base in (
        (near_miss, acme.base),
        ("pst_" + "q" * 43, acme.base),
        (globex.token, acme.base),
        (acme.token, "/scim/v2/no-such-tenant"),
        (ADMIN_TOKEN, acme.base),
    ):
        response = service.http.get(f"{base}/Users", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert_free_of(response.text + repr(response.headers.items()), (token, token[4:]), "a 401")
    for path in ("/admin/tenants", "/admin/tenants/acme", "/admin/log"):
        response = service.http.get(path, headers={"Authorization": f"Bearer {acme.token}"})
        assert response.status_code == 401
        assert_free_of(response.text + repr(response.headers.items()), (acme.token,), path)


# Responses ---------------------------------------------------------------------------------------


def failing_requests(acme: TenantClient, user_id: str) -> list[tuple[str, Any]]:
    """Requests that fail (4xx) while carrying card numbers, a PIN or the token."""
    bad_card = {**card_user("bad@acme.example"), PRINTSYNC: {"cardNumber": int(CARD)}}
    listed_card = {**card_user("list@acme.example"), PRINTSYNC: {"cardNumber": [CARD]}}
    long_card = {**card_user("long@acme.example"), PRINTSYNC: {"cardNumber": CARD * 300}}
    card_filter = f'{PRINTSYNC}:cardNumber eq "{CARD}"'
    token_filter = f'userName eq "{acme.token}"'
    return [
        ("duplicate userName", acme.post("/Users", json=card_user("ada@acme.example"))),
        ("card as a number", acme.post("/Users", json=bad_card)),
        ("card in a list", acme.post("/Users", json=listed_card)),
        ("card too long", acme.post("/Users", json=long_card)),
        (
            "PIN with bad active",
            acme.post("/Users", json=card_user("pin@acme.example", active="maybe")),
        ),
        ("PIN with no userName", acme.post("/Users", json=card_user(""))),
        ("filter cut short", acme.get("/Users", params={"filter": card_filter + " and"})),
        (
            "filter number literal",
            acme.get("/Users", params={"filter": f"{PRINTSYNC}:cardNumber gt {CARD}"}),
        ),
        (
            "filter unknown attribute",
            acme.get("/Users", params={"filter": f'{card_filter} or pin eq "{PIN}"'}),
        ),
        ("filter with the token", acme.get("/Users", params={"filter": token_filter + " or"})),
        (
            "search cut short",
            acme.post("/Users/.search", json={"schemas": [SEARCH], "filter": f"({card_filter}"}),
        ),
        (
            "patch card as a list",
            acme.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "replace", "path": f"{PRINTSYNC}:cardNumber", "value": [SECOND_CARD]}
                    ],
                },
            ),
        ),
        (
            "patch unknown op",
            acme.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": f"set-{PIN}", "path": "title", "value": CARD}],
                },
            ),
        ),
        (
            "patch PIN attribute",
            acme.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": {"pin": PIN}}],
                },
            ),
        ),
        (
            "patch missing user",
            acme.patch(
                f"/Users/{uuid.uuid4()}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "replace", "path": f"{PRINTSYNC}:cardNumber", "value": CARD}
                    ],
                },
            ),
        ),
        (
            "stale If-Match",
            acme.put(
                f"/Users/{user_id}",
                json=card_user("ada@acme.example"),
                headers={"If-Match": 'W/"999"'},
            ),
        ),
        (
            "wrong media type",
            acme.post(
                "/Users",
                content=orjson.dumps(card_user("m@a.example")),
                headers={"Content-Type": "text/plain"},
            ),
        ),
        (
            "body too large",
            acme.post(
                "/Users",
                json=card_user("big@acme.example", title="x" * 5000, displayName=CARD * 100),
            ),
        ),
        (
            "malformed JSON",
            acme.post(
                "/Users",
                content=b'{"userName": "' + CARD.encode() + b'", "pin": ' + PIN.encode() + b"",
                headers={"Content-Type": "application/scim+json"},
            ),
        ),
    ]


def test_error_responses_never_contain_token_card_or_pin(sqlite_url: str) -> None:
    with running(sqlite_url, max_body_bytes=4096) as service:
        acme = service.tenant("acme")
        created = acme.post("/Users", json=card_user("ada@acme.example"))
        assert created.status_code == 201
        assert "pin" not in created.json() and PIN not in created.text  # never stored
        for name, response in failing_requests(acme, created.json()["id"]):
            assert 400 <= response.status_code < 500, (name, response.text)
            assert response.json()["status"] == str(response.status_code)
            assert_free_of(
                response.text + repr(response.headers.items()), secrets_of(acme.token), name
            )


@pytest.mark.server_error
def test_unexpected_error_is_bare_500_without_secrets(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = service.tenant("acme")

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"could not store {CARD} for Bearer {acme.token} (pin={PIN})")

    monkeypatch.setattr(resources, "create", broken)
    response = acme.post("/Users", json=card_user("ada@acme.example"))
    assert response.status_code == 500
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "500",
        "detail": "internal server error",
    }
    assert_free_of(response.text, secrets_of(acme.token), "the 500")


def test_patch_rejected_path_detail_never_contains_card(service: Service) -> None:
    acme = service.tenant("acme")
    user_id = acme.post("/Users", json=card_user("ada@acme.example")).json()["id"]
    response = acme.patch(
        f"/Users/{user_id}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "replace",
                    "path": f'{PRINTSYNC}:cardNumber[value eq "{CARD}"]',
                    "value": SECOND_CARD,
                }
            ],
        },
    )
    assert response.status_code == 400
    assert_free_of(response.text, (CARD,), "the 400")


# Logs, metrics and the admin view ----------------------------------------------------------------


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, rendered as the service renders it (JSON)."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    quiet = {name: logging.getLogger(name).level for name in CLIENT_LOGGERS}
    logs.configure_logging(json_output=True, level=logging.DEBUG, stream=stream)
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
            root.removeHandler(handler)
        root.setLevel(level)
        for name, previous in quiet.items():
            logging.getLogger(name).setLevel(previous)
        structlog.reset_defaults()


@contextmanager
def live_server(database_url: str) -> Iterator[Served]:
    """The app under uvicorn, whose own loggers propagate to the captured root logger."""
    # Access lines off, as `printsync serve` runs uvicorn; everything else at DEBUG.
    server = {"log_level": "debug", "access_log": False}
    with served(
        database_url, "acme", server=server, rate_limit_per_second=0, admin_token=ADMIN_TOKEN
    ) as live:
        yield live


def drive(live: Served, monkeypatch: pytest.MonkeyPatch) -> str:
    """Requests carrying the token, card numbers and a PIN, good and bad; returns /metrics."""
    headers = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base, headers=headers, timeout=30) as http:
        created = http.post("/Users", json=card_user("ada@acme.example"))
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert (
            http.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {
                            "op": "replace",
                            "path": f"{PRINTSYNC}:secondaryCardNumber",
                            "value": CARD,
                        },
                    ],
                },
            ).status_code
            == 200
        )
        assert (
            http.get("/Users", params={"filter": f'{PRINTSYNC}:cardNumber eq "{CARD}"'}).json()[
                "totalResults"
            ]
            == 1
        )
        assert http.get(f"/Users/{user_id}").status_code == 200
        acme = TenantClient(http, "acme", live.token)  # type: ignore[arg-type]
        acme.base = ""
        for _, response in failing_requests(acme, user_id):
            assert 400 <= response.status_code < 500
        wrong = http.get("/Users", headers={"Authorization": f"Bearer {live.token}x"})
        assert wrong.status_code == 401

        async def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError(f"could not store {CARD} for Bearer {live.token} (pin={PIN})")

        with monkeypatch.context() as patched:
            patched.setattr(resources, "create", broken)
            failed = http.post("/Users", json=card_user("eve@acme.example"))
            assert failed.status_code == 500
    with httpx.Client(base_url=live.root, timeout=30) as http:
        admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for path in ("/admin/tenants", "/admin/tenants/acme", "/admin/log"):
            response = http.get(path, headers=admin_headers)
            assert response.status_code == 200, path
            assert_free_of(response.text, secrets_of(live.token), path)
        return http.get("/metrics").text


@pytest.mark.server_error
def test_logs_metrics_and_admin_view_never_contain_token_card_or_pin(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured_logs() as stream, live_server(sqlite_url) as live:

        async def with_pin(db: Any) -> None:
            tenant = await tenants.get(db, "acme")
            await ledger.ensure_account(
                db,
                tenant.id,
                username="ada@acme.example",
                full_name="Ada",
                email="",
                department="",
                office="",
                card_number=CARD,
                secondary_card_number=SECOND_CARD,
                enabled=True,
                groups=[],
            )
            assert await ledger.set_pin(db, tenant.id, "ada@acme.example", PIN)

        run(sqlite_url, with_pin)
        exposition = drive(live, monkeypatch)
    output = stream.getvalue()
    assert '"unhandled error' in output  # the capture works: the 500 was logged
    assert "RuntimeError" in output
    assert_free_of(output, secrets_of(live.token), "the log")
    assert "printsync_scim_requests_total" in exposition
    assert_free_of(exposition, secrets_of(live.token), "/metrics")
    stored = every_row(sqlite_url)
    log_rows = [line for line in stored.splitlines() if line.startswith("provisioning_log:")]
    assert log_rows and "ada@acme.example" in log_rows[0]
    assert_free_of(log_rows[0], secrets_of(live.token), "the provisioning log")
