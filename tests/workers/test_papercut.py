"""The PaperCut connector against the fake PaperCut server."""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    RPC_PATH,
    FakePaperCutServer,
    papercut_server_factory_fixture,  # noqa: F401
    papercut_server_fixture,  # noqa: F401
)
from tests.fakes.smtp import free_port
from workers.connectors import Connector, PrintAccount
from workers.connectors.papercut import PaperCutConnector
from workers.errors import (
    AuthenticationError,
    DownstreamError,
    NotFoundError,
    PermanentError,
    TransientError,
)

ConnectorFactory = Callable[..., PaperCutConnector]


@pytest.fixture
def make_connector(papercut_server: FakePaperCutServer) -> ConnectorFactory:
    def make(**options: Any) -> PaperCutConnector:
        settings: dict[str, Any] = {"timeout": 2.0, "retry_initial_wait": 0.01}
        settings.update(options)
        url = settings.pop("url", papercut_server.base_url)
        token = settings.pop("auth_token", DEFAULT_TOKEN)
        return PaperCutConnector(url, token, **settings)

    return make


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> PaperCutConnector:
    return make_connector()


def seed_groups(server: FakePaperCutServer) -> None:
    """The groups of :func:`account`, in PaperCut already (added from its directory)."""
    for name in ("Staff", "Finance Printers"):
        server.add_group(name)


def account(username: str = "jdoe", **fields: Any) -> PrintAccount:
    values: dict[str, Any] = {
        "full_name": "Jane Doe",
        "email": "jane.doe@example.com",
        "department": "Finance",
        "office": "Berlin",
        "card_number": "100200",
        "secondary_card_number": "900800",
        "groups": ("Staff", "Finance Printers"),
        "enabled": True,
    }
    values.update(fields)
    return PrintAccount(username=username, **values)


# Creating and updating


