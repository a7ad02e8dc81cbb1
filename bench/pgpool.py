"""printsync's PostgreSQL pool against asyncpg's own, on the transactions the API runs.

Three pools lend connections to 16 concurrent tasks on one fresh database:

- ``printsync``: ``storage.database.pool.PostgresPool``, which the API uses;
- ``asyncpg``: ``asyncpg.create_pool`` as configured by default (``reset=None``: every release
  runs the connection's reset query, a round trip);
- ``asyncpg-noreset``: ``asyncpg.create_pool`` with a ``reset`` that does nothing (asyncpg still
  rolls back a transaction left open).

Each task runs, in a loop, one read (``SELECT`` outside a transaction, as ``db.reader()`` does)
and one write (a transaction with one ``INSERT``, as ``db.transaction()`` does) through
``storage.database.postgres`` semantics: acquire, work, release. The pools run in alternating
rounds and each is reported by its best round: operations per second and this process's CPU
time per operation (the pool's own cost; PostgreSQL's CPU is not counted)::

    python -m bench.pgpool [--operations 20000] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from bench.run import DEFAULT_POSTGRES_ADMIN_URL, postgres_database
from storage.database.pool import PostgresPool

Acquire = Callable[[], AbstractAsyncContextManager[Any]]


async def _noop_reset(_: Any) -> None:
    return None


async def _open(kind: str, url: str, size: int) -> tuple[Acquire, Callable[[], Awaitable[None]]]:
    if kind == "printsync":
        pool = PostgresPool(lambda: asyncpg.connect(url), size)
        await pool.start()
        return pool.acquire, pool.close
    reset = _noop_reset if kind == "asyncpg-noreset" else None
    own = await asyncpg.create_pool(url, min_size=1, max_size=size, reset=reset)
    return own.acquire, own.close


async def _round(kind: str, url: str, operations: int, concurrency: int) -> tuple[float, float]:
    acquire, close = await _open(kind, url, concurrency)
    per_task = operations // (2 * concurrency)

    async def work(task: int) -> None:
        for n in range(per_task):
            async with acquire() as conn:
                await conn.fetchrow("SELECT $1::int", n)
            async with acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO pool_bench (task, n) VALUES ($1, $2)", task, n)

    try:
        await asyncio.gather(*(work(task) for task in range(concurrency)))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(work(task) for task in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await close()
    done = per_task * 2 * concurrency
    return done / wall, cpu / done * 1e6


async def measure(url: str, operations: int, rounds: int, concurrency: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE UNLOGGED TABLE pool_bench (task int, n int)")
    finally:
        await conn.close()
    kinds = ("printsync", "asyncpg", "asyncpg-noreset")
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind in kinds:
            results[kind].append(await _round(kind, url, operations, concurrency))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES_ADMIN_URL)
    args = parser.parse_args(argv)
    with postgres_database(args.postgres_admin_url) as url:
        results = asyncio.run(measure(url, args.operations, args.rounds, args.concurrency))
    print("| pool | best ops/s | best client CPU us/op | rounds (ops/s) |")
    print("|---|---:|---:|---|")
    for kind, rounds in results.items():
        best_rate = max(rate for rate, _ in rounds)
        best_cpu = min(cpu for _, cpu in rounds)
        listed = ", ".join(f"{rate:,.0f}" for rate, _ in rounds)
        print(f"| {kind} | {best_rate:,.0f} | {best_cpu:.1f} | {listed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
