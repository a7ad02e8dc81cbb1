"""The API process dies between committing changes and handing their effects to the broker.

The broker is frozen (SIGSTOP: connections are accepted, nothing is answered), so the API's relay
claims the first effect and hangs sending it, while later commits are never claimed at all. The
API itself keeps answering, because no request waits for the broker. Then the API is SIGKILLed.
The effects are in the outbox, committed with their changes: a worker's sweeper sends them once
their lease has run out, and the command the dead relay had half-written to the frozen broker,
executed when it thaws, is a duplicate the actors skip or converge through.
"""

from __future__ import annotations

import time

import pytest

from storage import outbox
from tests.fakes.papercut import FakePaperCutServer
from tests.faults.conftest import (
    ACTIVE,
    DELETED,
    REVOKED,
    PrivateRedis,
    Probe,
    ScimLoad,
    assert_api_answered,
    assert_converged,
    fault_env,
    start_worker,
)
from tests.harness import Start, eventually, start_api


@pytest.mark.slow
def test_commit_api_killed_before_dispatch_worker_applies_each_change_once(
    private_redis: PrivateRedis,
    postgres_url: str,
    processes: Start,
    papercut_server: FakePaperCutServer,
) -> None:
    probe = Probe(postgres_url)
    refs = [probe.tenant(), probe.tenant("papercut", papercut=papercut_server)]
    env = fault_env(postgres_url, PRINTSYNC_BROKER_URL=private_redis.url)
    api, base = start_api(processes, env)
    private_redis.pause()

    load = ScimLoad(base, refs)
    started = time.monotonic()
    plans = [load.run_one(ref, fate) for ref in refs for fate in (ACTIVE, REVOKED, DELETED)]
    assert time.monotonic() - started < 10  # no request waited for the frozen broker
    assert_api_answered(load)

    def stuck() -> list[outbox.Effect]:
        effects = [effect for ref in refs for effect in probe.effects(ref.id)]
        return effects if any(effect.claimed_until for effect in effects) else []

    committed = eventually(stuck, timeout=10)
    api.kill()
    assert len(committed) == 2 * len(plans)  # two changes of each user, one effect each
    assert all(
        effect.state == outbox.PENDING and effect.dispatched_at is None for effect in committed
    )
    assert [effect.id for effect in committed if effect.claimed_until]  # claimed, never sent

    private_redis.resume()
    worker = start_worker(processes, env)
    probe.wait_settled(refs, worker)
    assert_converged(probe, plans, refs, papercut_server)
    probe.close()