def test_ensure_account_missing_user_creates_user_with_properties_and_groups(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    seed_groups(papercut_server)
    connector.ensure_account(account())

    properties = papercut_server.users["jdoe"]
    assert properties["full-name"] == "Jane Doe"
    assert properties["email"] == "jane.doe@example.com"
    assert properties["department"] == "Finance"
    assert properties["office"] == "Berlin"
    assert properties["primary-card-number"] == "100200"
    assert properties["secondary-card-number"] == "900800"
    assert properties["disabled-print"] == "false"
    assert properties["card-pin"] == ""
    assert len(properties["password"]) >= 20
    assert papercut_server.user_groups("jdoe") == {"Staff", "Finance Printers"}
    assert papercut_server.calls["api.addNewInternalUser"] == 1


def test_ensure_account_existing_user_updates_properties_and_groups(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe", full_name="Old Name", department="Sales", card_pin="4321")
    papercut_server.add_group("Staff", ("jdoe",))
    papercut_server.add_group("Finance Printers")
    papercut_server.add_group("Sales Printers", ("jdoe", "other"))

    connector.ensure_account(account(groups=("Staff", "Finance Printers")))

    properties = papercut_server.users["jdoe"]
    assert properties["full-name"] == "Jane Doe"
    assert properties["department"] == "Finance"
    assert properties["card-pin"] == "4321"
    assert papercut_server.user_groups("jdoe") == {"Staff", "Finance Printers"}
    assert papercut_server.groups["Sales Printers"] == {"other"}
    assert papercut_server.calls["api.addNewInternalUser"] == 0


def test_ensure_account_created_concurrently_becomes_update(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    seed_groups(papercut_server)
    # Another client creates the user between our existence check and our create.
    papercut_server.before["api.addNewInternalUser"] = lambda params: papercut_server.add_user(
        "jdoe", full_name="Created Elsewhere"
    )

    connector.ensure_account(account())

    assert papercut_server.calls["api.addNewInternalUser"] == 1
    assert papercut_server.users["jdoe"]["full-name"] == "Jane Doe"
    assert papercut_server.user_groups("jdoe") == {"Staff", "Finance Printers"}


def test_ensure_account_disabled_account_blocks_printing(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.ensure_account(account(enabled=False))

    assert papercut_server.users["jdoe"]["disabled-print"] == "true"


def test_ensure_account_repeated_changes_no_membership(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    seed_groups(papercut_server)
    connector.ensure_account(account())
    papercut_server.reset_calls()

    connector.ensure_account(account())

    for method in ("addNewInternalUser", "addUserToGroup", "removeUserFromGroup", "addNewGroup"):
        assert papercut_server.calls[f"api.{method}"] == 0
    assert papercut_server.user_groups("jdoe") == {"Staff", "Finance Printers"}


def test_ensure_account_group_names_differing_in_case_are_the_same_group(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.add_group("STAFF", ("jdoe",))

    connector.ensure_account(account(groups=("staff",)))

    assert papercut_server.user_groups("jdoe") == {"STAFF"}
    assert papercut_server.calls["api.removeUserFromGroup"] == 0


def test_ensure_account_unmanaged_group_membership_is_kept(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.add_group("Domain Staff", ("jdoe",))
    papercut_server.add_group("ps-old", ("jdoe",))
    papercut_server.add_group("[All Users]", ("jdoe",))
    papercut_server.add_group("ps-new")

    make_connector(managed_group_prefix="ps-").ensure_account(account(groups=("ps-new",)))

    assert papercut_server.user_groups("jdoe") == {"Domain Staff", "ps-new", "[All Users]"}


def test_ensure_account_sends_only_string_values(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.ensure_account(account(department="", office="", secondary_card_number=""))
    connector.revoke_access("jdoe")

    for method, params in papercut_server.params:
        if method == "api.addNewInternalUser":
            assert all(isinstance(value, str) for value in params)
        if method == "api.setUserProperties":
            pairs = params[1]
            assert pairs
            assert all(isinstance(part, str) for pair in pairs for part in pair)
    assert papercut_server.users["jdoe"]["department"] == ""
    assert "api.adjustUserAccountBalance" not in papercut_server.calls


def test_ensure_account_group_papercut_lacks_is_left_to_the_group_effect(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_group("Staff")

    connector.ensure_account(account(groups=("Staff", "Entra Only")))

    assert papercut_server.user_groups("jdoe") == {"Staff"}
    assert papercut_server.calls["api.addNewGroup"] == 0


def test_ensure_account_user_deleted_meanwhile_raises_transient_error(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.before["api.setUserProperties"] = lambda params: papercut_server.users.pop(
        "jdoe"
    )

    with pytest.raises(TransientError, match="disappeared"):
        connector.ensure_account(account())


# Revoking and deleting


def test_revoke_access_existing_user_blocks_printing_and_clears_cards_pin_and_groups(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user(
        "jdoe", primary_card_number="100200", secondary_card_number="900800", card_pin="4321"
    )
    papercut_server.add_group("Staff", ("jdoe", "other"))
    papercut_server.add_group("Finance Printers", ("jdoe",))
    papercut_server.add_group("[All Users]", ("jdoe",))

    connector.revoke_access("jdoe")

    properties = papercut_server.users["jdoe"]
    assert properties["disabled-print"] == "true"
    assert properties["primary-card-number"] == ""
    assert properties["secondary-card-number"] == ""
    assert properties["card-pin"] == ""
    assert properties["restricted"] == "false"
    assert papercut_server.user_groups("jdoe") == {"[All Users]"}
    assert papercut_server.groups["Staff"] == {"other"}


def test_revoke_access_restrict_option_restricts_balance(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.add_user("jdoe")

    make_connector(restrict_on_revoke=True).revoke_access("jdoe")

    assert papercut_server.users["jdoe"]["restricted"] == "true"


def test_revoke_access_missing_user_is_done(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.revoke_access("ghost")

    assert papercut_server.calls["api.isUserExists"] == 1
    assert papercut_server.calls["api.setUserProperties"] == 0


def test_delete_account_existing_user_deletes_with_redaction(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.add_user("keep")
    papercut_server.add_group("Staff", ("jdoe", "keep"))

    connector.delete_account("jdoe")
    connector.delete_account("keep", redact=False)

    assert papercut_server.deleted == [("jdoe", True), ("keep", False)]
    assert papercut_server.users == {}
    assert papercut_server.groups["Staff"] == set()


def test_delete_account_missing_user_is_done(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.delete_account("ghost")

    assert papercut_server.calls["api.deleteExistingUser"] == 0


@pytest.mark.parametrize(
    ("act", "method"),
    [
        pytest.param(PaperCutConnector.revoke_access, "api.setUserProperties", id="revoke"),
        pytest.param(PaperCutConnector.delete_account, "api.deleteExistingUser", id="delete"),
    ],
)
def test_revoke_or_delete_of_user_deleted_meanwhile_is_done(
    papercut_server: FakePaperCutServer,
    connector: PaperCutConnector,
    act: Callable[[PaperCutConnector, str], None],
    method: str,
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.before[method] = lambda params: papercut_server.users.pop("jdoe")

    act(connector, "jdoe")

    assert papercut_server.calls[method] == 1
    # Fault 262 says the user is gone: no second look is needed.
    assert papercut_server.calls["api.isUserExists"] == 1
    assert papercut_server.deleted == []


# Groups


def test_ensure_group_missing_creates_and_existing_changes_nothing(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.ensure_group("Staff")
    connector.ensure_group("staff")

    assert set(papercut_server.groups) == {"Staff"}
    assert papercut_server.calls["api.addNewGroup"] == 1


def test_delete_group_existing_removes_and_missing_is_done(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_group("Staff", ("jdoe",))

    connector.delete_group("Staff")
    connector.delete_group("Staff")

    assert papercut_server.groups == {}
    assert papercut_server.calls["api.removeGroup"] == 1


def test_delete_group_builtin_raises_permanent_error(connector: PaperCutConnector) -> None:
    with pytest.raises(PermanentError, match="built-in"):
        connector.delete_group("[All Users]")


def test_rename_group_existing_moves_members_and_removes_old(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    for name in ("ann", "bob"):
        papercut_server.add_user(name)
    papercut_server.add_group("Old Name", ("ann", "bob"))

    connector.rename_group("Old Name", "New Name")

    assert papercut_server.groups == {"New Name": {"ann", "bob"}}


def test_rename_group_old_missing_creates_new(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.rename_group("Old Name", "New Name")
    connector.rename_group("Old Name", "New Name")

    assert papercut_server.groups == {"New Name": set()}
    assert papercut_server.calls["api.addNewGroup"] == 1


def test_rename_group_case_only_keeps_group_and_members(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("ann")
    papercut_server.add_group("staff", ("ann",))

    connector.rename_group("staff", "Staff")

    assert papercut_server.groups == {"staff": {"ann"}}
    assert papercut_server.calls["api.removeGroup"] == 0


# Reads for reconciliation


def test_fetch_account_after_ensure_returns_same_account(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    seed_groups(papercut_server)
    wanted = account()
    connector.ensure_account(wanted)

    fetched = connector.fetch_account("jdoe")

    assert fetched is not None
    assert fetched == PrintAccount(**{**_fields(wanted), "groups": tuple(sorted(wanted.groups))})


def test_fetch_account_missing_user_returns_none(connector: PaperCutConnector) -> None:
    assert connector.fetch_account("ghost") is None


def test_iter_usernames_several_pages_yields_every_user(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    names = [f"user{index}" for index in range(5)]
    for name in names:
        papercut_server.add_user(name)

    assert list(connector.iter_usernames(page_size=2)) == names
    assert papercut_server.calls["api.listUserAccounts"] == 3


# Failures


def test_call_wrong_token_raises_authentication_error_without_token(
    papercut_server_factory: Callable[..., FakePaperCutServer],
) -> None:
    server = papercut_server_factory(token="the-server-token")
    connector = PaperCutConnector(server.base_url, DEFAULT_TOKEN, retry_initial_wait=0.01)

    with pytest.raises(AuthenticationError) as caught:
        connector.ensure_account(account())

    assert isinstance(caught.value, PermanentError)
    assert DEFAULT_TOKEN not in str(caught.value)
    assert "the-server-token" not in str(caught.value)
    assert "auth token" in str(caught.value)
    # The refused call, then the harmless one that tells the token was refused.
    assert server.calls["api.isUserExists"] == 2
    assert server.users == {}


def test_call_fault_text_with_token_is_redacted(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    def echo_token(params: tuple[Any, ...]) -> None:
        raise xmlrpc.client.Fault(2, f"internal error handling request {DEFAULT_TOKEN}")

    papercut_server.before["api.isUserExists"] = echo_token

    with pytest.raises(PermanentError) as caught:
        connector.revoke_access("jdoe")

    assert DEFAULT_TOKEN not in str(caught.value)
    assert "[redacted]" in str(caught.value)
    assert caught.value.__cause__ is None


def test_call_server_503_retries_then_raises_transient_error(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.set_outage(503)

    with pytest.raises(TransientError, match="503"):
        connector.ensure_account(account())

    assert papercut_server.calls["api.isUserExists"] == 3


def test_call_server_503_once_recovers_within_retries(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.fail_next(2, 503)

    connector.ensure_account(account())

    assert papercut_server.calls["api.isUserExists"] == 3
    assert "jdoe" in papercut_server.users


def test_call_non_idempotent_503_is_not_retried(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.fail_next(5, 503, method="api.addNewInternalUser")

    with pytest.raises(TransientError):
        connector.ensure_account(account())

    assert papercut_server.calls["api.addNewInternalUser"] == 1


def test_delete_account_503_is_not_retried(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.fail_next(5, 503, method="api.deleteExistingUser")

    with pytest.raises(TransientError):
        connector.delete_account("jdoe")

    assert papercut_server.calls["api.deleteExistingUser"] == 1
    assert "jdoe" in papercut_server.users


def test_call_server_404_raises_permanent_error_without_retry(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.set_outage(404)

    with pytest.raises(PermanentError) as caught:
        connector.revoke_access("jdoe")

    assert not isinstance(caught.value, AuthenticationError)
    assert papercut_server.calls["api.isUserExists"] == 1


def test_call_server_403_raises_authentication_error(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.set_outage(403)

    with pytest.raises(AuthenticationError):
        connector.delete_account("jdoe")


def test_call_server_hangs_times_out_as_transient_error(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.set_hang(5.0)
    hanging = make_connector(timeout=0.3, retry_attempts=2)

    started = time.monotonic()
    with pytest.raises(TransientError, match=r"Timeout|timed out"):
        hanging.revoke_access("jdoe")
    elapsed = time.monotonic() - started

    assert 0.55 <= elapsed < 2.5
    assert papercut_server.calls["api.isUserExists"] == 2


def test_call_retry_budget_caps_total_time(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.set_outage(503)
    slow_waits = make_connector(retry_attempts=10, retry_budget=0.5, retry_initial_wait=0.2)

    started = time.monotonic()
    with pytest.raises(TransientError):
        slow_waits.revoke_access("jdoe")

    assert time.monotonic() - started < 1.0
    assert 1 < papercut_server.calls["api.isUserExists"] < 10


def test_call_nothing_listening_raises_transient_error() -> None:
    connector = PaperCutConnector(
        f"http://127.0.0.1:{free_port()}", DEFAULT_TOKEN, timeout=1.0, retry_initial_wait=0.01
    )

    with pytest.raises(TransientError, match=r"connection refused at http://127\.0\.0\.1"):
        connector.revoke_access("jdoe")


def test_ensure_account_several_threads_all_accounts_converge(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    seed_groups(papercut_server)
    accounts = [
        account(
            f"user{index}",
            full_name=f"User {index}",
            email=f"user{index}@example.com",
            card_number=f"{1000 + index}",
        )
        for index in range(16)
    ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(connector.ensure_account, accounts))

    assert set(papercut_server.users) == {item.username for item in accounts}
    for item in accounts:
        assert papercut_server.users[item.username]["full-name"] == item.full_name
        assert papercut_server.users[item.username]["primary-card-number"] == item.card_number
    names = {item.username for item in accounts}
    assert papercut_server.groups == {"Staff": names, "Finance Printers": names}


# Construction and interface


def test_connector_base_url_targets_rpc_endpoint(papercut_server: FakePaperCutServer) -> None:
    connector = PaperCutConnector(papercut_server.base_url + "/", DEFAULT_TOKEN)

    assert connector.url == papercut_server.base_url + RPC_PATH
    assert PaperCutConnector(papercut_server.url, DEFAULT_TOKEN).url == papercut_server.url


@pytest.mark.parametrize(
    "url", ["ftp://papercut:9191", "papercut:9191", "http://user:secret@papercut:9191"]
)
def test_connector_invalid_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        PaperCutConnector(url, DEFAULT_TOKEN)


def test_connector_empty_token_raises_value_error() -> None:
    with pytest.raises(ValueError, match="token"):
        PaperCutConnector("http://papercut:9191", "")


def test_connector_repr_hides_token(connector: PaperCutConnector) -> None:
    assert DEFAULT_TOKEN not in repr(connector)
    assert DEFAULT_TOKEN not in str(vars(connector))


def test_connector_implements_connector_protocol(connector: PaperCutConnector) -> None:
    assert isinstance(connector, Connector)
    assert connector.name == "papercut"


def test_print_account_repr_hides_card_numbers() -> None:
    text = repr(account())

    assert "100200" not in text
    assert "900800" not in text
    assert "jdoe" in text


def test_print_account_duplicate_groups_keep_first_spelling() -> None:
    assert account(groups=("Staff", "STAFF", "Print")).groups == ("Staff", "Print")


@pytest.mark.parametrize("username", ["", " jdoe", "jdoe\n"])
def test_print_account_invalid_username_raises_value_error(username: str) -> None:
    with pytest.raises(ValueError, match="username"):
        account(username)


def test_error_tree_classes_choose_retry() -> None:
    assert issubclass(NotFoundError, PermanentError)
    assert issubclass(AuthenticationError, PermanentError)
    assert issubclass(TransientError, DownstreamError)
    assert TransientError("x").retryable
    assert not PermanentError("x").retryable
    assert str(PermanentError("refused", operation="addNewGroup")) == "addNewGroup: refused"


def _fields(item: PrintAccount) -> dict[str, Any]:
    return {name: getattr(item, name) for name in PrintAccount.__dataclass_fields__}


# Usernames, renames, fault codes and the connection test


def test_account_name_local_part_or_upn_lower_case(make_connector: ConnectorFactory) -> None:
    assert make_connector().account_name("Adele.Vance@Contoso.com") == "adele.vance"
    upn = make_connector(username_mapping="upn")
    assert upn.account_name("Adele.Vance@Contoso.com") == "adele.vance@contoso.com"


def test_ensure_account_upn_user_name_creates_local_part_account(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    connector.ensure_account(account("Jane.Doe@Example.com"))

    assert list(papercut_server.users) == ["jane.doe"]
    assert papercut_server.users["jane.doe"]["full-name"] == "Jane Doe"


def test_ensure_account_upn_mapping_adds_the_directory_user(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.directory.add("jane.doe@example.com")

    make_connector(username_mapping="upn").ensure_account(account("Jane.Doe@example.com"))

    assert list(papercut_server.users) == ["jane.doe@example.com"]
    added = papercut_server.users["jane.doe@example.com"]
    assert (added["internal"], added["full-name"]) == ("false", "Jane Doe")
    assert papercut_server.calls["api.addNewInternalUser"] == 0


def test_ensure_account_upn_mapping_user_outside_the_directory_is_refused(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    with pytest.raises(PermanentError) as raised:
        make_connector(username_mapping="upn").ensure_account(account("jane.doe@example.com"))

    assert not isinstance(raised.value, AuthenticationError)
    assert "user directory has no user jane.doe@example.com" in raised.value.message
    assert papercut_server.users == {}


def test_fake_stores_usernames_in_lower_case_and_refuses_at_sign(
    papercut_server: FakePaperCutServer,
) -> None:
    proxy = xmlrpc.client.ServerProxy(papercut_server.url)
    assert proxy.api.addNewInternalUser(DEFAULT_TOKEN, "Jane", "pw", "", "", "", "")
    with pytest.raises(xmlrpc.client.Fault) as refused:
        proxy.api.addNewInternalUser(DEFAULT_TOKEN, "jane@example.com", "pw", "", "", "", "")

    assert list(papercut_server.users) == ["jane"]
    assert proxy.api.isUserExists(DEFAULT_TOKEN, "JANE") is True
    assert refused.value.faultCode == 257


def test_rename_account_keeps_balance_cards_and_groups(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe", balance="12.50", primary_card_number="100200")
    papercut_server.add_group("Staff", ("jdoe",))

    connector.rename_account("jdoe@example.com", "jane.roe@example.com")

    assert list(papercut_server.users) == ["jane.roe"]
    kept = papercut_server.users["jane.roe"]
    assert (kept["balance"], kept["primary-card-number"]) == ("12.50", "100200")
    assert papercut_server.user_groups("jane.roe") == {"Staff"}


def test_rename_account_same_mapped_name_or_missing_account_calls_no_rename(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")

    connector.rename_account("jdoe@contoso.com", "JDoe@fabrikam.com")
    connector.rename_account("nobody@example.com", "somebody@example.com")

    assert papercut_server.calls["api.renameUserAccount"] == 0
    assert list(papercut_server.users) == ["jdoe"]


def test_rename_account_new_name_taken_keeps_both(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.add_user("jroe", email="roe@example.com")

    connector.rename_account("jdoe", "jroe")

    assert sorted(papercut_server.users) == ["jdoe", "jroe"]
    assert papercut_server.calls["api.renameUserAccount"] == 0


def test_delete_account_fault_262_is_done(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")
    papercut_server.before["api.deleteExistingUser"] = lambda params: papercut_server.users.pop(
        "jdoe"
    )

    connector.delete_account("jdoe")

    assert papercut_server.deleted == []
    assert papercut_server.calls["api.isUserExists"] == 1  # no second look after 262


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(261, "the property is invalid"), (268, "e-mail is not unique"), (999, "undocumented")],
)
def test_fault_codes_other_than_not_found_are_permanent_with_their_meaning(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector, code: int, meaning: str
) -> None:
    papercut_server.add_user("jdoe")

    def refuse(params: tuple[Any, ...]) -> None:
        raise xmlrpc.client.Fault(code, "authorsmith: refused")

    papercut_server.before["api.setUserProperties"] = refuse

    with pytest.raises(PermanentError) as raised:
        connector.ensure_account(account())

    assert type(raised.value) is PermanentError  # no text is read: "auth" in it means nothing
    assert raised.value.code == code
    assert meaning in raised.value.message


def test_refused_address_is_authentication_error(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.refuse_address = True

    with pytest.raises(AuthenticationError) as raised:
        connector.revoke_access("jdoe")

    assert "auth.webservices.allowed-addresses" in raised.value.message


def test_revoke_access_pin_refused_still_blocks_printing_in_its_own_call(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe", primary_card_number="100200", card_pin="4321")

    def refuse_pin(params: tuple[Any, ...]) -> None:
        if any(pair[0] == "card-pin" for pair in params[1]):
            raise xmlrpc.client.Fault(273, "PIN doesn't contain enough characters")

    papercut_server.before["api.setUserProperties"] = refuse_pin

    connector.revoke_access("jdoe@example.com")

    revoked = papercut_server.users["jdoe"]
    assert (revoked["disabled-print"], revoked["primary-card-number"]) == ("true", "")
    first = next(params for method, params in papercut_server.params if "setUser" in method)
    assert first[1] == [["disabled-print", "true"]]


def test_check_right_token_reports_users(
    papercut_server: FakePaperCutServer, connector: PaperCutConnector
) -> None:
    papercut_server.add_user("jdoe")

    assert connector.check() == (
        f"PaperCut at {papercut_server.url} answered with the auth token (1 users)"
    )


def test_check_slow_server_times_out_naming_the_seconds(
    papercut_server: FakePaperCutServer, make_connector: ConnectorFactory
) -> None:
    papercut_server.set_hang(2)

    with pytest.raises(TransientError) as raised:
        make_connector(timeout=0.2).check()

    assert raised.value.message.endswith("timed out after 0.2 s")
