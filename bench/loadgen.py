"""Load generator for SCIM 2.0 servers: Entra-shaped phases over keep-alive HTTP/1.1.

The client is a minimal HTTP/1.1 implementation on asyncio streams (Content-Length and
chunked response bodies), lean enough for one core to drive well over 10,000 requests per
second. Each phase runs a fixed number of connections in a closed loop, bounded by an
operation count and a maximum duration, records the latency of every request and counts
unexpected statuses as errors. Given the server's process id, it also measures the
server's CPU time per phase and its resident memory (VmRSS, VmHWM) from /proc.

Run against any SCIM base URL on loopback::

    python -m bench.loadgen --base-url http://127.0.0.1:8000/scim/v2 --token T --users 2000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import orjson

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PHASE_NAMES = ("create", "filter", "get", "patch", "list", "entra", "delete")
PAGE_SIZE = 100
ENTRA_REQUESTS_PER_CYCLE = 4
#: Seconds a phase waits for in-flight requests after its deadline before cancelling them.
DRAIN_GRACE_S = 10.0

OK_GET = frozenset({200})
OK_CREATE = frozenset({201})
OK_PATCH = frozenset({200, 204})
OK_DELETE = frozenset({204})

T = TypeVar("T")


class HttpProtocolError(Exception):
    """The server sent something this client does not understand as HTTP/1.1."""


# --------------------------------------------------------------------------------------
# HTTP/1.1 client
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a SCIM service listens: loopback host, port, path prefix and bearer token."""

    host: str
    port: int
    prefix: str
    token: str | None = None

    @classmethod
    def from_url(cls, base_url: str, token: str | None = None) -> Endpoint:
        """Parse a SCIM base URL (``http://127.0.0.1:PORT/prefix``); loopback only."""
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only plain http is supported, got {base_url!r}")
        host = parts.hostname or ""
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the load generator only targets loopback, got {host!r}")
        return cls(host=host, port=parts.port or 80, prefix=parts.path.rstrip("/"), token=token)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; reconnects lazily after a close or an error."""

    __slots__ = ("_endpoint", "_fixed_headers", "_reader", "_writer")

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        headers = f"Host: {host}:{endpoint.port}\r\nAccept: application/scim+json\r\n"
        if endpoint.token:
            headers += f"Authorization: Bearer {endpoint.token}\r\n"
        self._fixed_headers = headers.encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._endpoint.host, self._endpoint.port
            )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = None
        self._writer = None

    async def request(
        self, method: bytes, target: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        """Send one request and return the response's status and decoded body."""
        if self._writer is None:
            await self.connect()
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        head = b"%s %s HTTP/1.1\r\n%s" % (method, target.encode("ascii"), self._fixed_headers)
        if body is None:
            writer.write(head + b"\r\n")
        else:
            writer.write(
                head
                + b"Content-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body
            )
        try:
            status, payload, keep_alive = await _read_response(reader, method == b"HEAD")
        except BaseException:
            self.close()
            raise
        if not keep_alive:
            self.close()
        return status, payload


async def _read_response(
    reader: asyncio.StreamReader, head_request: bool
) -> tuple[int, bytes, bool]:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < len(b"HTTP/1.1 200"):
            raise HttpProtocolError(f"bad status line {status_line[:80]!r}")
        status = int(status_line[9:12])
        if HTTPStatus.CONTINUE <= status < HTTPStatus.OK:
            continue  # interim response; the final one follows
        break
    keep_alive = status_line.startswith(b"HTTP/1.1")
    length = -1
    chunked = False
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            if token == b"close":
                keep_alive = False
            elif token == b"keep-alive":
                keep_alive = True
    if head_request or status in (204, 304):
        return status, b"", keep_alive
    if chunked:
        return status, await _read_chunked(reader), keep_alive
    if length >= 0:
        return status, await reader.readexactly(length), keep_alive
    return status, await reader.read(), False  # delimited by the end of the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HttpProtocolError(f"bad chunk size line {line[:40]!r}") from exc
        if size == 0:
            while True:  # optional trailers up to the blank line
                trailer = await reader.readline()
                if trailer in (b"\r\n", b"\n"):
                    return b"".join(parts)
                if not trailer.endswith(b"\n"):
                    raise asyncio.IncompleteReadError(trailer, None)
        chunk = await reader.readexactly(size + 2)
        parts.append(chunk[:-2])


