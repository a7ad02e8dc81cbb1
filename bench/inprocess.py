"""The API's own cost per request, without HTTP: the ASGI app driven in this process.

No server, no sockets, no load generator: each request is one call of the ASGI app with a
prepared scope, on a fresh SQLite file, one at a time. What is left is the app itself
(middleware, routing, authentication, the handler and storage), so a change to one of them
shows as a change of microseconds per request. The figure is the process's CPU time per request
(``time.process_time``), which other processes on the machine disturb far less than the wall
clock; requests run in rounds and the best round is reported::

    python -m bench.inprocess [--requests 3000] [--rounds 5] [--database-url URL] \
        [--profile PHASE --profile-out FILE]

It prints CPU microseconds per request for ``POST /Users``, ``GET /Users/{id}``, Entra-shaped
``PATCH /Users/{id}`` and ``DELETE /Users/{id}``, and beside them the best round's wall-clock
microseconds (the CPU plus the waits on the database: on PostgreSQL, its round trips).
``--database-url`` runs on an existing, migrated database (PostgreSQL, say) instead of a fresh
SQLite file; each run creates a tenant of its own, so runs can share one database.
``--profile PHASE`` runs that phase of the last round under cProfile and writes the stats to
``--profile-out`` (``pstats`` format; ``python -m pstats FILE`` reads them). Each phase calls
``os.getpgrp()`` just before and just after its requests, which nothing else calls: under
``valgrind --tool=callgrind --dump-before=getpgrp``, whose instruction counts the machine's load
does not move, every phase's instructions land in a dump of their own (the 2nd, 4th, ...
files), with none of the start-up's. ``--until`` stops after a phase.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from api.app import create_app
from api.settings import ApiSettings
from bench.loadgen import entra_user_patches
from storage import migrate, tenants
from storage.database import open_database
from storage.settings import DatabaseSettings

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def user_body(index: int, tag: str) -> bytes:
    """Entra's create body for one user."""
    return orjson.dumps(
        {
            "schemas": [CORE, ENTERPRISE],
            "externalId": f"ext-{tag}-{index}",
            "userName": f"user{index:07d}.{tag}@contoso.example",
            "active": True,
            "displayName": f"User {index}",
            "name": {"givenName": "User", "familyName": str(index)},
            "emails": [
                {"primary": True, "type": "work", "value": f"u{index}.{tag}@contoso.example"}
            ],
            ENTERPRISE: {"department": "Printing"},
        }
    )


class Client:
    """Calls the ASGI app as a server would, and returns the status and the body."""

    def __init__(self, app: Any, base: str, token: str) -> None:
        self.app = app
        self.base = base
        self.auth = (b"authorization", f"Bearer {token}".encode())

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        headers = [(b"host", b"bench"), (b"accept", b"application/scim+json"), self.auth]
        if body:
            headers.append((b"content-type", b"application/scim+json"))
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": self.base + path,
            "raw_path": (self.base + path).encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    """Start the app's lifespan; the returned queue takes the shutdown message."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))
        if message["type"] == "lifespan.startup.complete":
            started.set()

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    return task, inbox


POST, GET, PATCH, DELETE = (
    "POST /Users",
    "GET /Users/{id}",
    "PATCH /Users/{id}",
    "DELETE /Users/{id}",
)
PHASES = (POST, GET, PATCH, DELETE)


async def measure(
    database_url: str,
    requests: int,
    rounds: int,
    profile: str | None = None,
    profile_out: Path | None = None,
    until: str = DELETE,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """CPU and wall-clock microseconds per request of each phase, one value per round."""
    settings = ApiSettings(rate_limit_per_second=0)
    app = create_app(settings, DatabaseSettings(database_url=database_url))
    db = await open_database(database_url, pool_size=1)
    try:
        # A tenant of its own, so that several runs can share one migrated database.
        tenant = f"bench-{secrets.token_hex(4)}"
        _, token = await tenants.create(db, tenant, connector="ledger")
    finally:
        await db.close()
    task, inbox = await lifespan(app)
    client = Client(app, f"/scim/v2/{tenant}", token)
    timings: dict[str, list[float]] = {phase: [] for phase in PHASES[: PHASES.index(until) + 1]}
    walls: dict[str, list[float]] = {phase: [] for phase in timings}
    patches = entra_user_patches("manager-id")
    profiler = cProfile.Profile(time.process_time)  # CPU time: other processes move it less

    async def phase(
        name: str, calls: Sequence[tuple[str, str, bytes]], ok: int, last: bool
    ) -> None:
        answers: list[tuple[int, bytes]] = []
        profiling = last and profile == name
        if profiling:
            profiler.enable()
        os.getpgrp()  # a phase mark for callgrind (see the module docstring)
        started, wall = time.process_time(), time.perf_counter()
        for method, path, body in calls:
            answers.append(await client.call(method, path, body))
        timings[name].append((time.process_time() - started) / len(calls) * 1e6)
        # Wall clock: what waiting on the database (PostgreSQL's round trips) adds to the CPU.
        walls[name].append((time.perf_counter() - wall) / len(calls) * 1e6)
        os.getpgrp()
        if profiling:
            profiler.disable()
        for status, answer in answers:
            if status not in (ok, 200):
                raise RuntimeError(f"{name} answered {status}: {answer[:200]!r}")
        results.extend(answers)

    try:
        for round_ in range(rounds):
            last = round_ == rounds - 1
            results: list[tuple[int, bytes]] = []
            bodies = [user_body(index, f"r{round_}") for index in range(requests)]
            await phase(POST, [("POST", "/Users", body) for body in bodies], 201, last)
            ids = [orjson.loads(answer)["id"] for _, answer in results]
            await phase(GET, [("GET", f"/Users/{i}", b"") for i in ids], 200, last)
            edits = [("PATCH", f"/Users/{i}", patches[n % len(patches)]) for n, i in enumerate(ids)]
            await phase(PATCH, edits, 200, last)
            await phase(DELETE, [("DELETE", f"/Users/{i}", b"") for i in ids], 204, last)
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await task
    if profile is not None and profile_out is not None:
        profiler.dump_stats(profile_out)
    return timings, walls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="a migrated database to use")
    parser.add_argument("--profile", choices=PHASES, default=None, help="phase to profile")
    parser.add_argument("--profile-out", type=Path, default=Path("inprocess.pstats"))
    parser.add_argument(
        "--until",
        choices=PHASES,
        default=DELETE,
        help="stop after this phase (under callgrind, the difference of two runs is one phase)",
    )
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="printsync-inprocess-"))
    try:
        database_url = args.database_url or f"sqlite:///{directory / 'bench.sqlite3'}"
        if args.database_url is None:
            migrate.upgrade(database_url)
        timings, walls = asyncio.run(
            measure(
                database_url,
                args.requests,
                args.rounds,
                args.profile,
                args.profile_out,
                args.until,
            )
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for phase, values in timings.items():
        rounds = " ".join(f"{value:.1f}" for value in values)
        best, median = min(values), statistics.median(values)
        wall = min(walls[phase])
        print(
            f"{phase:<16} CPU us/req: best {best:7.1f}  median {median:7.1f}  ({rounds})"
            f"  wall us/req: best {wall:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
