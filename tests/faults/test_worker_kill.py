"""A worker process is SIGKILLed while it is halfway through an effect.

The effect's message dies unacknowledged with the process, and part of the effect has reached
PaperCut. Once the effect's lease runs out a relay sends it again, and the next worker converges
from what PaperCut holds now: it finds the account it had created and finishes it instead of
creating a second one, and it finishes a revocation whose first step was already done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from storage.scim.schema import PATCH_OP
from tests.builders import patch_body, print_user, replace
from tests.fakes.papercut import FakePaperCutServer
from tests.faults.conftest import (
    PrivateRedis,
    Probe,
    TenantRef,
    fault_env,
    scim_client,
    start_worker,
)
from tests.harness import Start, eventually, start_api

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: Long enough that a held PaperCut call never completes during the test.
HELD_SECONDS = 300.0


def add_member(group_id: str, user_id: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    }


class Switchboard:
    """Counts the accounts the fake PaperCut really creates, and holds calls on request."""

    def __init__(self, server: FakePaperCutServer) -> None:
        self.server = server
        self.created: Counter[str] = Counter()
        self.release()

    def _count(self, params: tuple[Any, ...]) -> None:
        if params and params[0] not in self.server.users:  # the call will succeed
            self.created[params[0]] += 1

    def hold_after(self, method: str, match: Callable[[tuple[Any, ...]], bool]) -> None:
        """Let the next matching call to ``method`` through, then hold every later call (for
        longer than the test lasts): the effect is caught between two of its steps."""
        previous = self.server.before.get(method)

        def hook(params: tuple[Any, ...]) -> None:
            if previous is not None:
                previous(params)
            if match(params):
                self.server.set_hang(HELD_SECONDS)

        self.server.before[method] = hook

    def release(self) -> None:
        """Stop holding calls (held ones stay held until the server stops, and then fail)."""
        self.server.before.clear()
        self.server.before["api.addNewInternalUser"] = self._count
        self.server.set_hang(0)


@pytest.mark.slow
def test_apply_worker_sigkilled_mid_effect_completes_each_effect_once(
    private_redis: PrivateRedis,
    postgres_url: str,
    processes: Start,
    papercut_server: FakePaperCutServer,
) -> None:
    switchboard = Switchboard(papercut_server)
    probe = Probe(postgres_url)
    ref: TenantRef = probe.tenant("papercut", papercut=papercut_server)
    env = fault_env(postgres_url, PRINTSYNC_BROKER_URL=private_redis.url)
    worker = start_worker(processes, env)
    api, base = start_api(processes, env)

    def replace_killed_worker() -> None:
        """SIGKILL the worker caught halfway, stop holding PaperCut's calls, start a new worker
        and wait until it has applied every effect."""
        nonlocal worker
        worker.kill_worker_process()
        switchboard.release()
        worker = start_worker(processes, env)
        probe.wait_settled([ref], worker, api)

    with scim_client(base, ref) as client:
        alice = client.post("/Users", json=print_user("alice@example.com", "1001")).json()["id"]
        group = client.post(
            "/Groups",
            json={"schemas": [GROUP], "displayName": "Staff", "members": [{"value": alice}]},
        ).json()["id"]
        probe.wait_settled([ref], worker)
        assert papercut_server.user_groups("alice") == {"Staff"}

        # 1. Killed between creating the account and setting its properties and groups.
        updates = papercut_server.calls["api.setUserProperties"]
        switchboard.hold_after("api.addNewInternalUser", lambda params: True)
        bob = client.post("/Users", json=print_user("bob@example.com", "2002")).json()["id"]
        assert client.patch(f"/Groups/{group}", json=add_member(group, bob)).status_code in (
            200,
            204,
        )
        eventually(lambda: papercut_server.calls["api.setUserProperties"] > updates)
        with papercut_server.lock:
            halfway = dict(papercut_server.users["bob"])
        assert halfway["office"] == ""  # created, not yet updated
        replace_killed_worker()

        bob_account = dict(papercut_server.users["bob"])
        assert (
            bob_account["office"],
            bob_account["primary-card-number"],
            bob_account["disabled-print"],
        ) == ("Berlin", "2002", "false")
        assert papercut_server.user_groups("bob") == {"Staff"}
        assert switchboard.created == {"alice": 1, "bob": 1}

        # 2. Killed between blocking printing and removing the group memberships.
        reads = papercut_server.calls["api.getUserGroups"]
        switchboard.hold_after(
            "api.setUserProperties",
            # The last property call of a revocation (printing was blocked in the first).
            lambda params: params[0] == "alice" and ["card-pin", ""] in params[1],
        )
        assert (
            client.patch(f"/Users/{alice}", json=patch_body(replace("active", False))).status_code
            == 200
        )
        eventually(
            lambda: (
                papercut_server.calls["api.getUserGroups"] > reads
                and papercut_server.users["alice"]["disabled-print"] == "true"
            )
        )
        assert papercut_server.user_groups("alice") == {"Staff"}  # half revoked
        replace_killed_worker()

    alice_account = dict(papercut_server.users["alice"])
    assert (
        alice_account["disabled-print"],
        alice_account["primary-card-number"],
        alice_account["card-pin"],
    ) == ("true", "", "")
    assert papercut_server.user_groups("alice") == set()
    assert papercut_server.user_groups("bob") == {"Staff"}
    assert sorted(papercut_server.users) == ["alice", "bob"]
    assert switchboard.created == {"alice": 1, "bob": 1}
    assert papercut_server.deleted == []
    assert probe.effects(ref.id, "dead") == []
    probe.close()
