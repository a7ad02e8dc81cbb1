"""The API's own cost per request, without HTTP: the ASGI app driven in this process.

No server, no sockets, no load generator: each request is one call of the ASGI app with a
prepared scope, on a fresh SQLite file, one at a time. What is left is the app itself
(middleware, routing, authentication, the handler and storage), so a change to one of them
shows as a change of microseconds per request. The figure is the process's CPU time per request
(``time.process_time``), which other processes on the machine disturb far less than the wall
clock; requests run in rounds and the best round is reported::

    python -m bench.inprocess [--requests 3000] [--rounds 5]

It prints CPU microseconds per request for ``POST /Users`` and ``GET /Users/{id}``.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def measure(database_url: str, requests: int, rounds: int) -> dict[str, list[float]]:
    settings = ApiSettings(rate_limit_per_second=0)
    app = create_app(settings, DatabaseSettings(database_url=database_url))
    db = await open_database(database_url, pool_size=1)
    try:
        _, token = await tenants.create(db, "bench")
    finally:
        await db.close()
    task, inbox = await lifespan(app)
    client = Client(app, "/scim/v2/bench", token)
    timings: dict[str, list[float]] = {"POST /Users": [], "GET /Users/{id}": []}
    try:
        for round_ in range(rounds):
            bodies = [user_body(index, f"r{round_}") for index in range(requests)]
            ids: list[str] = []
            started = time.process_time()
            for body in bodies:
                status, answer = await client.call("POST", "/Users", body)
                if status != 201:
                    raise RuntimeError(f"POST /Users answered {status}: {answer[:200]!r}")
                ids.append(orjson.loads(answer)["id"])
            timings["POST /Users"].append((time.process_time() - started) / requests * 1e6)
            started = time.process_time()
            for user_id in ids:
                status, answer = await client.call("GET", f"/Users/{user_id}")
                if status != 200:
                    raise RuntimeError(f"GET /Users/{{id}} answered {status}: {answer[:200]!r}")
            timings["GET /Users/{id}"].append((time.process_time() - started) / requests * 1e6)
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await task
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="printsync-inprocess-"))
    try:
        database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
        migrate.upgrade(database_url)
        timings = asyncio.run(measure(database_url, args.requests, args.rounds))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for phase, values in timings.items():
        rounds = " ".join(f"{value:.1f}" for value in values)
        best, median = min(values), statistics.median(values)
        print(f"{phase:<16} CPU us/req: best {best:7.1f}  median {median:7.1f}  ({rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
