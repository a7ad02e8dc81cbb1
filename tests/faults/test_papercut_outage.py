"""PaperCut answers 5xx, then stops answering at all, for a long while; then it recovers.

Every call fails as a transient error (tried again within the call for idempotent calls, then
the effect is retried with backoff), so effects keep waiting instead of going dead, and once
PaperCut answers again each one converges the account to the user's current state. Meanwhile
the API keeps accepting changes: nothing on the request path talks to PaperCut.

Calls that time out here never reach PaperCut (a dropped network path). A call that times out
but is applied later anyway could land after a newer one; see docs/reliability.md.
"""

from __future__ import annotations

import time

import pytest

from tests.fakes.papercut import FakePaperCutServer
from tests.faults.conftest import (
    OUTAGE_SECONDS,
    PrivateRedis,
    Probe,
    ScimLoad,
    assert_api_answered,
    assert_converged,
    fault_env,
    start_worker,
)
from tests.harness import Start, start_api

#: Longer than the test: a held call is never answered, and never applied.
UNANSWERED_SECONDS = 300.0


@pytest.mark.slow
def test_apply_papercut_failing_then_silent_retries_until_recovery_and_applies_once(
    private_redis: PrivateRedis,
    postgres_url: str,
    processes: Start,
    papercut_server: FakePaperCutServer,
) -> None:
    probe = Probe(postgres_url)
    refs = [probe.tenant("papercut", papercut=papercut_server), probe.tenant()]
    env = fault_env(
        postgres_url,
        PRINTSYNC_BROKER_URL=private_redis.url,
        PRINTSYNC_PAPERCUT_TIMEOUT_SECONDS="0.5",
    )
    worker = start_worker(processes, env)
    api, base = start_api(processes, env)

    with ScimLoad(base, refs, threads=1, pause=0.1) as load:
        load.wait_for_users(4)
        calls_before = sum(papercut_server.calls.values())
        papercut_server.set_outage(503)
        time.sleep(OUTAGE_SECONDS)
        refused_calls = sum(papercut_server.calls.values()) - calls_before
        papercut_server.set_outage(None)
        papercut_server.set_hang(UNANSWERED_SECONDS)  # timeouts
        time.sleep(max(2.0, OUTAGE_SECONDS / 2))
        papercut_server.set_hang(0)
        done_before = len([plan for plan in load.plans if plan.complete])
        load.wait_for_users(done_before + 4)

    assert_api_answered(load)
    probe.wait_settled(refs, worker, api)
    assert_converged(probe, load.plans, refs, papercut_server)
    retried = [effect for effect in probe.effects(refs[0].id) if effect.attempts > 0]
    assert retried, "effects were retried through the outage"
    assert refused_calls > len(retried)
    probe.close()
