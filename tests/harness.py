"""What tests run: storage work on a database, ``printsync`` commands (through the CLI entry point
or as real processes), the app served over HTTP from a thread, and polling until something holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from click.testing import CliRunner, Result

from storage.database import Database, open_database
from tests.fakes.smtp import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def run(database_url: str, work: Callable[[Database], Awaitable[T]], *, pool_size: int = 2) -> T:
    """Open the database, await ``work`` on it, close it: storage calls from a test's thread."""

    async def main() -> T:
        db = await open_database(database_url, pool_size=pool_size)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


@contextlib.contextmanager
def sync_engine(database_url: str) -> Iterator[sa.Engine]:
    """A blocking SQLAlchemy engine on the database (psycopg for PostgreSQL), disposed after."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def scalar(database_url: str, sql: str) -> Any:
    """The single value ``sql`` selects."""
    with sync_engine(database_url) as engine, engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def eventually(
    check: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = describe() if describe is not None else repr(value)
            raise AssertionError(f"not reached within {timeout} s: {detail}")
        time.sleep(interval)


def clean_environ() -> dict[str, str]:
    """This process's environment without printsync's settings (``PRINTSYNC_*``) and the
    Prometheus multiprocess directory: what a child process starts from that must see only the
    settings its test gives it."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PRINTSYNC_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }


def python(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path = ROOT,
    timeout: float = 60,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a process of its own, run to its end, its output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def printsync(database_url: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """``printsync ARGS`` through its entry point, in this process, on ``database_url``."""
    from printsync.cli import cli

    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    return CliRunner().invoke(cli, args)


# The app served over HTTP ------------------------------------------------------------------------


@contextlib.contextmanager
def serving(app: Any, port: int, *, timeout: float = 10, **config: Any) -> Iterator[None]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` from a thread until the block ends.

    ``log_config=None`` leaves the process's logging configuration alone for other tests;
    ``config`` adds to or overrides uvicorn's options (``log_level``, ``access_log``...).
    """
    options: dict[str, Any] = {"log_config": None, "log_level": "warning", "lifespan": "on"}
    options.update(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive(), "server stopped while starting"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


# printsync processes ----------------------------------------------------------------------------


@dataclass
class Process:
    """A ``printsync`` command in a process group of its own."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal_group(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, number)

    def kill(self) -> None:
        """SIGKILL the whole group, as a lost machine or an OOM kill would."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(8)
        self.signal_group(signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def children(self) -> list[int]:
        """Child processes, oldest first."""
        found: list[tuple[int, int]] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[1]) == self.pid:
                found.append((int(fields[19]), int(entry.name)))  # starttime, pid
        return [pid for _, pid in sorted(found)]

    def kill_worker_process(self) -> int:
        """SIGKILL the Dramatiq worker process of ``printsync worker`` (its first child: the
        sweeper is forked only once the workers are up), then wait for the command to shut
        down its other processes and exit, as it does when a worker dies. Returns the pid."""
        children = eventually(self.children, timeout=10)
        os.kill(children[0], signal.SIGKILL)
        try:
            self.popen.wait(20)
        finally:
            self.signal_group(signal.SIGKILL)
        return children[0]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


Start = Callable[[list[str], dict[str, str]], Process]


def launch(args: list[str], env: dict[str, str], *, log: Path, cwd: Path = ROOT) -> Process:
    """``python -m printsync ARGS`` in a process group of its own, its output in ``log``; the
    caller stops it (:meth:`Process.stop`)."""
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            [sys.executable, "-m", "printsync", *args],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(popen, log)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Start]:
    """Starts ``python -m printsync ARGS`` with an environment; stops them all afterwards."""
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str]) -> Process:
        process = launch(args, env, log=tmp_path / f"printsync-{len(started)}-{args[0]}.log")
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def start_api(start: Start, env: dict[str, str]) -> tuple[Process, str]:
    """``printsync serve`` on a free port; returns it with its base URL once it answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(["serve"], {**env, "PRINTSYNC_PORT": str(port), "PRINTSYNC_PUBLIC_URL": base})

    def up() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"printsync serve exited:\n{process.output()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(up, timeout=30, interval=0.1, describe=process.output)
    return process, base


def scim_client(base: str, tenant: str, token: str, *, timeout: float = 10) -> httpx.Client:
    """An HTTP client under one tenant's SCIM base URL, with its token."""
    return httpx.Client(
        base_url=f"{base}/scim/v2/{tenant}",
        timeout=timeout,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
