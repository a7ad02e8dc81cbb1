"""Effects pipeline benchmark: effects per second and commit-to-effect latency, per broker.

For each broker (the embedded in-memory broker with an in-process worker; Redis with a real
``printsync worker`` process) on a fresh database with one ledger tenant, two phases run:

- ``burst``: N users are created as fast as storage commits them; throughput is N divided by the
  time from the first commit to the last effect done;
- ``paced``: users are created at a steady rate well below saturation, which shows the latency an
  effect sees in the common case.

Each created user records one ``account.sync`` effect in its commit, exactly as a SCIM POST does
(the HTTP edge is left out: ``bench.run`` measures it). Commits wake the relay as the API's do.
Latency is ``completed_at - created_at`` of each effect, from the outbox itself::

    python -m bench.effects --effects 2000 --rate 50 --seconds 10
    python -m bench.effects --brokers redis --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import sqlalchemy as sa

from storage import clock, migrate, outbox, resources, tenants, users
from storage.database import Database, open_database
from storage.scim.schema import PRINTSYNC_USER, USER
from workers.pipeline import Pipeline
from workers.settings import WorkerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE = "http://bench/scim/v2/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass(frozen=True, slots=True)
class Result:
    broker: str
    phase: str
    effects: int
    per_second: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def user_body(index: int, run: str) -> dict[str, object]:
    return {
        "schemas": [USER, PRINTSYNC_USER],
        "userName": f"user{index}-{run}@example.com",
        "displayName": f"User {index}",
        "active": True,
        "emails": [{"value": f"user{index}@example.com", "type": "work", "primary": True}],
        PRINTSYNC_USER: {"cardNumber": f"{100000 + index}"},
    }


@contextlib.contextmanager
def fresh_database(database_url: str | None) -> Iterator[str]:
    """A migrated, empty database: a temporary SQLite file, or a new PostgreSQL database on the
    server of ``database_url`` (dropped afterwards)."""
    if database_url is None or database_url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.sqlite3"
            migrate.upgrade(url)
            yield url
        return
    admin_url = sa.make_url(database_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"printsync_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def create_users(
    db: Database, tenant_id: int, count: int, run: str, rate: float | None, writers: int
) -> None:
    """Create ``count`` users: paced at ``rate`` per second, or as fast as ``writers``
    concurrent writers manage (on SQLite they take turns: its writes never suspend)."""
    started = time.perf_counter()
    if rate is not None:
        for index in range(count):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await resources.create(db, users.SPEC, tenant_id, user_body(index, run), base=BASE)
        return
    indexes = iter(range(count))

    async def writer() -> None:
        for index in indexes:
            await resources.create(db, users.SPEC, tenant_id, user_body(index, run), base=BASE)

    await asyncio.gather(*(writer() for _ in range(writers)))


async def wait_done(
    db: Database, tenant_id: int, count: int, patience: float
) -> list[outbox.Effect]:
    """The tenant's effects once ``count`` are done. Polls a cheap count of what is still
    pending (listing every effect on each poll would take the interpreter lock from the worker
    threads of this process and slow the pipeline being measured); latencies come from the
    outbox's own timestamps, so the polling interval does not change them."""
    deadline = time.monotonic() + patience
    done: list[outbox.Effect] = []
    while True:
        stats = await outbox.pending_stats(db)
        if not stats.pending_by_kind:
            found = await outbox.list_effects(db, tenant_id, limit=count + 10)
            done = [effect for effect in found if effect.state == "done"]
            if len(done) >= count:
                return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)} of {count} effects done after {patience} s")
        await asyncio.sleep(0.25)


async def phase(
    db: Database,
    broker: str,
    name: str,
    count: int,
    rate: float | None,
    patience: float,
    writers: int = 8,
) -> Result:
    tenant, _ = await tenants.create(db, f"{name}-{uuid.uuid4().hex[:6]}", connector="ledger")
    await create_users(db, tenant.id, count, uuid.uuid4().hex[:6], rate, writers)
    done = await wait_done(db, tenant.id, count, patience)
    latencies = [
        (clock.parse(e.completed_at) - clock.parse(e.created_at)).total_seconds() * 1000
        for e in done
        if e.completed_at is not None
    ]
    first = min(clock.parse(e.created_at) for e in done)
    last = max(clock.parse(e.completed_at) for e in done if e.completed_at is not None)
    span = max((last - first).total_seconds(), 1e-6)
    return Result(
        broker,
        name,
        len(done),
        len(done) / span,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
    )


