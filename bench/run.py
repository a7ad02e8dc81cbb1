"""The one benchmark command: printsync (SQLite, PostgreSQL), scim2-server and the ceiling.

Each target runs under uvicorn with one worker, pinned to CPU 0, while this process (the
load generator) is pinned to CPU 1. The targets run one after the other on the same
machine with the same phases, and the command prints a table of absolute figures and of
ratios against the ceiling and against scim2-server::

    python -m bench.run --users 10000 --connections 16 --duration 20 --markdown out.md

The host may be shared, and other processes only ever slow a run down: with ``--rounds N`` the
targets run N times, alternating (A B C, A B C, ...), and each phase of each target is reported
by its best round, with every round's rate in a table of its own. ``--tree LABEL=DIR`` adds a
target ``printsync-sqlite@LABEL`` that serves printsync from another source tree (a checkout of an
older commit, say) with this interpreter, so a before-and-after runs in one script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql

from bench import ceiling
from bench.loadgen import (
    PHASE_NAMES,
    Endpoint,
    HttpConnection,
    LoadConfig,
    PhaseResult,
    RunReport,
    ServerProbe,
    pin_to_cpu,
    run_async,
    run_benchmark,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
TARGETS = ("printsync-sqlite", "printsync-postgres", "scim2-server", "ceiling")
CEILING = "ceiling"
PEER = "scim2-server"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STOP_TIMEOUT_S = 15.0
#: Other processes' CPU (in % of one core) above which a target's figures are flagged.
NOISE_LIMIT_PCT = 25.0


class TargetError(Exception):
    """A target could not be prepared or started."""


@dataclass(slots=True)
class Settings:
    """Command-line settings shared by every target."""

    load: LoadConfig
    postgres_admin_url: str = DEFAULT_POSTGRES_ADMIN_URL
    server_cpu: int | None = 0
    loadgen_cpu: int = 1
    startup_timeout_s: float = 60.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    trees: dict[str, Path] = field(default_factory=dict)
    """Other source trees to serve printsync from, by label (targets ``printsync-sqlite@label``)."""


@dataclass(slots=True)
class ServerHandle:
    """A started server: its process, where it serves SCIM, and its log file."""

    process: subprocess.Popen[bytes]
    endpoint: Endpoint
    log_path: Path


@dataclass(slots=True)
class TargetOutcome:
    """The report of one target, or why it has none."""

    name: str
    report: RunReport | None = None
    error: str | None = None


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None, root: Path = REPO_ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.pop("WEB_CONCURRENCY", None)  # uvicorn would read it as a worker count
    env.update(extra or {})
    return env


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pin_tree(pid: int, cpu: int) -> None:
    """Pin every thread of a process tree to one CPU."""
    for member in ServerProbe(pid).pids():
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{member}/task"):
                pin_to_cpu(cpu, int(task))


def start_server(
    cmd: Sequence[str], env: dict[str, str], log_path: Path, cpu: int | None, root: Path = REPO_ROOT
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(cmd),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if cpu is not None:
        pin_to_cpu(cpu, process.pid)  # before the interpreter starts any thread
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, then any of its descendants still alive."""
    descendants = [pid for pid in ServerProbe(process.pid).pids() if pid != process.pid]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_command(cmd: Sequence[str], env: dict[str, str], what: str, root: Path = REPO_ROOT) -> str:
    """Run a short command; return its stdout or raise TargetError with its output."""
    result = subprocess.run(
        list(cmd),
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise TargetError(f"{what} failed with exit code {result.returncode}:\n{tail}")
    return result.stdout


def uvicorn_command(app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


async def wait_ready(handle: ServerHandle, timeout_s: float) -> None:
    """Poll ``GET /Users?count=1`` until it answers 200, the process dies or time is up."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    target = f"{handle.endpoint.prefix}/Users?count=1"
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise TargetError(
                f"server exited with code {handle.process.returncode}:\n"
                + _log_tail(handle.log_path)
            )
        conn = HttpConnection(handle.endpoint)
        try:
            status, _ = await conn.request(b"GET", target)
        except OSError as exc:
            last = type(exc).__name__
        else:
            if status == HTTPStatus.OK:
                return
            last = f"status {status}"
        finally:
            conn.close()
        await asyncio.sleep(0.1)
    raise TargetError(f"server not ready after {timeout_s:.0f} s ({last})")


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------

Launcher = Callable[[Settings, Path], contextlib.AbstractContextManager[ServerHandle]]


@contextlib.contextmanager
def launch_ceiling(settings: Settings, workdir: Path) -> Iterator[ServerHandle]:
    port = free_port()
    log_path = workdir / "ceiling.log"
    process = start_server(
        uvicorn_command("bench.ceiling:app", port), child_env(), log_path, settings.server_cpu
    )
    try:
        yield ServerHandle(process, Endpoint(LOOPBACK, port, ceiling.BASE_PATH), log_path)
    finally:
        stop_server(process)


@contextlib.contextmanager
def launch_peer(settings: Settings, workdir: Path) -> Iterator[ServerHandle]:
    # Imported here: scim2-server is a benchmark-only dependency (the "bench" extra).
    from bench import peer

    port = free_port()
    token = secrets.token_urlsafe(24)
    log_path = workdir / "scim2-server.log"
    process = start_server(
        uvicorn_command("bench.peer:app", port),
        child_env({peer.TOKEN_ENV: token}),
        log_path,
        settings.server_cpu,
    )
    try:
        yield ServerHandle(process, Endpoint(LOOPBACK, port, peer.BASE_PATH, token), log_path)
    finally:
        stop_server(process)


def printsync_command(root: Path = REPO_ROOT) -> list[str]:
    """The ``printsync`` console script of this interpreter's environment; for another source
    tree, this interpreter running that tree's CLI (its directory comes first on the path)."""
    if root != REPO_ROOT:
        return [sys.executable, "-c", "from printsync.cli import cli; cli()"]
    script = Path(sys.executable).with_name("printsync")
    if script.exists():
        return [str(script)]
    found = shutil.which("printsync")
    if found is None:
        raise TargetError("the printsync console script is not installed")
    return [found]


def parse_tenant(stdout: str) -> tuple[str, str]:
    """Read ``tenant_url`` and ``token`` from ``printsync tenant create --json`` output."""
    candidates = [stdout.strip(), *reversed(stdout.strip().splitlines())]
    for text in candidates:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and "tenant_url" in data and "token" in data:
            return str(data["tenant_url"]), str(data["token"])
    raise TargetError(f"no JSON object with tenant_url and token in: {stdout[-500:]!r}")


@contextlib.contextmanager
def launch_printsync(
    database_url: str, settings: Settings, workdir: Path, label: str, root: Path = REPO_ROOT
) -> Iterator[ServerHandle]:
    cli = printsync_command(root)
    port = free_port()
    env = child_env(
        {
            "PRINTSYNC_DATABASE_URL": database_url,
            "PRINTSYNC_PUBLIC_URL": f"http://{LOOPBACK}:{port}",
            # The load is one tenant at full speed: the per-tenant rate limit would measure
            # itself, not the server (Entra ID stays far below it in production).
            "PRINTSYNC_RATE_LIMIT_PER_SECOND": "0",
        },
        root,
    )
    run_command([*cli, "db", "upgrade"], env, "printsync db upgrade", root)
    tenant_url, token = parse_tenant(
        run_command(
            [*cli, "tenant", "create", "bench", "--json"], env, "printsync tenant create", root
        )
    )
    # Requests go to the server started here; the tenant URL gives the SCIM path.
    prefix = urlsplit(tenant_url).path.rstrip("/")
    log_path = workdir / f"{label}.log"
    process = start_server(
        [*cli, "serve", "--host", LOOPBACK, "--port", str(port)],
        env,
        log_path,
        settings.server_cpu,
        root,
    )
    try:
        yield ServerHandle(process, Endpoint(LOOPBACK, port, prefix, token), log_path)
    finally:
        stop_server(process)


@contextlib.contextmanager
def launch_printsync_sqlite(settings: Settings, workdir: Path) -> Iterator[ServerHandle]:
    database = workdir / "printsync.sqlite3"
    with launch_printsync(f"sqlite:///{database}", settings, workdir, "printsync-sqlite") as h:
        yield h


def launch_printsync_tree(label: str) -> Launcher:
    """printsync on SQLite served from the source tree labelled ``label``."""

    @contextlib.contextmanager
    def launch(settings: Settings, workdir: Path) -> Iterator[ServerHandle]:
        root = settings.trees[label]
        url = f"sqlite:///{workdir / 'printsync.sqlite3'}"
        with launch_printsync(url, settings, workdir, f"{TREE_PREFIX}{label}", root) as handle:
            yield handle

    return launch


TREE_PREFIX = "printsync-sqlite@"


def _database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def _postgres_execute(admin_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """Create a fresh database for one run and drop it afterwards."""
    name = f"printsync_bench_{secrets.token_hex(4)}"
    try:
        _postgres_execute(admin_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise TargetError(f"cannot create PostgreSQL database {name}: {exc}") from exc
    try:
        yield _database_url(admin_url, name)
    finally:
        _postgres_execute(
            admin_url,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        )


@contextlib.contextmanager
def launch_printsync_postgres(settings: Settings, workdir: Path) -> Iterator[ServerHandle]:
    with (
        postgres_database(settings.postgres_admin_url) as url,
        launch_printsync(url, settings, workdir, "printsync-postgres") as handle,
    ):
        yield handle


LAUNCHERS: dict[str, Launcher] = {
    "printsync-sqlite": launch_printsync_sqlite,
    "printsync-postgres": launch_printsync_postgres,
    PEER: launch_peer,
    CEILING: launch_ceiling,
}


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def bench_target(name: str, settings: Settings) -> TargetOutcome:
    """Start one target, run every phase against it, stop it."""
    progress(f"target {name}: starting")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-", dir=settings.workdir) as tmp:
        try:
            launcher = (
                launch_printsync_tree(name.removeprefix(TREE_PREFIX))
                if name.startswith(TREE_PREFIX)
                else LAUNCHERS[name]
            )
            with launcher(settings, Path(tmp)) as handle:
                run_async(wait_ready(handle, settings.startup_timeout_s))
                if settings.server_cpu is not None:
                    pin_tree(handle.process.pid, settings.server_cpu)
                probe = ServerProbe(handle.process.pid)
                progress(f"target {name}: serving {handle.endpoint.base_url}")
                report = run_async(
                    run_benchmark(
                        handle.endpoint,
                        settings.load,
                        probe,
                        lambda m: progress(f"target {name}: {m}"),
                    )
                )
                if handle.process.poll() is not None:
                    report.notes.append(
                        f"server exited during the run: {_log_tail(handle.log_path, 5)}"
                    )
        except (
            TargetError,
            OSError,
            RuntimeError,
            subprocess.SubprocessError,
            psycopg.Error,
        ) as exc:
            progress(f"target {name}: failed: {exc}")
            return TargetOutcome(name, error=str(exc))
    return TargetOutcome(name, report=report)


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> list[str]:
    """A markdown pipe table, padded to line up; the first ``left`` columns are text."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths))
        + "|"
    )
    return [line(headers), rule, *(line(r) for r in rows)]


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or reference == 0:
        return "n/a"
    ratio = value / reference
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def _phases(outcome: TargetOutcome) -> dict[str, PhaseResult]:
    return {p.name: p for p in outcome.report.phases} if outcome.report else {}


def render(outcomes: Sequence[TargetOutcome], settings: Settings, pinned: bool) -> str:
    """Markdown tables of absolute figures, ratios, memory, errors and notes."""
    load = settings.load
    versions = {pkg: _version(pkg) for pkg in ("uvicorn", "fastapi", "scim2-server", "printsync")}
    out = [
        "## Setup",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; CPU: {_cpu_model()}; "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items()),
        (
            f"- {load.users:,} users seeded by POST; {load.connections} keep-alive connections; "
            f"each phase up to {load.phase_requests:,} operations and {load.duration_s:g} s"
        ),
        "- One uvicorn worker per target on CPU "
        + (
            f"{settings.server_cpu}, load generator (uvloop: {_version('uvloop')}) "
            f"on CPU {settings.loadgen_cpu}"
            if pinned
            else "(not pinned: fewer than two CPUs available)"
        ),
        "",
        "## Throughput and latency",
        "",
    ]
    rows: list[list[str]] = []
    for outcome in outcomes:
        for name in PHASE_NAMES:
            result = _phases(outcome).get(name)
            if result is None:
                continue
            rows.append(
                [
                    outcome.name,
                    name,
                    f"{result.requests:,}",
                    f"{result.error_count:,}",
                    _num(result.rps, 0),
                    _num(result.p50_ms),
                    _num(result.p99_ms),
                    _num(result.server_cpu_pct, 0)
                    + ("%" if result.server_cpu_pct is not None else ""),
                    _num(result.cpu_ms_per_request, 3),
                    _num(result.loadgen_cpu_pct, 0) + "%",
                    _num(result.other_cpu_pct, 0)
                    + ("%" if result.other_cpu_pct is not None else ""),
                ]
            )
    headers = [
        "Target",
        "Phase",
        "Requests",
        "Errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "Server CPU",
        "CPU ms/req",
        "Loadgen CPU",
        "Other CPU",
    ]
    out += _table(headers, rows) if rows else ["(no results)"]
    out += [
        "",
        (
            "Server CPU is the target's process tree and Other CPU every other process of the "
            "machine (PostgreSQL for printsync-postgres, and anything else running), both in % of "
            "one core over the phase; CPU ms/req is server CPU time per request; Loadgen CPU is "
            "the load generator's own process."
        ),
    ]

    by_name = {o.name: _phases(o) for o in outcomes}
    ceiling_phases, peer_phases = by_name.get(CEILING, {}), by_name.get(PEER, {})
    ratio_rows: list[list[str]] = []
    for outcome in outcomes:
        if outcome.name == CEILING:
            continue
        for name, result in _phases(outcome).items():
            top, ref = ceiling_phases.get(name), peer_phases.get(name)
            ratio_rows.append(
                [
                    outcome.name,
                    name,
                    _ratio(result.rps, top.rps if top else None),
                    _ratio(result.rps, ref.rps if ref else None) if outcome.name != PEER else "-",
                    _ratio(result.p99_ms, ref.p99_ms if ref else None)
                    if outcome.name != PEER
                    else "-",
                    _ratio(result.cpu_ms_per_request, ref.cpu_ms_per_request if ref else None)
                    if outcome.name != PEER
                    else "-",
                ]
            )
    if ratio_rows:
        out += [
            "",
            "## Ratios",
            "",
            ("req/s ratios above 1 are faster; p99 and CPU-per-request ratios below 1 are better."),
            "",
        ]
        out += _table(
            [
                "Target",
                "Phase",
                "req/s vs ceiling",
                "req/s vs scim2-server",
                "p99 vs scim2-server",
                "CPU/req vs scim2-server",
            ],
            ratio_rows,
        )

    mem_rows = [
        [
            o.name,
            "-" if o.name == CEILING else f"{o.report.users_stored:,}",
            _mib(o.report.rss_idle_bytes),
            _mib(o.report.rss_with_users_bytes),
            _mib(o.report.peak_rss_bytes),
        ]
        for o in outcomes
        if o.report
    ]
    if mem_rows:
        out += [
            "",
            "## Server memory (MiB)",
            "",
            (
                "RSS with users is measured after the entra phase, before the deletes; "
                "peak is VmHWM at the end."
            ),
            "",
        ]
        out += _table(
            ["Target", "Users stored", "RSS idle", "RSS with users", "Peak RSS"], mem_rows, left=1
        )

    details = [
        f"- {o.name} / {p.name}: " + ", ".join(f"{k} x{v:,}" for k, v in p.errors.items())
        for o in outcomes
        for p in (o.report.phases if o.report else [])
        if p.errors
    ]
    notes = [f"- {o.name}: {n}" for o in outcomes if o.report for n in o.report.notes]
    notes += [f"- {o.name}: not measured: {_last_line(o.error)}" for o in outcomes if o.error]
    for outcome in outcomes:
        busiest = max((p.other_cpu_pct or 0.0 for p in _phases(outcome).values()), default=0.0)
        if outcome.name != "printsync-postgres" and busiest > NOISE_LIMIT_PCT:
            notes.append(
                f"- {outcome.name}: other processes used up to {busiest:.0f}% of a core during "
                "a phase; its figures are disturbed, measure again on a quiet machine"
            )
    if details:
        out += ["", "## Errors by status", "", *details]
    if notes:
        out += ["", "## Notes", "", *(n.replace("\n", " ") for n in notes)]
    return "\n".join(out) + "\n"


def _last_line(text: str) -> str:
    """The first line and the last non-empty line of a multi-line error, joined."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{lines[0]} ... {lines[-1]}"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _targets(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in TARGETS and not name.startswith(TREE_PREFIX)]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark printsync against scim2-server and a bare FastAPI ceiling.",
    )
    parser.add_argument("--users", type=int, default=10_000, help="users seeded by POST")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--duration", type=float, default=20.0, help="max seconds per phase")
    parser.add_argument(
        "--requests", type=int, default=None, help="max operations per phase (default: 5 x --users)"
    )
    parser.add_argument(
        "--targets",
        type=_targets,
        default=list(TARGETS),
        help="comma-separated subset of " + ",".join(TARGETS),
    )
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    parser.add_argument("--json", type=Path, default=None, help="write raw results as JSON")
    parser.add_argument(
        "--postgres-admin-url",
        default=DEFAULT_POSTGRES_ADMIN_URL,
        help="where to create and drop the per-run PostgreSQL database",
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the targets this many times, alternating; each phase reports its best round",
    )
    parser.add_argument(
        "--tree",
        type=_tree,
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help=f"add target {TREE_PREFIX}LABEL: printsync on SQLite from the source tree DIR",
    )
    return parser


def _tree(value: str) -> tuple[str, Path]:
    label, _, directory = value.partition("=")
    root = Path(directory).resolve()
    if not label or not (root / "printsync" / "cli.py").is_file():
        raise argparse.ArgumentTypeError(
            f"expected LABEL=DIR with a printsync tree in DIR: {value}"
        )
    return label, root


def best_of(rounds: Sequence[TargetOutcome]) -> TargetOutcome:
    """One target's rounds as one outcome: each phase from the round that served it fastest
    (other processes only ever slow a round down), the memory of the first round that has a
    report."""
    reports = [o.report for o in rounds if o.report is not None]
    if not reports:
        return rounds[0]
    best: dict[str, PhaseResult] = {}
    for report in reports:
        for result in report.phases:
            if result.name not in best or result.rps > best[result.name].rps:
                best[result.name] = result
    first = reports[0]
    merged = RunReport(
        first.base_url,
        first.users,
        first.connections,
        phases=[best[name] for name in PHASE_NAMES if name in best],
        users_stored=first.users_stored,
        rss_idle_bytes=first.rss_idle_bytes,
        rss_with_users_bytes=first.rss_with_users_bytes,
        peak_rss_bytes=max((r.peak_rss_bytes or 0 for r in reports), default=0) or None,
        notes=list(dict.fromkeys(n for r in reports for n in r.notes)),
    )
    errors = [o.error for o in rounds if o.error]
    if errors:
        merged.notes.append(f"{len(errors)} of {len(rounds)} rounds failed: {errors[0]}")
    return TargetOutcome(rounds[0].name, report=merged)


def render_rounds(by_target: dict[str, list[TargetOutcome]]) -> str:
    """Every round's req/s per target and phase, and the best."""
    count = max(len(rounds) for rounds in by_target.values())
    rows: list[list[str]] = []
    for name, rounds in by_target.items():
        for phase in PHASE_NAMES:
            rates = [(o.report.phase(phase) if o.report else None) for o in rounds]
            if not any(rates):
                continue
            figures = [_num(r.rps, 0) if r else "n/a" for r in rates]
            best = max(r.rps for r in rates if r)
            rows.append([name, phase, *figures, _num(best, 0)])
    headers = ["Target", "Phase", *(f"round {i + 1} req/s" for i in range(count)), "best"]
    lines = [
        "",
        "## Rounds",
        "",
        f"{count} rounds, the targets alternating in each; the tables above quote each phase's "
        "best round.",
        "",
        *_table(headers, rows),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings(
        load=LoadConfig(
            users=args.users,
            connections=args.connections,
            duration_s=args.duration,
            requests=args.requests,
        ),
        postgres_admin_url=args.postgres_admin_url,
        startup_timeout_s=args.startup_timeout,
        trees=dict(args.tree),
    )
    targets: list[str] = list(args.targets)
    for label in settings.trees:
        if f"{TREE_PREFIX}{label}" not in targets:
            targets.insert(0, f"{TREE_PREFIX}{label}")
    unknown = [
        name
        for name in targets
        if name.startswith(TREE_PREFIX) and name.removeprefix(TREE_PREFIX) not in settings.trees
    ]
    if unknown:
        build_parser().error(f"no --tree for target(s) {', '.join(unknown)}")
    pinned = pin_to_cpu(settings.loadgen_cpu)
    if not pinned:
        progress("fewer than two CPUs available: server and load generator are not pinned")
        settings.server_cpu = None
    by_target: dict[str, list[TargetOutcome]] = {name: [] for name in targets}
    for round_ in range(max(1, args.rounds)):
        if args.rounds > 1:
            progress(f"round {round_ + 1} of {args.rounds}")
        for name in targets:
            by_target[name].append(bench_target(name, settings))
    outcomes = [best_of(rounds) for rounds in by_target.values()]
    text = render(outcomes, settings, pinned)
    if args.rounds > 1:
        text += render_rounds(by_target)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        raw: list[dict[str, Any]] = [
            {
                "target": o.name,
                "error": o.error,
                "report": o.report.to_dict() if o.report else None,
                "rounds": [r.report.to_dict() if r.report else None for r in by_target[o.name]],
            }
            for o in outcomes
        ]
        args.json.write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    return 0 if all(o.report for rounds in by_target.values() for o in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