# --------------------------------------------------------------------------------------
# Server measurement from /proc
# --------------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are plain.
    return raw[raw.rindex(")") + 2 :].split()


def _proc_status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def machine_busy_seconds() -> float | None:
    """CPU seconds all processors have spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    ticks = [int(value) for value in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS


class ServerProbe:
    """CPU time and memory of a server process and all its descendants (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _proc_stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
        tree = [self.pid]
        for pid in tree:
            tree.extend(children.get(pid, ()))
        return tree

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds used so far by the live processes of the tree."""
        ticks = 0
        for pid in self.pids():
            fields = _proc_stat_fields(pid)
            if fields is not None:  # utime and stime are fields 14 and 15 of stat
                ticks += int(fields[11]) + int(fields[12])
        return ticks / _CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Current resident set size of the tree (sum of VmRSS)."""
        return sum(_proc_status_kib(pid, "VmRSS") for pid in self.pids()) * 1024

    def peak_rss_bytes(self) -> int:
        """Peak resident set size of the tree (sum of each process's VmHWM)."""
        return sum(_proc_status_kib(pid, "VmHWM") for pid in self.pids()) * 1024


# --------------------------------------------------------------------------------------
# Recording and reports
# --------------------------------------------------------------------------------------


class Recorder:
    """Latency of every request of a phase, plus error counts keyed by status or exception."""

    __slots__ = ("errors", "latencies_ns", "ok")

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.errors: dict[str, int] = {}
        self.ok = 0

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1

    async def send(
        self,
        conn: HttpConnection,
        method: bytes,
        target: str,
        body: bytes | None,
        expect: frozenset[int],
    ) -> tuple[int, bytes] | None:
        """Send a request, record it, and return the response (None on a transport error)."""
        start = time.perf_counter_ns()
        try:
            status, payload = await conn.request(method, target, body)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            HttpProtocolError,
            ValueError,
        ) as exc:
            self.latencies_ns.append(time.perf_counter_ns() - start)
            self.error(type(exc).__name__)
            return None
        self.latencies_ns.append(time.perf_counter_ns() - start)
        if status in expect:
            self.ok += 1
        else:
            self.error(str(status))
        return status, payload


def percentile_ms(sorted_ns: Sequence[int], pct: float) -> float:
    """Nearest-rank percentile of sorted nanosecond latencies, in milliseconds."""
    if not sorted_ns:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1e6


@dataclass(slots=True)
class PhaseResult:
    """The outcome of one phase against one server."""

    name: str
    requests: int
    ok: int
    errors: dict[str, int]
    elapsed_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    loadgen_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    other_cpu_s: float | None = None
    server_rss_bytes: int | None = None

    @property
    def loadgen_cpu_pct(self) -> float:
        return 100.0 * self.loadgen_cpu_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def other_cpu_pct(self) -> float | None:
        """CPU used by every other process during the phase, in % of one core."""
        if self.other_cpu_s is None or self.elapsed_s <= 0:
            return None
        return 100.0 * self.other_cpu_s / self.elapsed_s

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_cpu_pct(self) -> float | None:
        if self.server_cpu_s is None or self.elapsed_s <= 0:
            return None
        return 100.0 * self.server_cpu_s / self.elapsed_s

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or self.requests == 0:
            return None
        return 1000.0 * self.server_cpu_s / self.requests