def worker_env(
    database_url: str, settings: WorkerSettings, redis_url: str, processes: int
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRINTSYNC_")}
    env.update(
        {
            "PRINTSYNC_DATABASE_URL": database_url,
            "PRINTSYNC_BROKER_URL": redis_url,
            "PRINTSYNC_QUEUE_NAME": settings.queue_name,
            "PRINTSYNC_WORKER_PROCESSES": str(processes),
            "PRINTSYNC_WORKER_THREADS": str(settings.worker_threads),
            "PRINTSYNC_SWEEP_INTERVAL_SECONDS": str(settings.sweep_interval_seconds),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
    )
    return env


@contextlib.contextmanager
def redis_worker(
    database_url: str, settings: WorkerSettings, redis_url: str, processes: int, log: Path
) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "printsync", "worker"],
            cwd=REPO_ROOT,
            env=worker_env(database_url, settings, redis_url, processes),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*{settings.queue_name}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


async def run_broker(broker: str, args: argparse.Namespace) -> list[Result]:
    with fresh_database(args.database_url) as url:
        settings = WorkerSettings(
            broker_url=None if broker == "embedded" else args.redis_url,
            queue_name=f"bench-{uuid.uuid4().hex[:8]}",
            worker_threads=args.threads,
            embedded_worker_threads=args.threads,
            sweep_interval_seconds=1.0,
        )
        pipeline = Pipeline(settings, url, environ=os.environ, worker=broker == "embedded")
        db = await open_database(url, pool_size=8)
        pipeline.attach(db)
        context = (
            contextlib.nullcontext()
            if broker == "embedded"
            else redis_worker(
                url,
                settings,
                args.redis_url,
                args.processes,
                Path(tempfile.gettempdir()) / f"printsync-bench-worker-{os.getpid()}.log",
            )
        )
        try:
            with context:
                pipeline.start()
                await phase(db, broker, "warmup", 20, None, args.timeout)
                results = [
                    await phase(db, broker, "burst", args.effects, None, args.timeout),
                    await phase(
                        db, broker, "paced", int(args.rate * args.seconds), args.rate, args.timeout
                    ),
                ]
        finally:
            pipeline.stop()
            await db.close()
    return results


def table(results: list[Result]) -> str:
    lines = [
        f"{'broker':<10} {'phase':<6} {'effects':>8} {'effects/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
    ]
    for r in results:
        lines.append(
            f"{r.broker:<10} {r.phase:<6} {r.effects:>8} {r.per_second:>10.1f} "
            f"{r.p50_ms:>9.1f} {r.p99_ms:>9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.effects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--brokers", default="embedded,redis", help="comma-separated: embedded, redis"
    )
    parser.add_argument("--effects", type=int, default=1000, help="effects in the burst phase")
    parser.add_argument("--rate", type=float, default=50.0, help="effects/s in the paced phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the paced phase")
    parser.add_argument("--threads", type=int, default=2, help="worker threads per process")
    parser.add_argument("--processes", type=int, default=1, help="Redis worker processes")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server to create a scratch database on (default: a temporary SQLite file)",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    results: list[Result] = []
    for broker in [name.strip() for name in args.brokers.split(",") if name.strip()]:
        if broker not in ("embedded", "redis"):
            parser.error(f"unknown broker {broker!r}")
        results += asyncio.run(run_broker(broker, args))
    backend = (
        "sqlite" if args.database_url is None else sa.make_url(args.database_url).get_backend_name()
    )
    print(f"printsync effects pipeline, {backend}, ledger connector, {args.threads} threads")
    print(table(results))
    print(
        "p50/p99: commit-to-done latency of each effect; effects/s: effects / (last done -"
        " first commit)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
