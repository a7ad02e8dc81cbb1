"""The supervisor of `printsync serve`'s pipeline child, with a stand-in child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from printsync import pipeline_process
from printsync.pipeline_process import PipelineProcess

#: A child that reads its wake-up pipe until the parent closes it, like ``printsync pipeline``.
CHILD = [
    sys.executable,
    "-c",
    "import os, sys; fd = int(sys.argv[2]);\nwhile os.read(fd, 4096): pass",
]


class _Database:
    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []


async def _until(check: Callable[[], Any], patience: float = 10.0) -> Any:
    deadline = time.monotonic() + patience
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
    return found


def test_a_dead_child_is_replaced_even_when_a_start_fails_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline_process, "WATCH_INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(pipeline_process, "RESTART_INTERVAL_SECONDS", 0.05)
    real_popen = subprocess.Popen
    failures = [OSError(11, "Resource temporarily unavailable")]

    def flaky_popen(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_popen(*args, **kwargs)

    async def scenario() -> None:
        supervisor = PipelineProcess(CHILD)
        supervisor.start()
        supervisor.attach(_Database())  # type: ignore[arg-type]
        first = supervisor.pid
        assert first is not None
        monkeypatch.setattr(pipeline_process.subprocess, "Popen", flaky_popen)
        os.kill(first, signal.SIGKILL)
        second = await _until(lambda: supervisor.pid not in (None, first) and supervisor.pid)
        assert failures == []  # the failed start happened, and the watch went on
        supervisor.wake()  # a commit's wake-up reaches the new child without error
        supervisor.stop(timeout=5)
        assert supervisor.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)  # it exited when its pipe closed, and was reaped

    asyncio.run(scenario())
