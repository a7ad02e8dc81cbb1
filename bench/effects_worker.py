"""The worker's side of the effects pipeline alone: one thread applying ledger effects.

``setup`` creates a SQLite database under ``DIR`` with one ledger tenant and ``--effects`` users
(each user's commit records one ``account.sync`` effect, as a SCIM POST does) and claims the
effects as the relay does, with a long lease; ``run`` applies them one after another on one
thread through ``Effects.run`` (what each Dramatiq worker thread does, without the broker) and
prints effects per second and CPU microseconds per effect::

    python -m bench.effects_worker setup /tmp/w --effects 1000
    python -m bench.effects_worker run /tmp/w [--profile]
    python -m bench.effects_worker once --effects 300 [--database-url postgresql://...]

``once`` does both in one process on a fresh database: a temporary SQLite file, or a scratch
database on the PostgreSQL server of ``--database-url`` (dropped afterwards).

``run`` changes the database (the effects are done afterwards): copy ``DIR`` first to run
again. Under callgrind, the difference between two sizes divided by the difference of their
effects is the instruction count of one effect, free of start-up and of the machine's load::

    valgrind --tool=callgrind python -m bench.effects_worker run /tmp/w100
    valgrind --tool=callgrind python -m bench.effects_worker run /tmp/w400
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from bench.effects import BASE, fresh_database, user_body
from storage import migrate, outbox, resources, tenants, users
from storage.database import open_database
from workers.effects import Effects
from workers.settings import WorkerSettings

LEASE_SECONDS = 10 * 365 * 86400.0  # the claim covers every attempt: no lease write


def _url(folder: Path) -> str:
    return f"sqlite:///{folder / 'effects.sqlite3'}"


async def _setup(url: str, count: int) -> list[list[object]]:
    db = await open_database(url, pool_size=2)
    try:
        tenant, _ = await tenants.create(db, "bench", connector="ledger")
        for index in range(count):
            await resources.create(db, users.SPEC, tenant.id, user_body(index, "w"), base=BASE)
        claimed: list[list[object]] = []
        while batch := await outbox.claim_due(db, limit=500, lease_seconds=LEASE_SECONDS):
            claimed += [[effect.id, effect.kind] for effect in batch]
        return claimed
    finally:
        await db.close()


def setup(folder: Path, count: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(_url(folder))
    claimed = asyncio.run(_setup(_url(folder), count))
    (folder / "effects.json").write_text(json.dumps(claimed))
    return len(claimed)


def run(folder: Path, *, profile: bool = False) -> tuple[int, float, float]:
    """Apply the claimed effects; (effects, effects per second, CPU microseconds per effect)."""
    claimed = json.loads((folder / "effects.json").read_text())
    return apply(_url(folder), claimed, profile=profile)


def once(
    count: int, database_url: str | None, *, profile: bool = False
) -> tuple[int, float, float]:
    """Setup and run on a fresh database (see :func:`bench.effects.fresh_database`)."""
    with fresh_database(database_url) as url:
        return apply(url, asyncio.run(_setup(url, count)), profile=profile)


def apply(url: str, claimed: list[list[Any]], *, profile: bool) -> tuple[int, float, float]:
    effects = Effects.from_settings(WorkerSettings(broker_url=None), url, environ={})
    profiler = cProfile.Profile(time.process_time) if profile else None
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for effect_id, kind in claimed:
            effects.run(effect_id, kind=kind)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        effects.close()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    count = max(len(claimed), 1)
    return len(claimed), count / max(wall, 1e-9), cpu / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.effects_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["setup", "run", "once"])
    parser.add_argument("folder", type=Path, nargs="?", help="for setup and run")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server, for once")
    parser.add_argument("--effects", type=int, default=1000, help="users (effects) for setup")
    parser.add_argument("--profile", action="store_true", help="cProfile (CPU time) of run")
    args = parser.parse_args(argv)
    if args.command == "once":
        count, per_second, cpu_us = once(args.effects, args.database_url, profile=args.profile)
    elif args.folder is None:
        parser.error(f"{args.command} needs a folder")
    elif args.command == "setup":
        print(f"{setup(args.folder, args.effects)} effects claimed in {args.folder}")
        return 0
    else:
        count, per_second, cpu_us = run(args.folder, profile=args.profile)
    print(f"{count} effects: {per_second:.0f}/s, {cpu_us:.0f} us CPU per effect (one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
