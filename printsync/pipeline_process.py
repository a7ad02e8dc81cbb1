"""The effects pipeline of ``printsync serve``, run as a child process of the API.

The API process serves HTTP on one event loop; the relay and (in the embedded mode) the Dramatiq
worker run in a child process started here: ``printsync pipeline --wake-fd N``, which validates
the same settings from the same environment and runs :func:`run_child`. Kept apart, the two
never compete for one interpreter lock, the operating system can run them on two cores, and the
child runs at a lower scheduling priority (``PRINTSYNC_PIPELINE_NICE``), so under a burst of
requests the API answers first and the effects follow (they are committed in the outbox already,
nothing is lost by deferring them).

The two meet in the database; the only other link is a pipe:

- after a commit that recorded effects the API writes one byte to it (non-blocking, so a full
  pipe means the child is already due to look; at most one write every 2 ms) and the child's
  relay makes a pass;
- when the API process ends, however it ends, the pipe closes and the child stops: a killed API
  leaves no orphan behind.

If the child dies on its own, the API starts a new one within a second (at most one start a
second); the new relay's first pass sends whatever was left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING

import structlog

from storage.database import Database
from storage.settings import DatabaseSettings
from workers.settings import WorkerSettings

if TYPE_CHECKING:
    from workers.pipeline import Pipeline

_log = structlog.get_logger(__name__)

#: Seconds between restarts of a child that keeps dying.
RESTART_INTERVAL_SECONDS = 1.0
#: How often the API looks whether the child is still running.
WATCH_INTERVAL_SECONDS = 1.0
#: Shortest time between two wake-up writes.
WAKE_INTERVAL_SECONDS = 0.002


class PipelineProcess:
    """Starts, wakes, supervises and stops the ``printsync pipeline`` child."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        self._command = list(command or [sys.executable, "-m", "printsync", "pipeline"])
        self._process: subprocess.Popen[bytes] | None = None
        self._wake_fd: int | None = None
        self._next_restart = 0.0
        self._next_write = 0.0
        self._deferred = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [*self._command, "--wake-fd", str(read_fd)], pass_fds=(read_fd,)
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        os.set_blocking(write_fd, False)
        self._wake_fd = write_fd
        _log.info("pipeline_process_started", pid=self._process.pid)

    def attach(self, db: Database) -> None:
        """Wake the child after each commit of ``db`` that recorded effects, and look after it
        every second (create_app's ``on_start`` hook, run on the event loop)."""
        db.listeners.append(self.wake)
        asyncio.get_running_loop().call_later(WATCH_INTERVAL_SECONDS, self._watch)

    def _watch(self) -> None:
        """Start a new child if the last one died, even while no commit wakes it: retries and
        scheduled effects are due without any request."""
        if self._process is None:
            return  # stopped
        try:
            self._restart_if_dead()
        finally:
            asyncio.get_running_loop().call_later(WATCH_INTERVAL_SECONDS, self._watch)

    def wake(self) -> None:
        """Ask the child's relay for a pass.

        Wake-ups are coalesced: at most one write per ``WAKE_INTERVAL_SECONDS`` (each write can
        switch the core to the child), the ones in between folded into one written at the end
        of the interval, so no commit waits longer than that for its wake-up.
        """
        if self._deferred:
            return
        now = time.monotonic()
        wait = self._next_write - now
        if wait <= 0:
            self._write(now)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: write at once
            self._write(now)
            return
        self._deferred = True
        loop.call_later(wait, self._write_deferred)

    def _write_deferred(self) -> None:
        self._deferred = False
        self._write(time.monotonic())

    def _write(self, now: float) -> None:
        self._next_write = now + WAKE_INTERVAL_SECONDS
        fd = self._wake_fd
        if fd is None:
            return
        try:
            os.write(fd, b"\x01")
        except BlockingIOError:
            pass  # the pipe is full: the child has plenty of wake-ups to read already
        except OSError:
            self._restart_if_dead()

    def _restart_if_dead(self) -> None:
        process = self._process
        if process is None or process.poll() is None:
            return
        now = time.monotonic()
        if now < self._next_restart:
            return
        self._next_restart = now + RESTART_INTERVAL_SECONDS
        _log.warning("pipeline_process_exited", pid=process.pid, returncode=process.returncode)
        self._close_pipe()
        try:
            self.start()
        except Exception:  # no process now: the watch tries again in a second
            _log.exception("pipeline_process_start_failed")

    def _close_pipe(self) -> None:
        if self._wake_fd is not None:
            os.close(self._wake_fd)
            self._wake_fd = None

    def stop(self, timeout: float = 15.0) -> None:
        """Close the pipe (the child finishes what it runs and exits), then wait for it."""
        self._close_pipe()
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The child ----------------------------------------------------------------------------------


def run_child(
    settings: WorkerSettings,
    database: DatabaseSettings,
    environ: Mapping[str, str],
    wake_fd: int | None,
) -> None:
    """Run the pipeline until SIGINT, SIGTERM or, with ``wake_fd``, the end of that pipe (the
    API process is gone); ``environ`` holds the variables tenants' connectors name."""
    from workers.pipeline import Pipeline

    pipeline = Pipeline(
        settings,
        database.database_url,
        environ=environ,
        busy_timeout_ms=database.database_busy_timeout_ms,
    )
    if settings.pipeline_nice:
        os.nice(settings.pipeline_nice)
    stop = threading.Event()

    def finish(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    pipeline.start()
    if wake_fd is not None:
        watch_parent(wake_fd, pipeline, stop)
    try:
        while not stop.wait(3600):
            pass
    finally:
        pipeline.stop()


def watch_parent(fd: int, pipeline: Pipeline, stop: threading.Event) -> threading.Thread:
    """Read the wake-up pipe of ``printsync serve``: each byte asks the relay for a pass; the end
    of the pipe (the API process is gone) stops this process."""

    def run() -> None:
        try:
            while os.read(fd, 4096):
                pipeline.relay.wake()
        except OSError:
            pass
        finally:
            stop.set()

    thread = threading.Thread(target=run, name="printsync-parent", daemon=True)
    thread.start()
    return thread
