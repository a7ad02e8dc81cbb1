"""A real, small run of the load generator against the ceiling app on loopback."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import ceiling
from bench.loadgen import (
    PHASE_NAMES,
    Endpoint,
    HttpConnection,
    LoadConfig,
    RunReport,
    ServerProbe,
    run_async,
    run_benchmark,
)
from bench.run import ServerHandle, child_env, free_port, start_server, stop_server, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

USERS = 60
REQUESTS = 80


@pytest.fixture(scope="module")
def ceiling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("ceiling")) / "server.log"
    command = [
        sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = start_server(command, child_env(), log_path, cpu=None)
    handle = ServerHandle(process, Endpoint("127.0.0.1", port, ceiling.BASE_PATH), log_path)
    try:
        run_async(wait_ready(handle, timeout_s=30))
        yield handle
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def report(ceiling_server: ServerHandle) -> RunReport:
    config = LoadConfig(
        users=USERS, connections=4, duration_s=10, requests=REQUESTS, groups=2, warmup_requests=5
    )
    probe = ServerProbe(ceiling_server.process.pid)
    return run_async(run_benchmark(ceiling_server.endpoint, config, probe))


def test_run_benchmark_against_ceiling_reports_every_phase_without_errors(
    report: RunReport,
) -> None:
    assert [phase.name for phase in report.phases] == list(PHASE_NAMES)
    assert report.users == USERS
    expected = {"create": USERS, "entra": REQUESTS, "delete": min(REQUESTS, USERS)}
    for phase in report.phases:
        assert phase.errors == {}, phase
        assert phase.requests == expected.get(phase.name, REQUESTS), phase
        assert phase.ok == phase.requests
        assert phase.rps > 0
        assert 0 < phase.p50_ms <= phase.p99_ms <= phase.max_ms
        assert phase.server_cpu_s is not None and phase.server_cpu_s >= 0
        assert phase.server_rss_bytes is not None and phase.server_rss_bytes > 0
    assert report.rss_idle_bytes is not None and report.rss_idle_bytes > 0
    assert report.rss_with_users_bytes is not None
    assert report.peak_rss_bytes is not None
    assert report.peak_rss_bytes >= report.rss_with_users_bytes > 0
    assert report.notes == []


def test_run_benchmark_report_to_dict_carries_derived_figures(report: RunReport) -> None:
    data = report.to_dict()
    assert data["connections"] == 4
    first = data["phases"][0]
    assert first["name"] == "create"
    for key in ("rps", "p50_ms", "p99_ms", "server_cpu_pct", "cpu_ms_per_request", "errors"):
        assert key in first


def test_run_benchmark_with_wrong_path_counts_errors_by_status(
    ceiling_server: ServerHandle,
) -> None:
    endpoint = Endpoint("127.0.0.1", ceiling_server.endpoint.port, "/nowhere")
    config = LoadConfig(users=10, connections=2, duration_s=5, warmup_requests=0)
    result = run_async(run_benchmark(endpoint, config))
    assert [phase.name for phase in result.phases] == ["create"]
    assert result.phases[0].errors == {"404": 10}
    assert result.notes == ["no user could be created; later phases skipped"]


async def _serve_raw_responses(responses: list[bytes]) -> list[tuple[int, bytes]]:
    """Answer successive requests on one connection with raw bytes; return what was parsed."""
    replies = iter(responses)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            reply = next(replies, None)
            if reply is None:
                break
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = HttpConnection(Endpoint("127.0.0.1", port, ""))
    try:
        return [await conn.request(b"GET", "/Users") for _ in responses]
    finally:
        conn.close()
        server.close()
        await server.wait_closed()


def test_http_connection_reads_chunked_and_close_delimited_bodies_on_one_stream() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\nA;ext=1\r\n1234567890\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n'
    )
    empty = b"HTTP/1.1 204 No Content\r\nContent-Type: application/scim+json\r\n\r\n"
    sized = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"
    closing = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno such user"
    results = run_async(_serve_raw_responses([chunked, empty, sized, closing]))
    assert results == [
        (200, b'{"a":1234567890}'),
        (204, b""),
        (201, b"{}"),
        (404, b"no such user"),
    ]
