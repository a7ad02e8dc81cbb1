"""The PaperCut connector's groups (directory groups added in the background) and its drift
comparison, against the fake PaperCut server."""

from __future__ import annotations

import time
import xmlrpc.client
from typing import Any

import pytest

from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from workers.connectors import PrintAccount
from workers.connectors.interface import Drift, GroupPending, GroupUnavailable, account_drift
from workers.connectors.papercut import PaperCutConnector


def make(server: FakePaperCutServer, **options: Any) -> PaperCutConnector:
    return PaperCutConnector(
        server.base_url, DEFAULT_TOKEN, timeout=2.0, retry_initial_wait=0.01, **options
    )


def account(username: str = "ann", **fields: Any) -> PrintAccount:
    values: dict[str, Any] = {
        "full_name": "Ann Example",
        "email": "ann@example.com",
        "card_number": "100",
        "groups": ("Staff",),
    }
    values.update(fields)
    return PrintAccount(username=username, **values)


# Directory groups -------------------------------------------------------------------------------


def test_ensure_group_directory_group_is_added_and_awaited(
    papercut_server: FakePaperCutServer,
) -> None:
    papercut_server.set_directory("Staff", task_seconds=0.3)

    make(papercut_server).ensure_group("Staff")

    assert "Staff" in papercut_server.groups
    assert papercut_server.calls["api.addNewGroup"] == 1
    status_calls = [params for method, params in papercut_server.params if "TaskStatus" in method]
    assert status_calls and all(params == () for params in status_calls)  # no token, no params


def test_ensure_group_slow_task_is_pending_then_present(
    papercut_server: FakePaperCutServer,
) -> None:
    papercut_server.set_directory("Staff", task_seconds=0.6)
    connector = make(papercut_server, group_wait_seconds=0.1)

    with pytest.raises(GroupPending):
        connector.ensure_group("Staff")
    time.sleep(0.7)
    connector.ensure_group("Staff")

    assert "Staff" in papercut_server.groups
    assert papercut_server.calls["api.addNewGroup"] == 1


def test_ensure_group_not_in_directory_is_unavailable_with_the_reason(
    papercut_server: FakePaperCutServer,
) -> None:
    papercut_server.set_directory("Staff")

    with pytest.raises(GroupUnavailable, match="not in PaperCut's user directory source"):
        make(papercut_server).ensure_group("Entra Only")

    assert papercut_server.groups == {}


def test_ensure_group_refused_add_is_unavailable(papercut_server: FakePaperCutServer) -> None:
    def refuse(params: tuple[Any, ...]) -> None:
        raise xmlrpc.client.Fault(263, "Group not found: Entra Only")

    papercut_server.before["api.addNewGroup"] = refuse

    with pytest.raises(GroupUnavailable, match="refused"):
        make(papercut_server).ensure_group("Entra Only")


def test_add_group_members_adds_existing_accounts_once(
    papercut_server: FakePaperCutServer,
) -> None:
    for name in ("ann", "bob"):
        papercut_server.add_user(name)
    papercut_server.add_group("Staff", ("bob",))

    make(papercut_server).add_group_members("Staff", ["ann", "bob", "nobody"])

    assert papercut_server.groups["Staff"] == {"ann", "bob"}
    assert papercut_server.calls["api.addUserToGroup"] == 1


def test_ensure_account_joins_only_groups_papercut_has(
    papercut_server: FakePaperCutServer,
) -> None:
    papercut_server.add_group("Staff")

    make(papercut_server).ensure_account(account(groups=("Staff", "Entra Only")))

    assert papercut_server.user_groups("ann") == {"Staff"}
    assert papercut_server.calls["api.addNewGroup"] == 0


# Drift -----------------------------------------------------------------------------------------


def test_find_drift_looks_up_only_the_desired_accounts_by_name_and_lists_none(
    papercut_server: FakePaperCutServer,
) -> None:
    papercut_server.add_group("Staff", ("ann",))
    papercut_server.add_user("ann", full_name="Ann Example", email="ann@example.com")
    papercut_server.users["ann"]["primary-card-number"] = "100"
    for index in range(2100):  # accounts printsync does not manage
        papercut_server.add_user(f"other{index:04}", full_name="Someone")
    papercut_server.users["bob"] = dict(papercut_server.users["other0000"])
    papercut_server.users["bob"]["disabled-print"] = "false"
    connector = make(papercut_server)
    desired = {"ann": account(), "bob": None, "cy": account("cy", groups=())}

    found = list(connector.find_drift(desired))

    assert found == [
        Drift("bob", ("printing enabled",)),
        Drift("cy", ("account missing",)),
    ]
    read = {params[0] for method, params in papercut_server.params if "getUserProp" in method}
    assert read == {"ann", "bob", "cy"}  # cy's lookup finds no account
    assert papercut_server.calls["api.listUserAccounts"] == 0
    assert not any("other" in str(params) for _, params in papercut_server.params)


def test_account_drift_groups_only_those_held_and_managed() -> None:
    wanted = account(groups=("Staff", "Entra Only"))
    actual = account(groups=("Domain Users", "ps-old"), enabled=False, email="x@example.com")

    problems = account_drift(
        wanted,
        actual,
        holds=lambda group: group != "Entra Only",
        manages=lambda group: group.startswith("ps-"),
    )

    assert problems == (
        "printing disabled",
        "e-mail",
        "missing from group Staff",
        "in group ps-old",
    )


def test_account_drift_revoked_account_with_cards_and_printing() -> None:
    actual = account(secondary_card_number="7", groups=("Staff",))

    problems = account_drift(None, actual, holds=lambda g: True, manages=lambda g: True)

    assert problems == (
        "printing enabled",
        "card number",
        "secondary card number",
        "in group Staff",
    )
    assert account_drift(None, None, holds=lambda g: True, manages=lambda g: True) == ()
