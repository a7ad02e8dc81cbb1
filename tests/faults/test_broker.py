"""The broker goes away while Entra keeps provisioning.

The API never talks to the broker on the request path (the outbox row is committed with the
change), so it keeps answering. The relays fail to send, release their claims and try again; a
restarted Redis without persistence has lost every queued message, and the sweeper sends those
effects again once their lease runs out.
"""

from __future__ import annotations

import time

import pytest

from storage import outbox
from tests.fakes.papercut import FakePaperCutServer
from tests.faults.conftest import (
    OUTAGE_SECONDS,
    SWEEP_SECONDS,
    PrivateRedis,
    Probe,
    ScimLoad,
    TenantRef,
    assert_api_answered,
    assert_converged,
    fault_env,
    start_worker,
)
from tests.harness import Start, eventually, start_api


def backlog(probe: Probe, refs: list[TenantRef], at_least: int) -> list[outbox.Effect]:
    """Effects sent to the broker and not yet applied, once there are ``at_least`` of them (more
    than the worker prefetches, so some wait in Redis)."""
    found = [
        effect
        for ref in refs
        for effect in probe.effects(ref.id, outbox.PENDING)
        if effect.dispatched_at is not None
    ]
    return found if len(found) >= at_least else []


@pytest.mark.slow
def test_provision_broker_down_api_keeps_answering_and_applies_each_change_once(
    private_redis: PrivateRedis,
    postgres_url: str,
    processes: Start,
    papercut_server: FakePaperCutServer,
) -> None:
    probe = Probe(postgres_url)
    refs = [probe.tenant(), probe.tenant("papercut", papercut=papercut_server)]
    env = fault_env(postgres_url, PRINTSYNC_BROKER_URL=private_redis.url)
    worker = start_worker(processes, env)
    api, base = start_api(processes, env)

    papercut_server.set_hang(0.3)  # slow effects: a backlog builds up in Redis
    with ScimLoad(base, refs) as load:
        queued = eventually(lambda: backlog(probe, refs, 16), timeout=30)
        private_redis.kill()  # the queued messages are lost with it
        papercut_server.set_hang(0)
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        during = load.answers_between(down, time.monotonic())
        created_while_down = [plan for plan in load.plans if plan.complete]
        private_redis.start()
        load.wait_for_users(len(created_while_down) + 6)

    assert len(during) >= 10, "SCIM requests kept arriving while the broker was down"
    assert {answer.status for answer in during} <= {200, 201, 204}
    assert_api_answered(load)
    probe.wait_settled(refs, worker, api)
    assert_converged(probe, load.plans, refs, papercut_server)
    assert {effect.id for effect in queued} <= {
        effect.id for ref in refs for effect in probe.effects(ref.id, outbox.DONE)
    }
    assert worker.popen.poll() is None, worker.output()
    assert api.popen.poll() is None, api.output()
    # While the broker was down the API's relay tried once per sweep, not once per commit.
    failed_passes = api.log.read_text().count("relay_send_failed")
    assert 0 < failed_passes <= OUTAGE_SECONDS / SWEEP_SECONDS + 10
    probe.close()