def phases_as_dicts(data: dict[str, Any], phases: Sequence[PhaseResult]) -> dict[str, Any]:
    """``data`` (an ``asdict`` of a report) with each phase's derived figures added."""
    for raw, result in zip(data["phases"], phases, strict=True):
        raw["server_cpu_pct"] = result.server_cpu_pct
        raw["cpu_ms_per_request"] = result.cpu_ms_per_request
        raw["error_count"] = result.error_count
        raw["loadgen_cpu_pct"] = result.loadgen_cpu_pct
        raw["other_cpu_pct"] = result.other_cpu_pct
    return data


@dataclass(slots=True)
class RunReport:
    """All phases of one run against one SCIM base URL."""

    base_url: str
    users: int
    connections: int
    phases: list[PhaseResult] = field(default_factory=list)
    users_stored: int = 0
    rss_idle_bytes: int | None = None
    rss_with_users_bytes: int | None = None
    peak_rss_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def phase(self, name: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return phases_as_dicts(asdict(self), self.phases)


# --------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------

Op = Callable[[HttpConnection, Recorder, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Phase:
    """A closed-loop phase: ``op(conn, recorder, i)`` for i in range(max_ops), time-bounded."""

    name: str
    op: Op
    max_ops: int
    max_duration_s: float


async def run_phase(
    endpoint: Endpoint, phase: Phase, connections: int, probe: ServerProbe | None = None
) -> PhaseResult:
    """Run one phase over fresh keep-alive connections and summarise it."""
    conns = [HttpConnection(endpoint) for _ in range(connections)]
    await asyncio.gather(*(conn.connect() for conn in conns))
    recorder = Recorder()
    counter = itertools.count()
    cpu_before = probe.cpu_seconds() if probe else None
    own_cpu_before = time.process_time()
    busy_before = machine_busy_seconds()
    start = time.perf_counter()
    deadline = start + phase.max_duration_s

    async def worker(conn: HttpConnection) -> None:
        while True:
            i = next(counter)
            if i >= phase.max_ops or time.perf_counter() >= deadline:
                return
            await phase.op(conn, recorder, i)

    tasks = [asyncio.ensure_future(worker(conn)) for conn in conns]
    try:
        _, pending = await asyncio.wait(tasks, timeout=phase.max_duration_s + DRAIN_GRACE_S)
        for task in pending:
            task.cancel()
            recorder.error("timeout")
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
        own_cpu = time.process_time() - own_cpu_before
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"phase {phase.name} failed") from task.exception()
    finally:
        for conn in conns:
            conn.close()
    cpu_after = probe.cpu_seconds() if probe else None
    busy_after = machine_busy_seconds()
    server_cpu = (
        cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    )
    other_cpu = None
    if server_cpu is not None and busy_after is not None and busy_before is not None:
        other_cpu = max(0.0, busy_after - busy_before - server_cpu - own_cpu)
    latencies = sorted(recorder.latencies_ns)
    requests = len(latencies)
    return PhaseResult(
        name=phase.name,
        requests=requests,
        ok=recorder.ok,
        errors=dict(sorted(recorder.errors.items())),
        elapsed_s=elapsed,
        rps=requests / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        max_ms=latencies[-1] / 1e6 if latencies else 0.0,
        loadgen_cpu_s=own_cpu,
        server_cpu_s=server_cpu,
        other_cpu_s=other_cpu,
        server_rss_bytes=probe.rss_bytes() if probe else None,
    )


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def entra_user_patches(manager_id: str) -> list[bytes]:
    """Entra-shaped user PATCH bodies (legacy and flag dialects), rotated by the phases."""
    return [
        orjson.dumps(
            _patch(
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Replace", "path": "displayName", "value": "x"},
            )
        ),
        orjson.dumps(
            _patch(
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "moved@contoso.example",
                },
                {"op": "Replace", "path": f"{ENTERPRISE_SCHEMA}:department", "value": "Ops"},
            )
        ),
        orjson.dumps(
            _patch(
                {
                    "op": "replace",
                    "value": {
                        "displayName": "Bjfe",
                        "name.givenName": "Kkom",
                        f"{ENTERPRISE_SCHEMA}:employeeNumber": "Aklq",
                    },
                }
            )
        ),
        orjson.dumps(_patch({"op": "Replace", "path": "active", "value": "True"})),
        orjson.dumps(
            _patch({"op": "Add", "path": f"{ENTERPRISE_SCHEMA}:manager", "value": manager_id})
        ),
    ]


def _user_body(user_name: str, external_id: str, index: int) -> bytes:
    return orjson.dumps(
        {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": external_id,
            "userName": user_name,
            "active": True,
            "displayName": f"Bench User {index}",
            "name": {"givenName": "Bench", "familyName": f"User{index}"},
            "emails": [{"primary": True, "type": "work", "value": user_name}],
            ENTERPRISE_SCHEMA: {"department": "Printing", "employeeNumber": str(index)},
            "meta": {"resourceType": "User"},
            "roles": [],
        }
    )


def _filter_target(prefix: str, attribute: str, value: str) -> str:
    return f"{prefix}/Users?filter=" + quote(f'{attribute} eq "{value}"', safe="")


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Size and bounds of a run; ``requests`` (per phase) defaults to five times ``users``."""

    users: int = 10_000
    connections: int = 16
    duration_s: float = 20.0
    requests: int | None = None
    seed_duration_s: float = 600.0
    groups: int = 10
    warmup_requests: int = 200

    @property
    def phase_requests(self) -> int:
        return self.requests if self.requests is not None else 5 * self.users


class Workload:
    """State shared by the phases of one run: generated users, their ids, the groups."""

    def __init__(self, endpoint: Endpoint, config: LoadConfig) -> None:
        self.endpoint = endpoint
        self.config = config
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = endpoint.prefix
        self._created: list[tuple[str, str] | None] = [None] * config.users
        self.users: list[tuple[str, str]] = []  # (userName, id) of the seeded users
        self.group_ids: list[str] = []
        self.patches: list[bytes] = []
        self.entra_created = 0

    def user_name(self, index: int) -> str:
        return f"user{index:06d}.{self.tag}@contoso.example"

    # ---- phases ------------------------------------------------------------------

    async def op_create(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        name = self.user_name(i)
        body = _user_body(name, f"{self.tag}-{i:08d}", i)
        response = await rec.send(conn, b"POST", f"{self.prefix}/Users", body, OK_CREATE)
        if response is not None and response[0] == HTTPStatus.CREATED:
            created = _json(response[1])
            if isinstance(created, dict) and isinstance(created.get("id"), str):
                self._created[i] = (name, created["id"])

    def finish_seed(self) -> None:
        self.users = [entry for entry in self._created if entry is not None]
        if self.users:
            self.patches = entra_user_patches(self.users[0][1])

    async def op_filter(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        name, _ = self.users[i % len(self.users)]
        await rec.send(conn, b"GET", _filter_target(self.prefix, "userName", name), None, OK_GET)

    async def op_get(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        _, user_id = self.users[i % len(self.users)]
        await rec.send(conn, b"GET", f"{self.prefix}/Users/{user_id}", None, OK_GET)

    async def op_patch(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        _, user_id = self.users[i % len(self.users)]
        body = self.patches[i % len(self.patches)]
        await rec.send(conn, b"PATCH", f"{self.prefix}/Users/{user_id}", body, OK_PATCH)

    async def op_list(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        pages = max(1, math.ceil(len(self.users) / PAGE_SIZE))
        start_index = 1 + (i % pages) * PAGE_SIZE
        target = f"{self.prefix}/Users?startIndex={start_index}&count={PAGE_SIZE}"
        await rec.send(conn, b"GET", target, None, OK_GET)

    async def op_entra_cycle(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        """Probe, match, create-or-patch, group membership: one user of an Entra cycle."""
        probe = _filter_target(self.prefix, "userName", f"{uuid.uuid4()}@contoso.example")
        await rec.send(conn, b"GET", probe, None, OK_GET)
        if i % 4 == 0:  # a newly assigned user; the others already exist
            name = f"entra{i:07d}.{self.tag}@contoso.example"
        else:
            name = self.users[i % len(self.users)][0]
        match = await rec.send(
            conn, b"GET", _filter_target(self.prefix, "userName", name), None, OK_GET
        )
        if match is None or match[0] != HTTPStatus.OK:
            return
        found = _json(match[1])
        resources = found.get("Resources") if isinstance(found, dict) else None
        user_id: str | None = None
        if isinstance(resources, list) and resources and isinstance(resources[0], dict):
            user_id = resources[0].get("id")
            body = self.patches[i % len(self.patches)]
            await rec.send(conn, b"PATCH", f"{self.prefix}/Users/{user_id}", body, OK_PATCH)
        else:
            body = _user_body(name, f"{self.tag}-e{i:08d}", i)
            created = await rec.send(conn, b"POST", f"{self.prefix}/Users", body, OK_CREATE)
            if created is not None and created[0] == HTTPStatus.CREATED:
                self.entra_created += 1
                data = _json(created[1])
                user_id = data.get("id") if isinstance(data, dict) else None
        if user_id is None or not self.group_ids:
            return
        member = orjson.dumps(
            _patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]})
        )
        group_id = self.group_ids[i % len(self.group_ids)]
        await rec.send(conn, b"PATCH", f"{self.prefix}/Groups/{group_id}", member, OK_PATCH)

    async def op_delete(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        _, user_id = self.users[i]
        await rec.send(conn, b"DELETE", f"{self.prefix}/Users/{user_id}", None, OK_DELETE)

    # ---- untimed setup -------------------------------------------------------------

    async def warm_up(self) -> None:
        conn = HttpConnection(self.endpoint)
        rec = Recorder()
        try:
            for _ in range(self.config.warmup_requests):
                probe = f"warmup-{uuid.uuid4()}@contoso.example"
                await rec.send(
                    conn, b"GET", _filter_target(self.prefix, "userName", probe), None, OK_GET
                )
        finally:
            conn.close()

    async def create_groups(self) -> list[str]:
        """Create the groups of the Entra phase; returns notes about refused shapes."""
        notes: list[str] = []
        conn = HttpConnection(self.endpoint)
        rec = Recorder()
        try:
            for g in range(self.config.groups):
                entra_body: dict[str, Any] = {
                    "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
                    "externalId": f"{self.tag}-group-{g}",
                    "displayName": f"Bench Group {g} {self.tag}",
                    "meta": {"resourceType": "Group"},
                }
                response = await rec.send(
                    conn, b"POST", f"{self.prefix}/Groups", orjson.dumps(entra_body), OK_CREATE
                )
                if response is not None and response[0] != HTTPStatus.CREATED:
                    if g == 0:
                        notes.append(
                            f"Entra-shaped POST /Groups refused ({response[0]}); "
                            "groups created with the core schema only"
                        )
                    core_body = dict(entra_body, schemas=[GROUP_SCHEMA])
                    response = await rec.send(
                        conn,
                        b"POST",
                        f"{self.prefix}/Groups",
                        orjson.dumps(core_body),
                        OK_CREATE,
                    )
                if response is None or response[0] != HTTPStatus.CREATED:
                    status = "transport error" if response is None else str(response[0])
                    notes.append(f"group creation failed ({status}); entra phase has no groups")
                    break
                data = _json(response[1])
                if isinstance(data, dict) and isinstance(data.get("id"), str):
                    self.group_ids.append(data["id"])
        finally:
            conn.close()
        return notes


async def run_benchmark(
    endpoint: Endpoint,
    config: LoadConfig,
    probe: ServerProbe | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Seed the users, then run every phase of :data:`PHASE_NAMES` in order."""
    say = progress or (lambda _message: None)
    work = Workload(endpoint, config)
    report = RunReport(base_url=endpoint.base_url, users=0, connections=config.connections)
    await work.warm_up()
    if probe:
        report.rss_idle_bytes = probe.rss_bytes()
    count = config.phase_requests
    duration = config.duration_s

    async def timed(phase: Phase) -> PhaseResult:
        say(f"phase {phase.name}: up to {phase.max_ops} ops / {phase.max_duration_s:.0f} s")
        result = await run_phase(endpoint, phase, config.connections, probe)
        report.phases.append(result)
        say(
            f"phase {phase.name}: {result.requests} requests, {result.rps:.0f} req/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"{result.error_count} errors"
        )
        return result

    await timed(Phase("create", work.op_create, config.users, config.seed_duration_s))
    work.finish_seed()
    report.users = len(work.users)
    if not work.users:
        report.notes.append("no user could be created; later phases skipped")
        return report
    if report.users < config.users:
        report.notes.append(f"only {report.users} of {config.users} users were created")
    await timed(Phase("filter", work.op_filter, count, duration))
    await timed(Phase("get", work.op_get, count, duration))
    await timed(Phase("patch", work.op_patch, count, duration))
    await timed(Phase("list", work.op_list, count, duration))
    report.notes.extend(await work.create_groups())
    cycles = max(1, count // ENTRA_REQUESTS_PER_CYCLE)
    await timed(Phase("entra", work.op_entra_cycle, cycles, duration))
    report.users_stored = len(work.users) + work.entra_created
    if probe:
        report.rss_with_users_bytes = probe.rss_bytes()
    await timed(Phase("delete", work.op_delete, min(count, len(work.users)), duration))
    if probe:
        report.peak_rss_bytes = probe.peak_rss_bytes()
    return report


# --------------------------------------------------------------------------------------
# Event loop and CPU placement
# --------------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def pin_to_cpu(cpu: int, pid: int = 0) -> bool:
    """Pin a process (default: this one) to one CPU; False when that CPU is unavailable."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) <= cpu:
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def iter_phase_lines(report: RunReport) -> Iterator[str]:
    for p in report.phases:
        errors = ", ".join(f"{k}x{v}" for k, v in p.errors.items()) or "-"
        cpu = f"{p.server_cpu_pct:.0f}%" if p.server_cpu_pct is not None else "n/a"
        yield (
            f"{p.name:<7} {p.requests:>7} req {p.rps:>9.0f} req/s  p50 {p.p50_ms:>7.2f} ms  "
            f"p99 {p.p99_ms:>7.2f} ms  cpu {cpu:>5}  loadgen {p.loadgen_cpu_pct:3.0f}%  "
            f"errors {errors}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen", description="Run the SCIM load phases against a URL."
    )
    parser.add_argument("--base-url", required=True, help="SCIM base URL on loopback")
    parser.add_argument("--token", default=None, help="bearer token")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--requests", type=int, default=None, help="ops per phase (default: 5 x users)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="max seconds per phase")
    parser.add_argument("--server-pid", type=int, default=None, help="measure this process")
    parser.add_argument("--cpu", type=int, default=1, help="pin the load generator to this CPU")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    endpoint = Endpoint.from_url(args.base_url, args.token)
    config = LoadConfig(
        users=args.users,
        connections=args.connections,
        duration_s=args.duration,
        requests=args.requests,
    )
    probe = ServerProbe(args.server_pid) if args.server_pid else None
    report = run_async(
        run_benchmark(endpoint, config, probe, lambda m: print(m, file=sys.stderr, flush=True))
    )
    for line in iter_phase_lines(report):
        print(line)
    for note in report.notes:
        print(f"note: {note}")
    if args.json:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
