"""`printsync serve` runs its effects pipeline in a child process: it applies the effects of the
API's commits, follows the API out when the API is killed, and is started again by the API when
it dies on its own."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from storage import migrate
from tests.faults.conftest import (
    ACTIVE,
    REVOKED,
    Probe,
    ScimLoad,
    assert_api_answered,
    assert_converged,
    fault_env,
)
from tests.harness import Start, eventually, start_api


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.slow
def test_serve_pipeline_child_applies_effects_and_never_outlives_the_api(
    tmp_path: Path, processes: Start
) -> None:
    url = f"sqlite:///{tmp_path / 'printsync.sqlite3'}"
    migrate.upgrade(url)
    probe = Probe(url)
    ref = probe.tenant()
    env = fault_env(url)
    api, base = start_api(processes, env)
    children = eventually(api.children, timeout=10)
    assert len(children) == 1
    first = children[0]

    load = ScimLoad(base, [ref])
    plans = [load.run_one(ref, ACTIVE)]
    probe.wait_settled([ref], api)

    # The child dies on its own: the API starts another, with no request to prompt it, and the
    # new one applies what comes next.
    os.kill(first, signal.SIGKILL)
    second = eventually(lambda: [pid for pid in api.children() if pid != first], timeout=10)[0]
    assert not _alive(first)
    plans += [load.run_one(ref, REVOKED) for _ in range(3)]
    probe.wait_settled([ref], api)
    assert_api_answered(load)
    assert_converged(probe, plans, [ref])

    # The API is killed alone (not its group): the child sees its pipe close and exits.
    os.kill(api.pid, signal.SIGKILL)
    api.popen.wait(10)
    eventually(lambda: not _alive(second), timeout=20)
    probe.close()
