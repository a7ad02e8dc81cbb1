"""Soak: many tenants at a steady request rate for a long time; errors, p99 and memory over time.

::

    python -m bench.soak --tenants 40 --rate 25 --seconds 600
    python -m bench.soak --tenants 40 --rate 25 --seconds 600 \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --broker-url redis://127.0.0.1:6379/13

The command starts ``printsync serve`` on a fresh database: a temporary SQLite file by default
(the embedded mode, whose process also applies the effects), or a new PostgreSQL database on the
server of ``--database-url``, dropped afterwards. With ``--broker-url`` the API only relays, and a
``printsync worker`` process applies the effects. It creates the tenants, then drives each one at
``--rate`` requests per second.

The load is open-loop: every request has a scheduled start, and its latency is measured from that
moment, so a server that falls behind shows it in the latency instead of slowing the load down.
Each tenant keeps ``--lanes`` users in flight, each going through an Entra-like life: the match
query, create, read, disable, enable with a new card number, delete. Users are deleted at the end
of their life, so the number of stored users stays flat and memory growth means a leak, not data.

Every ``--interval`` seconds a line shows the requests, errors, p50/p99/max latency and the
resident memory (RSS) of the API process (and of the worker processes, with a broker). The summary
compares the RSS at the end with the RSS after ``--warmup`` seconds and fits a slope. The exit
status is 1 when ``--max-errors`` or ``--max-rss-growth-mib`` is exceeded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench.effects import fresh_database
from bench.loadgen import Endpoint, HttpConnection, HttpProtocolError, ServerProbe, run_async
from bench.run import (
    LOOPBACK,
    ServerHandle,
    child_env,
    free_port,
    printsync_command,
    start_server,
    stop_server,
    wait_ready,
)
from storage import outbox, tenants
from storage.database import open_database
from storage.scim.schema import PATCH_OP, PRINTSYNC_USER, USER

MIB = 1024 * 1024
#: A request still unanswered after this long counts as a ``timeout`` error.
REQUEST_TIMEOUT_S = 30.0
#: Requests in one user's life (see :meth:`Lane.life`).
REQUESTS_PER_LIFE = 6


@dataclass(frozen=True, slots=True)
class SoakConfig:
    tenants: int = 40
    rate: float = 25.0  # requests per second and tenant
    seconds: float = 600.0
    interval: float = 10.0
    lanes: int = 4  # users in flight per tenant
    warmup: float = 10.0
    database_url: str | None = None
    broker_url: str | None = None

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.lanes < 1:
            raise ValueError("tenants and lanes must be at least 1")
        if self.rate <= 0 or self.seconds <= 0 or self.interval <= 0 or self.warmup < 0:
            raise ValueError("rate, seconds and interval must be positive, warmup not negative")


@dataclass(slots=True)
class Interval:
    """One reporting interval: requests that completed in it, and memory at its end."""

    end_s: float
    requests: int
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    api_rss_bytes: int
    worker_rss_bytes: int | None = None

    def line(self) -> str:
        errors = ", ".join(f"{key}x{count}" for key, count in sorted(self.errors.items())) or "0"
        worker = (
            f"  worker RSS {self.worker_rss_bytes / MIB:7.1f} MiB"
            if self.worker_rss_bytes is not None
            else ""
        )
        return (
            f"t={self.end_s:6.0f}s  {self.requests:>7} req  errors {errors:<12} "
            f"p50 {self.p50_ms:8.2f} ms  p99 {self.p99_ms:8.2f} ms  max {self.max_ms:8.2f} ms  "
            f"API RSS {self.api_rss_bytes / MIB:7.1f} MiB{worker}"
        )


@dataclass(slots=True)
class SoakReport:
    config: SoakConfig
    intervals: list[Interval] = field(default_factory=list)
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    pending_effects: int = 0  # effects not yet applied when the load stopped

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def _steady(self) -> list[Interval]:
        """Intervals that end after the warm-up (all of them if none does)."""
        steady = [item for item in self.intervals if item.end_s > self.config.warmup]
        return steady or list(self.intervals)

    @property
    def rss_growth_bytes(self) -> int:
        """API RSS at the end minus API RSS at the end of the warm-up."""
        steady = self._steady()
        return steady[-1].api_rss_bytes - steady[0].api_rss_bytes if steady else 0

    @property
    def rss_slope_mib_per_min(self) -> float:
        """Least-squares slope of the API RSS after the warm-up."""
        steady = self._steady()
        if len(steady) < 2:
            return 0.0
        xs = [item.end_s / 60 for item in steady]
        ys = [item.api_rss_bytes / MIB for item in steady]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        if spread == 0:
            return 0.0
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread

    @property
    def peak_rss_bytes(self) -> int:
        return max((item.api_rss_bytes for item in self.intervals), default=0)

    def summary(self) -> list[str]:
        cfg = self.config
        errors = ", ".join(f"{key}x{count}" for key, count in sorted(self.errors.items())) or "0"
        steady = self._steady()
        lines = [
            f"{cfg.tenants} tenants x {cfg.rate:g} req/s for {cfg.seconds:g} s: "
            f"{self.requests} requests ({self.requests / cfg.seconds:.0f} req/s), errors {errors}",
            f"latency p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, max {self.max_ms:.2f} ms",
        ]
        if steady:
            lines.append(
                f"API RSS after warm-up {steady[0].api_rss_bytes / MIB:.1f} MiB -> end "
                f"{steady[-1].api_rss_bytes / MIB:.1f} MiB ({self.rss_growth_bytes / MIB:+.1f} MiB,"
                f" slope {self.rss_slope_mib_per_min:+.2f} MiB/min), peak "
                f"{self.peak_rss_bytes / MIB:.1f} MiB"
            )
        lines.append(f"effects not yet applied at the end: {self.pending_effects}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "intervals": [asdict(item) for item in self.intervals],
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "rss_growth_bytes": self.rss_growth_bytes,
            "rss_slope_mib_per_min": self.rss_slope_mib_per_min,
            "peak_rss_bytes": self.peak_rss_bytes,
            "pending_effects": self.pending_effects,
        }


def percentile_ms(sorted_ns: Sequence[int], pct: float) -> float:
    if not sorted_ns:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1e6


class Bucket:
    """Latencies and errors of the requests that completed in one interval."""

    __slots__ = ("errors", "latencies_ns")

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.errors: dict[str, int] = {}

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


class Meter:
    """Where lanes record; the reporter swaps the bucket at each interval."""

    def __init__(self) -> None:
        self.bucket = Bucket()
        self.all_ns: list[int] = []
        self.errors: dict[str, int] = {}

    def swap(self) -> Bucket:
        done, self.bucket = self.bucket, Bucket()
        self.all_ns.extend(done.latencies_ns)
        for key, count in done.errors.items():
            self.errors[key] = self.errors.get(key, 0) + count
        return done


def _patch(*operations: dict[str, Any]) -> bytes:
    return orjson.dumps({"schemas": [PATCH_OP], "Operations": list(operations)})


class Lane:
    """One user at a time of one tenant, each request at its scheduled moment."""

    def __init__(
        self,
        endpoint: Endpoint,
        meter: Meter,
        *,
        start_ns: int,
        end_ns: int,
        first_slot_s: float,
        slot_s: float,
        tag: str,
    ) -> None:
        self._endpoint = endpoint
        self._meter = meter
        self._start_ns = start_ns
        self._end_ns = end_ns
        self._first = first_slot_s
        self._slot = slot_s
        self._tag = tag
        self._step = 0
        self._users = 0

    def _next_start(self) -> int | None:
        at = self._start_ns + int((self._first + self._step * self._slot) * 1e9)
        self._step += 1
        return at if at < self._end_ns else None

    async def run(self) -> None:
        conn = HttpConnection(self._endpoint)
        try:
            while await self.life(conn):
                self._users += 1
        finally:
            conn.close()

    async def _send(
        self, conn: HttpConnection, method: bytes, target: str, body: bytes | None, expect: int
    ) -> bytes | bool | None:
        """Wait for the next slot and send; the body when ``expect`` came back, None on an
        error, False when the run is over."""
        at = self._next_start()
        if at is None:
            return False
        delay = (at - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            status, payload = await asyncio.wait_for(
                conn.request(method, target, body), REQUEST_TIMEOUT_S
            )
        except TimeoutError:
            conn.close()
            self._meter.bucket.error("timeout")
            return None
        except (OSError, asyncio.IncompleteReadError, HttpProtocolError, ValueError) as error:
            self._meter.bucket.error(type(error).__name__)
            return None
        finally:
            self._meter.bucket.latencies_ns.append(time.perf_counter_ns() - at)
        if status != expect:
            self._meter.bucket.error(str(status))
            return None
        return payload

    async def life(self, conn: HttpConnection) -> bool:
        """Probe, create, read, disable, enable, delete one user; False when time is up."""
        prefix = self._endpoint.prefix
        name = f"soak-{self._tag}-{self._users}@example.com"
        probe = f"{prefix}/Users?filter={quote(f'userName eq {chr(34)}{name}{chr(34)}')}"
        if await self._send(conn, b"GET", probe, None, 200) is False:
            return False
        body = orjson.dumps(
            {
                "schemas": [USER, PRINTSYNC_USER],
                "userName": name,
                "active": True,
                "displayName": name.split("@")[0],
                "emails": [{"value": name, "type": "work", "primary": True}],
                PRINTSYNC_USER: {"cardNumber": f"{self._users % 1_000_000:06d}"},
            }
        )
        created = await self._send(conn, b"POST", f"{prefix}/Users", body, 201)
        if not isinstance(created, bytes):
            return created is None  # an error: next user; False: time is up
        target = f"{prefix}/Users/{orjson.loads(created)['id']}"
        steps: list[tuple[bytes, bytes | None, int]] = [
            (b"GET", None, 200),
            (b"PATCH", _patch({"op": "replace", "path": "active", "value": False}), 200),
            (
                b"PATCH",
                _patch(
                    {"op": "replace", "path": "active", "value": True},
                    {
                        "op": "replace",
                        "path": f"{PRINTSYNC_USER}:cardNumber",
                        "value": f"9{self._users % 100_000:05d}",
                    },
                ),
                200,
            ),
            (b"DELETE", None, 204),
        ]
        for method, step_body, expect in steps:
            if await self._send(conn, method, target, step_body, expect) is False:
                return False
        return True


@contextlib.contextmanager
def _printsync(
    config: SoakConfig, workdir: Path
) -> Iterator[tuple[ServerHandle, list[tuple[str, str]], ServerProbe | None, str]]:
    """A fresh database with the tenants, ``printsync serve`` on it (and ``printsync worker``
    with a broker); yields the API handle, the tenants, the worker probe and the database URL."""
    with fresh_database(config.database_url) as url:
        created = run_async(_create_tenants(url, config.tenants))
        port = free_port()
        extra = {
            "PRINTSYNC_DATABASE_URL": url,
            "PRINTSYNC_PUBLIC_URL": f"http://{LOOPBACK}:{port}",
            # Every user is disabled and deleted in turn: a load, not a scoping mistake.
            "PRINTSYNC_DEPROVISION_GUARD_WINDOW_SECONDS": "0",
        }
        if config.broker_url:
            extra["PRINTSYNC_BROKER_URL"] = config.broker_url
            extra["PRINTSYNC_QUEUE_NAME"] = f"soak-{uuid.uuid4().hex[:8]}"
        env = child_env(extra)
        cli = printsync_command()
        worker = None
        if config.broker_url:
            worker = start_server([*cli, "worker"], env, workdir / "worker.log", None)
        log_path = workdir / "serve.log"
        api = start_server(
            [*cli, "serve", "--host", LOOPBACK, "--port", str(port)], env, log_path, None
        )
        name, token = created[0]
        handle = ServerHandle(api, Endpoint(LOOPBACK, port, f"/scim/v2/{name}", token), log_path)
        try:
            run_async(wait_ready(handle, 60.0))
            yield handle, created, ServerProbe(worker.pid) if worker else None, url
        finally:
            stop_server(api)
            if worker is not None:
                stop_server(worker)


async def _create_tenants(url: str, count: int) -> list[tuple[str, str]]:
    db = await open_database(url, pool_size=1)
    try:
        created = []
        for index in range(count):
            tenant, token = await tenants.create(db, f"soak-{index}", connector="ledger")
            created.append((tenant.name, token))
        return created
    finally:
        await db.close()


async def _pending_effects(url: str) -> int:
    db = await open_database(url, pool_size=1)
    try:
        stats = await outbox.pending_stats(db)
    finally:
        await db.close()
    return sum(stats.pending_by_kind.values())


async def drive(
    config: SoakConfig,
    host: str,
    port: int,
    created: Sequence[tuple[str, str]],
    api: ServerProbe,
    worker: ServerProbe | None,
    say: Callable[[str], None],
) -> SoakReport:
    """Run the load against a started server and report every interval."""
    meter = Meter()
    report = SoakReport(config)
    start_ns = time.perf_counter_ns() + 200_000_000  # let every lane get going first
    end_ns = start_ns + int(config.seconds * 1e9)
    slot = config.lanes / config.rate  # a lane's requests are this far apart
    lanes = []
    for number, (name, token) in enumerate(created):
        endpoint = Endpoint(host, port, f"/scim/v2/{name}", token)
        for lane_no in range(config.lanes):
            # Spread the tenants' lanes over the slot, so that requests do not come in bursts.
            first = (lane_no + number / len(created)) / config.rate
            lanes.append(
                Lane(
                    endpoint,
                    meter,
                    start_ns=start_ns,
                    end_ns=end_ns,
                    first_slot_s=first,
                    slot_s=slot,
                    tag=f"{number}-{lane_no}",
                )
            )
    tasks = [asyncio.create_task(lane.run()) for lane in lanes]

    def close_interval(end_s: float) -> None:
        done = meter.swap()
        ordered = sorted(done.latencies_ns)
        item = Interval(
            end_s=end_s,
            requests=len(ordered),
            errors=dict(done.errors),
            p50_ms=percentile_ms(ordered, 50),
            p99_ms=percentile_ms(ordered, 99),
            max_ms=ordered[-1] / 1e6 if ordered else 0.0,
            api_rss_bytes=api.rss_bytes(),
            worker_rss_bytes=worker.rss_bytes() if worker is not None else None,
        )
        report.intervals.append(item)
        say(item.line())

    async def reporter() -> None:
        tick = 1
        while True:
            at = start_ns + int(tick * config.interval * 1e9)
            await asyncio.sleep(max(0.0, (at - time.perf_counter_ns()) / 1e9))
            close_interval(min(tick * config.interval, config.seconds))
            if at >= end_ns:
                return
            tick += 1

    watcher = asyncio.create_task(reporter())
    await asyncio.gather(*tasks)
    await watcher
    if meter.bucket.latencies_ns:  # requests scheduled before the end that finished after it
        say("(requests still running at the end:)")
        close_interval((time.perf_counter_ns() - start_ns) / 1e9)
    ordered = sorted(meter.all_ns)
    report.requests = len(ordered)
    report.errors = dict(meter.errors)
    report.p50_ms = percentile_ms(ordered, 50)
    report.p99_ms = percentile_ms(ordered, 99)
    report.max_ms = ordered[-1] / 1e6 if ordered else 0.0
    return report


def run(config: SoakConfig, say: Callable[[str], None] = print) -> SoakReport:
    """Start printsync, drive it for ``config.seconds``, stop it; the report."""
    with (
        tempfile.TemporaryDirectory(prefix="printsync-soak-") as folder,
        _printsync(config, Path(folder)) as (handle, created, worker, url),
    ):
        say(
            f"printsync serve (pid {handle.process.pid}) on port {handle.endpoint.port}: "
            f"{config.tenants} tenants x {config.rate:g} req/s for {config.seconds:g} s"
        )
        report = run_async(
            drive(
                config,
                handle.endpoint.host,
                handle.endpoint.port,
                created,
                ServerProbe(handle.process.pid),
                worker,
                say,
            )
        )
        report.pending_effects = run_async(_pending_effects(url))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second per tenant")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per report line")
    parser.add_argument("--lanes", type=int, default=4, help="users in flight per tenant")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before the RSS baseline is taken"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server to create the database on (default: SQLite)",
    )
    parser.add_argument(
        "--broker-url", default=None, help="Redis or RabbitMQ URL: also run `printsync worker`"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    parser.add_argument("--max-errors", type=int, default=None)
    parser.add_argument("--max-rss-growth-mib", type=float, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SoakConfig(
        tenants=args.tenants,
        rate=args.rate,
        seconds=args.seconds,
        interval=args.interval,
        lanes=args.lanes,
        warmup=args.warmup,
        database_url=args.database_url,
        broker_url=args.broker_url,
    )
    report = run(config, lambda line: print(line, flush=True))
    for line in report.summary():
        print(line)
    if args.json:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    failed = []
    if args.max_errors is not None and report.error_count > args.max_errors:
        failed.append(f"{report.error_count} errors (limit {args.max_errors})")
    growth = report.rss_growth_bytes / MIB
    if args.max_rss_growth_mib is not None and growth > args.max_rss_growth_mib:
        failed.append(f"API RSS grew {growth:.1f} MiB (limit {args.max_rss_growth_mib:g})")
    for reason in failed:
        print(f"FAILED: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
