"""A real `printsync serve` process closes idle, slow-header and slow-body connections, caps the
connections it holds, and keeps its admin API off when the admin token is empty."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.fakes.smtp import free_port
from tests.harness import launch

KEEPALIVE = 1
REQUEST_TIMEOUT = 4.0
CONCURRENCY = 8


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.settimeout(10)
        return sock

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "PRINTSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'printsync.sqlite3'}",
        "PRINTSYNC_ADMIN_TOKEN": "",
        "PRINTSYNC_KEEPALIVE_TIMEOUT_SECONDS": str(KEEPALIVE),
        "PRINTSYNC_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
        "PRINTSYNC_LIMIT_CONCURRENCY": str(CONCURRENCY),
    }
    env.pop("PRINTSYNC_BROKER_URL", None)
    process = launch(
        ["serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        log=tmp_path / "serve.log",
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.popen.poll() is not None or time.monotonic() > deadline:
                said = (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"printsync serve did not start: {said}")
            time.sleep(0.1)
        yield Served(port, process.popen)
    finally:
        process.stop()


def closed_after(sock: socket.socket, *, trickle: bytes = b"", every: float = 0.3) -> float:
    """Seconds until the server closes ``sock``, while ``trickle`` is sent a byte at a time."""
    started = time.monotonic()
    sock.settimeout(every)
    pending = list(trickle)
    while time.monotonic() - started < 30:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if pending:
                try:
                    sock.send(bytes([pending.pop(0)]))
                except OSError:
                    return time.monotonic() - started
            continue
        except OSError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started
    raise AssertionError("the connection was never closed")


def test_serve_closes_idle_connections_after_the_keepalive_timeout(served: Served) -> None:
    with served.connect() as fresh:
        assert KEEPALIVE * 0.5 < closed_after(fresh) < KEEPALIVE + 2

    with served.connect() as reused:
        reused.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = reused.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert closed_after(reused) < KEEPALIVE + 2


def test_serve_closes_slow_header_and_slow_body_connections(served: Served) -> None:
    endless_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with served.connect() as slow_head:
        assert closed_after(slow_head, trickle=endless_head) < REQUEST_TIMEOUT + 2

    with served.connect() as slow_body:
        slow_body.sendall(
            b"POST /scim/v2/acme/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/scim+json\r\n\r\n"
        )
        assert closed_after(slow_body, trickle=b"{" * 200) < REQUEST_TIMEOUT + 2


def test_serve_caps_connections_and_recovers(served: Served) -> None:
    idle = [served.connect() for _ in range(CONCURRENCY)]
    try:
        for sock in idle:  # a request begun and never finished: held until the deadline
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        statuses = []
        deadline = time.monotonic() + REQUEST_TIMEOUT - 0.5
        while time.monotonic() < deadline:
            statuses.append(httpx.get(served.url("/healthz"), timeout=5).status_code)
            if statuses[-1] == 503:
                break
            time.sleep(0.05)
        assert statuses[-1] == 503, statuses
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(served.url("/healthz"), timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.1)


def test_serve_with_empty_admin_token_keeps_admin_api_off(served: Served) -> None:
    for path in ("/admin/tenants", "/admin/log", "/admin/tenants/acme"):
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
            response = httpx.get(served.url(path), headers=headers, timeout=5)
            assert response.status_code == 401, (path, headers, response.text)
            assert "userName" not in response.text
