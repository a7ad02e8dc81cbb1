"""Scale runs: how filter, GET, pages, member changes and memory hold up as a tenant grows.

For each database and size, the command seeds a fresh database in bulk (``bench.seed``: users
as ``POST /Users`` would store them, a group with up to 100,000 members and an empty group),
starts ``printsync serve`` on CPU 0 as ``bench.run`` does, and runs these phases from CPU 1 with
``bench.loadgen``'s client, each over keep-alive connections in a closed loop:

- ``filter``: ``GET /Users?filter=userName eq "…"`` on random existing users;
- ``get``: ``GET /Users/{id}`` on random existing users;
- ``deep-pages``: ``GET /Users?startIndex=…&count=100`` at random ``startIndex`` anywhere in
  the table, before any walk (so it starts from no page marks);
- ``pages``: the same, walking the pages from ``startIndex=1``;
- ``member-add-empty`` / ``member-add-big``: ``PATCH /Groups/{id}`` adding one user (not yet a
  member) to the empty group or to the big one; each add is followed by an untimed PATCH that
  removes the user again, so the groups keep their size. Only the adds are timed.

The embedded effect worker drains the outbox between the member phases (each add and remove
records an effect), so one phase does not pay for the previous one's effects. The periodic
reconcile is held off (``--reconcile`` lets it run): seeded users have no print accounts, so the
first reconcile would repair every one of them beside the phases; the server runs with a week's
interval and the seed records the current interval's reconcile as done. It then prints
the figures per phase and size and the ratios the scale targets are stated in::

    python -m bench.scale --sizes 10000,100000,1000000 --databases sqlite --markdown scale.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import psycopg

from bench.loadgen import (
    OK_GET,
    OK_PATCH,
    PAGE_SIZE,
    PATCH_SCHEMA,
    Endpoint,
    HttpConnection,
    Op,
    Phase,
    PhaseResult,
    Recorder,
    ServerProbe,
    _proc_status_kib,
    phases_as_dicts,
    pin_to_cpu,
    run_async,
    run_phase,
)
from bench.run import (
    DEFAULT_POSTGRES_ADMIN_URL,
    LOOPBACK,
    NOISE_LIMIT_PCT,
    ServerHandle,
    TargetError,
    _cpu_model,
    _mib,
    _num,
    _table,
    child_env,
    free_port,
    pin_tree,
    postgres_database,
    printsync_command,
    start_server,
    stop_server,
    wait_ready,
)
from bench.seed import SeedError, SeedPlan, SeedResult, mark_reconciled, seed
from storage.database import parse_url

DATABASES = ("sqlite", "postgresql")
PHASES = ("filter", "get", "deep-pages", "pages", "member-add-empty", "member-add-big")
#: Users kept out of the big group so that the member phases add real new members.
OUTSIDERS = 1_000
#: The issue's bounds, checked in the summary table.
P99_RATIO_LIMIT = 1.5
PAGES_PER_SECOND_FLOOR = 250.0
MEMBER_ADD_RATIO_LIMIT = 2.0
RSS_LIMIT_BYTES = 110 * 2**20
WARMUP_REQUESTS = 300
EFFECTS_DRAIN_TIMEOUT_S = 300.0
#: The reconcile interval the server runs with while the periodic reconcile is held off.
HELD_RECONCILE_INTERVAL_S = 604_800


@dataclass(slots=True)
class ScaleConfig:
    """Command-line settings shared by every run."""

    sizes: list[int]
    databases: list[str]
    connections: int = 16
    duration_s: float = 10.0
    requests: int = 50_000
    group_members: int = 100_000
    postgres_admin_url: str = DEFAULT_POSTGRES_ADMIN_URL
    server_cpu: int | None = 0
    loadgen_cpu: int = 1
    startup_timeout_s: float = 120.0
    #: Let the periodic reconcile run at start-up (it repairs every seeded user).
    reconcile: bool = False
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


@dataclass(slots=True)
class SizeReport:
    """One database at one size: the seed, the phases, the server's memory."""

    database: str
    users: int
    group_members: int = 0
    seed_seconds: float | None = None
    phases: list[PhaseResult] = field(default_factory=list)
    #: The API process alone (``printsync serve``; the effect worker may be a child of it).
    rss_idle_bytes: int | None = None
    rss_after_bytes: int | None = None
    peak_rss_bytes: int | None = None
    #: The server's whole process tree, worker included.
    tree_rss_after_bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def phase(self, name: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return phases_as_dicts(asdict(self), self.phases)


def progress(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------


def member_patch(op: str, user_id: str) -> bytes:
    """Entra's PATCH of a group's membership: one user added or removed."""
    return orjson.dumps(
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": op, "path": "members", "value": [{"value": user_id}]}],
        }
    )


def filter_target(prefix: str, user_name: str) -> str:
    return f"{prefix}/Users?filter=" + quote(f'userName eq "{user_name}"', safe="")


def page_target(prefix: str, start_index: int) -> str:
    return f"{prefix}/Users?startIndex={start_index}&count={PAGE_SIZE}"


class ScaleLoad:
    """The phases' operations over one seeded tenant."""

    def __init__(self, prefix: str, seeded: SeedResult, rng: random.Random) -> None:
        if not seeded.sample:
            raise TargetError("the seed returned no users to query")
        self.prefix = prefix
        self.seeded = seeded
        self.rng = rng
        self.pages = max(1, math.ceil(seeded.users / PAGE_SIZE))
        #: The untimed removals that keep the groups' sizes; their errors become notes.
        self.undo = Recorder()

    async def op_filter(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        name, _ = self.seeded.sample[i % len(self.seeded.sample)]
        await rec.send(conn, b"GET", filter_target(self.prefix, name), None, OK_GET)

    async def op_get(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        _, user_id = self.seeded.sample[i % len(self.seeded.sample)]
        await rec.send(conn, b"GET", f"{self.prefix}/Users/{user_id}", None, OK_GET)

    async def op_pages(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        start = 1 + (i % self.pages) * PAGE_SIZE
        await rec.send(conn, b"GET", page_target(self.prefix, start), None, OK_GET)

    async def op_deep_page(self, conn: HttpConnection, rec: Recorder, i: int) -> None:
        start = self.rng.randint(1, max(1, self.seeded.users - PAGE_SIZE + 1))
        await rec.send(conn, b"GET", page_target(self.prefix, start), None, OK_GET)

    def member_op(self, group_id: str) -> Op:
        target = f"{self.prefix}/Groups/{group_id}"
        outsiders = self.seeded.outsiders

        async def op(conn: HttpConnection, rec: Recorder, i: int) -> None:
            _, user_id = outsiders[i % len(outsiders)]
            await rec.send(conn, b"PATCH", target, member_patch("add", user_id), OK_PATCH)
            await self.undo.send(conn, b"PATCH", target, member_patch("remove", user_id), OK_PATCH)

        return op

    async def warm_up(self, endpoint: Endpoint, requests: int) -> None:
        """Untimed reads, so that the first phase does not pay for cold caches."""
        conn = HttpConnection(endpoint)
        rec = Recorder()
        try:
            for i in range(requests):
                await (self.op_filter if i % 2 else self.op_get)(conn, rec, i)
        finally:
            conn.close()
        if rec.errors:
            raise TargetError(f"warm-up requests failed: {rec.errors}")


# --------------------------------------------------------------------------------------
# Database and server
# --------------------------------------------------------------------------------------


def pending_effects(database_url: str) -> int:
    """Effects not yet done or dead (read straight from the outbox)."""
    query = "SELECT count(*) FROM outbox WHERE state = 'pending'"
    url = parse_url(database_url)
    if url.dialect == "sqlite":
        with contextlib.closing(sqlite3.connect(f"file:{url.path}?mode=ro", uri=True)) as raw:
            return int(raw.execute(query).fetchone()[0])
    with psycopg.connect(url.asyncpg_dsn, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def wait_for_effects(database_url: str, timeout_s: float) -> tuple[float, int]:
    """Wait until the worker has applied every effect, or time is up: the seconds waited and
    the effects still pending."""
    start = time.monotonic()
    while (left := pending_effects(database_url)) and time.monotonic() - start < timeout_s:
        time.sleep(0.5)
    return time.monotonic() - start, left


@contextlib.contextmanager
def database(kind: str, config: ScaleConfig, workdir: Path) -> Iterator[str]:
    """A fresh database of ``kind``, dropped (or deleted with the work directory) afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'printsync.sqlite3'}"
        return
    with postgres_database(config.postgres_admin_url) as url:
        yield url


@contextlib.contextmanager
def serve(
    database_url: str, tenant_url: str, token: str, port: int, config: ScaleConfig, log: Path
) -> Iterator[ServerHandle]:
    """``printsync serve`` on an already seeded database, as ``bench.run`` starts it."""
    env = child_env(
        {
            "PRINTSYNC_DATABASE_URL": database_url,
            "PRINTSYNC_PUBLIC_URL": f"http://{LOOPBACK}:{port}",
            # One tenant at full speed: the per-tenant rate limit would measure itself.
            "PRINTSYNC_RATE_LIMIT_PER_SECOND": "0",
            **(
                {}
                if config.reconcile
                else {"PRINTSYNC_RECONCILE_INTERVAL_SECONDS": str(HELD_RECONCILE_INTERVAL_S)}
            ),
        }
    )
    command = [*printsync_command(), "serve", "--host", LOOPBACK, "--port", str(port)]
    process = start_server(command, env, log, config.server_cpu)
    prefix = urlsplit(tenant_url).path.rstrip("/")
    try:
        yield ServerHandle(process, Endpoint(LOOPBACK, port, prefix, token), log)
    finally:
        stop_server(process)


# --------------------------------------------------------------------------------------
# One size
# --------------------------------------------------------------------------------------


def plan_for(users: int, config: ScaleConfig) -> SeedPlan:
    """The big group takes up to ``group_members`` users but leaves outsiders to add."""
    outsiders = min(OUTSIDERS, max(1, users // 10))
    members = max(0, min(config.group_members, users - outsiders))
    return SeedPlan(
        users=users,
        group_members=members,
        sample=min(users, 10_000),
        outsiders=outsiders,
    )


def run_size(kind: str, users: int, config: ScaleConfig) -> SizeReport:
    """Seed one database, serve it, run the phases, stop."""
    label = f"{kind} {users:,}"
    report = SizeReport(database=kind, users=users)
    with tempfile.TemporaryDirectory(prefix=f"scale-{kind}-", dir=config.workdir) as tmp:
        workdir = Path(tmp)
        try:
            with database(kind, config, workdir) as url:
                port = free_port()
                plan = plan_for(users, config)
                progress(f"{label}: seeding ({plan.members:,} members in the big group)")
                seeded = seed(
                    url,
                    plan,
                    tenant="scale",
                    public_url=f"http://{LOOPBACK}:{port}",
                    progress=lambda m: progress(f"{label}: {m}"),
                )
                report.seed_seconds = seeded.seconds
                if not config.reconcile:
                    mark_reconciled(url, HELD_RECONCILE_INTERVAL_S)
                report.group_members = seeded.big_group_members
                progress(f"{label}: seeded in {seeded.seconds:.1f} s")
                log = workdir / "server.log"
                with serve(url, seeded.tenant_url, seeded.token, port, config, log) as handle:
                    run_async(wait_ready(handle, config.startup_timeout_s))
                    if config.server_cpu is not None:
                        pin_tree(handle.process.pid, config.server_cpu)
                    run_async(measure(handle, url, seeded, config, report, label))
                    if handle.process.poll() is not None:
                        report.notes.append("server exited during the run")
        except (
            TargetError,
            SeedError,
            OSError,
            RuntimeError,
            subprocess.SubprocessError,
            sqlite3.Error,
            psycopg.Error,
        ) as error:
            progress(f"{label}: failed: {error}")
            report.error = str(error)
    return report


def api_rss(pid: int) -> int:
    """Resident memory of the API process itself (VmRSS), without its children."""
    return _proc_status_kib(pid, "VmRSS") * 1024


async def measure(
    handle: ServerHandle,
    database_url: str,
    seeded: SeedResult,
    config: ScaleConfig,
    report: SizeReport,
    label: str,
) -> None:
    probe = ServerProbe(handle.process.pid)
    load = ScaleLoad(handle.endpoint.prefix, seeded, random.Random(seeded.users))
    await load.warm_up(handle.endpoint, WARMUP_REQUESTS)
    report.rss_idle_bytes = api_rss(probe.pid)
    phases: list[tuple[str, Op]] = [
        ("filter", load.op_filter),
        ("get", load.op_get),
        # Deep pages first: a walk leaves page marks behind that random pages would start from.
        ("deep-pages", load.op_deep_page),
        ("pages", load.op_pages),
        ("member-add-empty", load.member_op(seeded.empty_group_id)),
        ("member-add-big", load.member_op(seeded.big_group_id)),
    ]

    async def drain(before: str) -> None:
        waited, left = await asyncio.to_thread(
            wait_for_effects, database_url, EFFECTS_DRAIN_TIMEOUT_S
        )
        if left:
            report.notes.append(f"{left:,} effects still pending {before}")
        elif waited > 1:
            progress(f"{label}: waited {waited:.0f} s for the effect worker {before}")

    for name, op in phases:
        if name.startswith("member-add"):
            await drain(f"before {name}")
        phase = Phase(name, op, config.requests, config.duration_s)
        result = await run_phase(handle.endpoint, phase, config.connections, probe)
        report.phases.append(result)
        progress(
            f"{label}: {name}: {result.requests:,} requests, {result.rps:,.0f} req/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"{result.error_count} errors, other CPU {_num(result.other_cpu_pct, 0)}%"
        )
    await drain("before the memory reading")
    report.rss_after_bytes = api_rss(probe.pid)
    report.peak_rss_bytes = _proc_status_kib(probe.pid, "VmHWM") * 1024
    report.tree_rss_after_bytes = probe.rss_bytes()
    if load.undo.errors:
        report.notes.append(f"member removals failed: {load.undo.errors}")


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


def _judged(ratio: float | None, limit: float) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}x " + ("(met)" if ratio <= limit else "(not met)")


def render(reports: Sequence[SizeReport], config: ScaleConfig) -> str:
    """Markdown: the figures per phase and size, then the targets' ratios."""
    out = [
        "## Setup",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; CPU: {_cpu_model()}; "
        f"server on CPU {config.server_cpu}, load generator on CPU {config.loadgen_cpu}",
        f"- {config.connections} keep-alive connections; each phase up to "
        f"{config.requests:,} requests and {config.duration_s:g} s; pages of {PAGE_SIZE}",
        "",
        "## Phases",
        "",
    ]
    rows: list[list[str]] = []
    for report in reports:
        for result in report.phases:
            cpu = result.server_cpu_pct
            other = result.other_cpu_pct
            rows.append(
                [
                    report.database,
                    f"{report.users:,}",
                    result.name,
                    f"{result.requests:,}",
                    f"{result.error_count:,}",
                    _num(result.rps, 0),
                    _num(result.p50_ms),
                    _num(result.p99_ms),
                    _num(cpu, 0) + ("%" if cpu is not None else ""),
                    _num(result.cpu_ms_per_request, 3),
                    _num(other, 0) + ("%" if other is not None else ""),
                ]
            )
    headers = [
        "DB",
        "Users",
        "Phase",
        "Requests",
        "Errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "Server CPU",
        "CPU ms/req",
        "Other CPU",
    ]
    out += _table(headers, rows, left=3) if rows else ["(no results)"]

    summary = [_summary_row(r, _baseline(reports, r.database)) for r in reports if not r.error]
    if summary:
        out += [
            "",
            "## Against the scale targets",
            "",
            f"p99 ratios are against the smallest size of the same database (target <= "
            f"{P99_RATIO_LIMIT}x), with the ratio of server CPU per request, which other "
            "processes disturb less; pages/s target >= "
            f"{PAGES_PER_SECOND_FLOOR:.0f}, with the rate one core would serve at the server CPU "
            "per page measured (1000 / CPU ms per page); member add is "
            f"p99 (and p50) of adding to the big group over adding to the empty one (target <= "
            f"{MEMBER_ADD_RATIO_LIMIT}x); RSS is the API process's after all phases (target "
            "<= 110 MiB at 1,000,000 users).",
            "",
        ]
        out += _table(
            [
                "DB",
                "Users",
                "filter p99 ratio",
                "GET p99 ratio",
                "pages/s (walk)",
                "pages/s (deep)",
                "member add big/empty",
                "big group",
                "API RSS MiB",
                "seed s",
            ],
            summary,
        )
    memory = [
        [
            r.database,
            f"{r.users:,}",
            _mib(r.rss_idle_bytes),
            _mib(r.rss_after_bytes),
            _mib(r.peak_rss_bytes),
            _mib(r.tree_rss_after_bytes),
        ]
        for r in reports
        if not r.error
    ]
    if memory:
        out += [
            "",
            "## Server memory (MiB)",
            "",
            "RSS of the API process (idle after a warm-up, after all phases, and its peak), and of "
            "the whole server tree (API and effect worker) after all phases.",
            "",
        ]
        out += _table(
            ["DB", "Users", "API RSS idle", "API RSS after", "API peak", "Tree RSS after"], memory
        )
    notes = [f"- {r.database} {r.users:,}: {n}" for r in reports for n in r.notes]
    for report in reports:
        busiest = max((p.other_cpu_pct or 0.0 for p in report.phases), default=0.0)
        if report.database == "sqlite" and busiest > NOISE_LIMIT_PCT:
            notes.append(
                f"- {report.database} {report.users:,}: other processes used up to "
                f"{busiest:.0f}% of a core during a phase; measure again on a quiet machine"
            )
    notes += [
        f"- {r.database} {r.users:,}: not measured: {r.error.splitlines()[0] if r.error else ''}"
        for r in reports
        if r.error
    ]
    if notes:
        out += ["", "## Notes", "", *notes]
    return "\n".join(out) + "\n"


def _summary_row(report: SizeReport, base: SizeReport | None) -> list[str]:
    """One size against the targets; latency ratios are against ``base``."""

    def latency(name: str) -> str:
        """p99 ratio, judged, with the CPU-per-request ratio (steadier on a shared machine)."""
        found, reference = report.phase(name), base.phase(name) if base else None
        if found is None or reference is None:
            return "n/a"
        cpu = _ratio(found.cpu_ms_per_request, reference.cpu_ms_per_request)
        return _judged(_ratio(found.p99_ms, reference.p99_ms), P99_RATIO_LIMIT) + (
            f", CPU {cpu:.2f}x" if cpu is not None else ""
        )

    def pages_rate(found: PhaseResult | None) -> str:
        """Pages per second, judged, and what one core would serve at the CPU cost measured."""
        if found is None:
            return "n/a"
        capacity = 1000 / found.cpu_ms_per_request if found.cpu_ms_per_request else None
        return _floor(found.rps, PAGES_PER_SECOND_FLOOR) + (
            f", {capacity:,.0f} per core" if capacity is not None else ""
        )

    pages, deep = report.phase("pages"), report.phase("deep-pages")
    big, empty = report.phase("member-add-big"), report.phase("member-add-empty")
    member = _judged(
        _ratio(big.p99_ms, empty.p99_ms) if big and empty else None, MEMBER_ADD_RATIO_LIMIT
    )
    if big and empty and empty.p50_ms > 0:
        member += f", p50 {big.p50_ms / empty.p50_ms:.2f}x"
    rss = _mib(report.rss_after_bytes)
    if report.rss_after_bytes is not None:
        rss += " (met)" if report.rss_after_bytes <= RSS_LIMIT_BYTES else " (not met)"
    return [
        report.database,
        f"{report.users:,}",
        latency("filter"),
        latency("get"),
        pages_rate(pages),
        pages_rate(deep),
        member,
        f"{report.group_members:,}",
        rss,
        _num(report.seed_seconds, 0),
    ]


def _baseline(reports: Sequence[SizeReport], database: str) -> SizeReport | None:
    measured = [r for r in reports if r.database == database and not r.error and r.phases]
    return min(measured, key=lambda r: r.users) if measured else None


def _floor(value: float | None, floor: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} " + ("(met)" if value >= floor else "(not met)")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _sizes(value: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in value.split(",") if part.strip()})
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"sizes must be integers: {value}") from error
    if not sizes or sizes[0] < 10:
        raise argparse.ArgumentTypeError("sizes must be at least 10 users")
    return sizes


def _databases(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in DATABASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose databases from {', '.join(DATABASES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description="Seed 10,000 to 1,000,000 users and measure printsync at each size.",
    )
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--databases", type=_databases, default=["sqlite"])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="max seconds per phase")
    parser.add_argument("--requests", type=int, default=50_000, help="max requests per phase")
    parser.add_argument("--group-members", type=int, default=100_000)
    parser.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    parser.add_argument("--json", type=Path, default=None, help="write raw results as JSON")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES_ADMIN_URL)
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="let the periodic reconcile run at start-up (it repairs every seeded user)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where databases and logs go (default: /tmp)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = ScaleConfig(
        sizes=args.sizes,
        databases=args.databases,
        connections=args.connections,
        duration_s=args.duration,
        requests=args.requests,
        group_members=args.group_members,
        postgres_admin_url=args.postgres_admin_url,
        reconcile=args.reconcile,
    )
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        config.workdir = args.workdir
    if not pin_to_cpu(config.loadgen_cpu):
        progress("fewer than two CPUs available: server and load generator are not pinned")
        config.server_cpu = None
    reports = [run_size(kind, users, config) for kind in config.databases for users in config.sizes]
    text = render(reports, config)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        raw = [report.to_dict() for report in reports]
        args.json.write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    return 0 if all(not r.error for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
