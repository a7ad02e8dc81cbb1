"""Multiprocess exposition, scrape-time collectors, the ASGI middleware's metrics and request
ids, and log redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import textwrap
import urllib.request
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import request_context
from api.middleware import RequestMiddleware
from metrics import catalog, collectors, exposition, logs, redaction
from metrics.http import resource_of
from tests.harness import python

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, sys
    from metrics import catalog, exposition

    exposition.configure(os.environ[exposition.ENV_VAR])
    exposition.check_multiprocess_setup()
    for _ in range(int(sys.argv[1])):
        catalog.SCIM_REQUESTS.labels("Users", "POST", "201", "acme").inc()
        catalog.SCIM_REQUEST_DURATION.labels("Users", "POST", "acme").observe(0.002)
    catalog.set_build_info("9.9.9")
    catalog.TENANT_LAST_SUCCESS.labels("acme").set(1700000000 + int(sys.argv[1]))
    print(os.getpid())
    """
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def run_child(directory: Path, requests: int) -> int:
    """Write metrics from a separate Python process in multiprocess mode; return its pid."""
    env = {**os.environ, exposition.ENV_VAR: str(directory), "PYTHONPATH": str(ROOT)}
    done = python(["-c", CHILD, str(requests)], cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def parse(body: bytes) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Iterator[Path]:
    directory = exposition.prepare_multiproc_dir(tmp_path / "prometheus")
    exposition.configure(str(directory))
    yield directory
    exposition.configure(None)


@pytest.fixture
def single_process() -> None:
    exposition.configure(None)


@pytest.fixture
def scrape_collector() -> Iterator[list[collectors.ScrapeCollector[Any]]]:
    registered: list[collectors.ScrapeCollector[Any]] = []
    yield registered
    for collector in registered:
        exposition.unregister_scrape_collector(collector)


def register(
    registered: list[collectors.ScrapeCollector[Any]], collector: collectors.ScrapeCollector[Any]
) -> None:
    exposition.register_scrape_collector(collector)
    registered.append(collector)


# Multiprocess mode ------------------------------------------------------------------------------


def test_render_children_in_multiprocess_mode_sums_their_metrics(multiproc_dir: Path) -> None:
    run_child(multiproc_dir, 3)
    run_child(multiproc_dir, 4)

    body, content_type = exposition.render(None)

    assert content_type.startswith("text/plain")
    samples = parse(body)
    labels = {"resource": "Users", "method": "POST", "status": "201", "tenant": "acme"}
    assert value(samples, "printsync_scim_requests_total", **labels) == 7
    assert (
        value(
            samples,
            "printsync_scim_request_duration_seconds_count",
            resource="Users",
            method="POST",
            tenant="acme",
        )
        == 7
    )
    assert value(samples, "printsync_build_info", version="9.9.9") == 1
    assert value(samples, "printsync_tenant_last_success_timestamp_seconds", tenant="acme") == (
        1700000004
    )


def test_mark_dead_exited_child_drops_live_gauges_keeps_counters(multiproc_dir: Path) -> None:
    pid = run_child(multiproc_dir, 2)
    before = parse(exposition.render(None)[0])
    assert value(before, "printsync_build_info", version="9.9.9") == 1

    exposition.mark_dead(pid)

    after = parse(exposition.render(None)[0])
    assert value(after, "printsync_build_info", version="9.9.9") is None
    labels = {"resource": "Users", "method": "POST", "status": "201", "tenant": "acme"}
    assert value(after, "printsync_scim_requests_total", **labels) == 2
    assert value(after, "printsync_tenant_last_success_timestamp_seconds", tenant="acme") == (
        1700000002
    )


def test_mark_dead_single_process_mode_does_nothing(
    single_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked: list[tuple[int, str | None]] = []
    monkeypatch.setattr(
        exposition, "mark_process_dead", lambda pid, path=None: marked.append((pid, path))
    )

    exposition.mark_dead(os.getpid())

    assert marked == []


def test_prepare_multiproc_dir_stale_files_removes_only_db_files(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "gauge_livemax_123.db").write_bytes(b"stale")
    (directory / "notes.txt").write_text("keep")

    result = exposition.prepare_multiproc_dir(directory)

    assert result == directory
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


def test_prepare_multiproc_dir_missing_path_creates_it(tmp_path: Path) -> None:
    directory = exposition.prepare_multiproc_dir(tmp_path / "a" / "b")

    assert directory.is_dir()


def test_check_multiprocess_setup_client_imported_before_env_raises(
    multiproc_dir: Path,
) -> None:
    # This test process imported prometheus_client without the variable set.
    with pytest.raises(RuntimeError, match="imported before"):
        exposition.check_multiprocess_setup()


def test_check_multiprocess_setup_missing_dir_raises(tmp_path: Path) -> None:
    exposition.configure(str(tmp_path / "missing"))
    try:
        with pytest.raises(RuntimeError, match="missing directory"):
            exposition.check_multiprocess_setup()
    finally:
        exposition.configure(None)


def test_check_multiprocess_setup_single_process_passes(single_process: None) -> None:
    exposition.check_multiprocess_setup()


# Scrape-time collectors -------------------------------------------------------------------------


def test_render_multiprocess_mode_includes_scrape_collectors(
    multiproc_dir: Path, scrape_collector: list[collectors.ScrapeCollector[Any]]
) -> None:
    snapshot = collectors.OutboxSnapshot(
        pending_by_kind={"print-account:ensure": 3},
        dead_by_kind={"print-account:revoke": 1},
        oldest_pending_age_seconds=42.5,
    )
    register(
        scrape_collector,
        collectors.OutboxCollector(
            lambda: snapshot, kinds=("print-account:ensure", "print-account:revoke")
        ),
    )
    run_child(multiproc_dir, 1)

    samples = parse(exposition.render(None)[0])

    assert value(samples, "printsync_outbox_pending", kind="print-account:ensure") == 3
    assert value(samples, "printsync_outbox_pending", kind="print-account:revoke") == 0
    assert value(samples, "printsync_effects_dead", kind="print-account:revoke") == 1
    assert value(samples, "printsync_effects_dead", kind="print-account:ensure") == 0
    assert value(samples, "printsync_outbox_oldest_pending_age_seconds") == 42.5
    labels = {"resource": "Users", "method": "POST", "status": "201", "tenant": "acme"}
    assert value(samples, "printsync_scim_requests_total", **labels) == 1


def test_render_single_process_mode_includes_default_registry_and_collectors(
    single_process: None, scrape_collector: list[collectors.ScrapeCollector[Any]]
) -> None:
    register(
        scrape_collector,
        collectors.TenantHealthCollector(lambda: [collectors.TenantHealth("acme", "degraded")]),
    )
    catalog.NOTIFICATIONS.labels("digest", "sent").inc()

    samples = parse(exposition.render(None)[0])

    assert value(samples, "printsync_tenant_health", tenant="acme", state="degraded") == 1
    assert value(samples, "printsync_tenant_health", tenant="acme", state="healthy") == 0
    assert value(samples, "printsync_tenant_health", tenant="acme", state="failing") == 0
    assert (
        value(samples, "printsync_notifications_total", kind="digest", outcome="sent") or 0
    ) >= 1


def test_render_accept_openmetrics_uses_openmetrics_format(single_process: None) -> None:
    body, content_type = exposition.render(None, accept="application/openmetrics-text")

    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_collect_source_raises_counts_error_and_omits_family() -> None:
    def broken() -> collectors.OutboxSnapshot:
        raise ConnectionError("database unreachable")

    collector = collectors.OutboxCollector(broken, name="outbox-test-broken")
    labels = {"collector": "outbox-test-broken"}
    before = REGISTRY.get_sample_value("printsync_metrics_source_errors_total", labels) or 0.0

    families = collector.collect()

    assert families == []
    assert REGISTRY.get_sample_value("printsync_metrics_source_errors_total", labels) == before + 1


def test_collect_gauge_rows_fills_always_with_zero() -> None:
    collector = collectors.GaugeCollector(
        catalog.OUTBOX_PENDING,
        lambda: {("a",): 2.0}.items(),
        always=[("a",), ("b",)],
    )

    (family,) = collector.collect()

    assert {s.labels["kind"]: s.value for s in family.samples} == {"a": 2.0, "b": 0.0}


def test_gauge_collector_live_metric_spec_raises() -> None:
    with pytest.raises(ValueError, match="not a scrape-time metric"):
        collectors.GaugeCollector(catalog.spec("printsync_effects_total"), list)


def test_register_scrape_collector_twice_raises(
    scrape_collector: list[collectors.ScrapeCollector[Any]],
) -> None:
    collector = collectors.TenantHealthCollector(list)
    register(scrape_collector, collector)

    with pytest.raises(ValueError, match="already registered"):
        exposition.register_scrape_collector(collector)


def test_serve_metrics_loopback_scrape_returns_fresh_output(
    single_process: None, scrape_collector: list[collectors.ScrapeCollector[Any]]
) -> None:
    state = {"age": 1.0}
    register(
        scrape_collector,
        collectors.GaugeCollector(catalog.OUTBOX_OLDEST_PENDING_AGE, lambda: [((), state["age"])]),
    )
    server, thread = exposition.serve_metrics("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            first = parse(response.read())
        state["age"] = 99.0
        with urllib.request.urlopen(url, timeout=5) as response:
            second = parse(response.read())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert value(first, "printsync_outbox_oldest_pending_age_seconds") == 1.0
    assert value(second, "printsync_outbox_oldest_pending_age_seconds") == 99.0


# ASGI middleware ---------------------------------------------------------------------------------

MAX_BODY_BYTES = 1_048_576


async def scim_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the status named in the query string and echoes the request id, as bound
    in the log context and as kept in the request context."""
    query = scope["query_string"].decode()
    if query == "raise":
        raise RuntimeError("boom")
    status = int(query) if query else 200
    bound = structlog.contextvars.get_contextvars().get("request_id")
    body = json.dumps({"bound": bound, "context": request_context(scope).request_id}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Recorder:
    """Private metrics for one middleware, so tests read exact counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "printsync_scim_requests_total",
            "test",
            ("resource", "method", "status", "tenant"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "printsync_scim_request_duration_seconds",
            "test",
            ("resource", "method", "tenant"),
            buckets=catalog.SCIM_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def middleware(
        self, app: ASGIApp = scim_app, skip_paths: tuple[str, ...] = ()
    ) -> RequestMiddleware:
        return RequestMiddleware(
            app,
            max_body_bytes=MAX_BODY_BYTES,
            skip_paths=skip_paths,
            requests=self.requests,
            duration=self.duration,
        )

    def count(self, resource: str, method: str, status: str) -> float | None:
        return self.registry.get_sample_value(
            "printsync_scim_requests_total",
            {"resource": resource, "method": method, "status": status, "tenant": ""},
        )

    def observations(self, resource: str, method: str) -> float | None:
        return self.registry.get_sample_value(
            "printsync_scim_request_duration_seconds_count",
            {"resource": resource, "method": method, "tenant": ""},
        )


def call(
    app: ASGIApp, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def test_middleware_scim_request_counts_and_times_it() -> None:
    recorder = Recorder()
    app = recorder.middleware()

    call(app, "GET", "/scim/v2/Users?200")
    call(app, "GET", "/scim/v2/Users/2819c223?404")
    call(app, "POST", "/tenants/acme/scim/v2/Groups?201")
    call(app, "GET", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")

    assert recorder.count("Users", "GET", "200") == 1
    assert recorder.count("Users", "GET", "404") == 1
    assert recorder.count("Groups", "POST", "201") == 1
    assert recorder.count("Schemas", "GET", "200") == 1
    assert recorder.observations("Users", "GET") == 2


def test_middleware_unknown_path_and_method_labels_other() -> None:
    recorder = Recorder()
    app = recorder.middleware()

    call(app, "BREW", "/coffee/pot")

    assert recorder.count("other", "other", "200") == 1


@pytest.mark.server_error
def test_middleware_app_raises_answers_500_and_counts_it() -> None:
    recorder = Recorder()
    app = recorder.middleware()

    response = call(app, "PATCH", "/scim/v2/Users/abc?raise")

    assert response.status_code == 500
    assert response.json()["detail"] == "internal server error"
    assert recorder.count("Users", "PATCH", "500") == 1


def test_middleware_skip_path_not_counted() -> None:
    recorder = Recorder()
    app = recorder.middleware(skip_paths=("/metrics",))

    response = call(app, "GET", "/metrics")

    assert response.headers["x-request-id"]
    assert recorder.count("other", "GET", "200") is None


def test_middleware_without_request_id_generates_and_binds_one() -> None:
    app = Recorder().middleware()

    response = call(app, "GET", "/scim/v2/Users")

    request_id = response.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", request_id)
    assert response.json() == {"bound": request_id, "context": request_id}


def test_middleware_request_done_restores_log_context() -> None:
    app = Recorder().middleware()

    async def go() -> dict[str, Any]:
        structlog.contextvars.bind_contextvars(request_id="outer")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/scim/v2/Users")
        assert response.json()["bound"] != "outer"
        return structlog.contextvars.get_contextvars()

    bound = asyncio.run(go())

    assert bound == {"request_id": "outer"}


def test_middleware_valid_request_id_propagates_it() -> None:
    app = Recorder().middleware()

    response = call(app, "GET", "/scim/v2/Users", headers={"X-Request-ID": "entra-7f3a:01.2_x"})

    assert response.headers["x-request-id"] == "entra-7f3a:01.2_x"
    assert response.json()["bound"] == "entra-7f3a:01.2_x"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "<script>", "new\tline"])
def test_middleware_unsafe_request_id_replaces_it(bad: str) -> None:
    app = Recorder().middleware()

    response = call(app, "GET", "/scim/v2/Users", headers={"X-Request-ID": bad})

    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


def test_middleware_app_sets_request_id_header_not_duplicated() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"X-Request-ID", b"from-app")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    response = call(Recorder().middleware(app), "DELETE", "/scim/v2/Users/abc")

    assert response.headers.get_list("x-request-id") == ["from-app"]


def test_middleware_default_metrics_counts_in_catalog() -> None:
    labels = {"resource": "ResourceTypes", "method": "GET", "status": "200", "tenant": ""}
    before = REGISTRY.get_sample_value("printsync_scim_requests_total", labels) or 0.0

    call(
        RequestMiddleware(scim_app, max_body_bytes=MAX_BODY_BYTES), "GET", "/scim/v2/ResourceTypes"
    )

    assert REGISTRY.get_sample_value("printsync_scim_requests_total", labels) == before + 1


def test_middleware_lifespan_scope_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    middleware = RequestMiddleware(app, max_body_bytes=MAX_BODY_BYTES)
    asyncio.run(middleware({"type": "lifespan"}, receive, send))

    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/scim/v2/Users", "Users"),
        ("/scim/v2/Users/", "Users"),
        ("/scim/v2/Users/.search", "Users"),
        ("/scim/v2/Groups/0f8fad5b", "Groups"),
        ("/scim/v2/ServiceProviderConfig", "ServiceProviderConfig"),
        ("/scim/v2/ResourceTypes/User", "ResourceTypes"),
        ("/scim/v2/Bulk", "Bulk"),
        ("/scim/v2/.search", "other"),
        ("/healthz", "other"),
        ("/", "other"),
        ("", "other"),
    ],
)
def test_resource_of_path_returns_endpoint(path: str, resource: str) -> None:
    assert resource_of(path) == resource


# Logging -----------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure_logging(json_output=True, level=logging.INFO, stream=stream)
    yield stream
    for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_redact_secret_keys_masks_values() -> None:
    event: dict[str, Any] = {
        "event": "provisioned",
        "token": "s3cr3t",
        "Authorization": "Bearer abc",
        "pin": "1234",
        "card_number": "99887766",
        "cardNumber": "99887766",
        "secondaryCardNumber": "55443322",
        "password": "hunter2",
        "secret": "x",
        "client_secret": "y",
        "card-pin": "0000",
        "empty_token": "",
        "tenant": "acme",
        "attributes": {"primary-card-number": "1", "department": "Print", "nested": [{"pin": 9}]},
        "headers": [(b"authorization", b"Bearer zzz"), (b"accept", b"application/scim+json")],
    }

    result = redaction.redact(None, "info", event)

    for key in (
        "token",
        "Authorization",
        "pin",
        "card_number",
        "cardNumber",
        "secondaryCardNumber",
        "password",
        "secret",
        "client_secret",
        "card-pin",
    ):
        assert result[key] == redaction.REDACTED, key
    assert result["empty_token"] == ""
    assert result["tenant"] == "acme"
    assert result["attributes"] == {
        "primary-card-number": redaction.REDACTED,
        "department": "Print",
        "nested": [{"pin": redaction.REDACTED}],
    }
    assert result["headers"] == [
        (b"authorization", redaction.REDACTED),
        (b"accept", b"application/scim+json"),
    ]


def test_redact_bearer_in_text_masks_token() -> None:
    event: dict[str, Any] = {"event": "call failed: Authorization: Bearer eyJhbGciOi.x-y, retrying"}

    result = redaction.redact(None, "warning", event)

    assert result["event"] == "call failed: Authorization: Bearer ***, retrying"


def test_configure_logging_json_structlog_and_stdlib_lines_redacted(
    log_stream: io.StringIO,
) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1")
    try:
        structlog.get_logger("printsync.test").info("user_created", tenant="acme", pin="4321")
        logging.getLogger("uvicorn.error").warning("rejected header Bearer abc.def")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")

    first, second = (json.loads(line) for line in log_stream.getvalue().splitlines())
    assert first["event"] == "user_created"
    assert first["pin"] == redaction.REDACTED
    assert first["tenant"] == "acme"
    assert first["request_id"] == "req-1"
    assert first["level"] == "info"
    assert "timestamp" in first
    assert second["event"] == "rejected header Bearer ***"
    assert second["logger"] == "uvicorn.error"
    assert second["request_id"] == "req-1"
    assert "4321" not in log_stream.getvalue()


def test_configure_logging_console_renders_text_without_secrets() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        logs.configure_logging(json_output=False, stream=stream)
        structlog.get_logger("printsync.test").warning("login", password="hunter2")
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
            root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()

    output = stream.getvalue()
    assert "login" in output
    assert "hunter2" not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)
