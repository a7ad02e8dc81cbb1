"""PaperCut NG/MF connector over the XML-RPC Web Services API.

Calls go to ``/rpc/api/xmlrpc`` as ``api.<method>``, with the auth token as the
first parameter. Every property value is a string (``"true"``, ``""``), never
``None``. Each worker thread gets its own ``ServerProxy``; a proxy shared by
several threads corrupts its connection. The transport sets a socket timeout,
because ``ServerProxy`` has no timeout of its own and a blocked call cannot be
interrupted by Dramatiq's time limit.

Failures leave this module as :mod:`workers.errors` classes:

- ``xmlrpc.client.Fault`` (a refusal by PaperCut) is classified by its code
  (:mod:`workers.connectors.papercut_faults`): 262/263 are a ``NotFoundError``,
  the other codes a ``PermanentError``; a general fault (257, or no code on a
  server before 19.2) that a harmless call repeats is an ``AuthenticationError``
  (the token or the caller's address is refused). The fault's text is never
  parsed. Existence is still checked with ``isUserExists`` before writes and
  after a refusal without a specific code.
- ``ProtocolError`` with a 5xx (or 408/429) status, connection errors and
  timeouts are a ``TransientError``; other 4xx statuses are permanent.

Idempotent calls (reads, and ``setUserProperties`` with absolute values) are
tried up to three times within about five seconds for transient failures.
Calls that are not idempotent (creating, deleting, changing membership) are
tried once: the effect is retried as a whole, and because every operation first
looks at the current state, a repeat converges instead of doubling the change.
``adjustUserAccountBalance`` is never called: it applies a delta, so a retry
would charge twice.

The auth token is kept in a ``SecretStr``, is never stored in a local
variable, and is scrubbed from any text that goes into an exception or a log.

A tenant's configuration (:class:`PaperCutConfig`, stored as JSON in ``connector_config``):
``url`` (the server, e.g. ``https://host:9192``, or the full XML-RPC endpoint), ``token_env`` (the
name of the variable that holds the auth token: the token itself is never stored in the
database), and optionally ``username`` (``local-part``, the default, or ``upn``: how a userName
becomes a PaperCut username), ``managed_group_prefix`` and ``restrict_on_revoke``. The token is
looked up in the secrets mapping each time the connector is built.

Accounts: a userName is mapped to a PaperCut username (:func:`map_username`); an account that
already exists under the mapped name, or under the whole UPN in lower case (a site that syncs
Azure AD natively), is adopted and updated, never duplicated. A missing account is created as
an internal user (``addNewInternalUser``) with ``local-part``, and added from PaperCut's user
directory source (``addNewUser``) with ``upn``. A userName change renames the account with
``renameUserAccount``, which keeps its balance, cards, groups and history.

Assumptions about PaperCut behaviour the documentation leaves open:

- ``addNewGroup`` adds a group that exists in the user directory source (or in
  ``additional-groups.txt``) to PaperCut's group list, in the background: the
  call returns at once and ``getTaskStatus`` (no parameters, not even the token)
  answers ``{"completed", "message"}`` about the latest task started through the
  API. ``removeGroup`` takes a group off the list. There is no ``renameGroup``,
  so a rename adds the new group, copies the members and removes the old one.
- A group that the task finished without adding is not in the directory source:
  PaperCut cannot hold it (:class:`GroupUnavailable`). The status is about the
  latest task of any client, so a group added by someone else's task meanwhile
  is found by ``isGroupExists`` all the same.
- Group names compare case-insensitively. Names in square brackets, such as
  ``[All Users]``, are built-in groups and are never changed.
"""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from workers.connectors.interface import (
    BuildContext,
    ConnectorPlugin,
    Drift,
    GroupPending,
    GroupUnavailable,
    PrintAccount,
    compare_accounts,
)
from workers.connectors.papercut_client import PaperCutClient, as_bool, string_list
from workers.connectors.papercut_faults import (
    PIN_CODES,
    UsernameMapping,
    map_username,
)
from workers.errors import (
    AuthenticationError,
    NotFoundError,
    PermanentError,
    TransientError,
)

__all__ = ["NAME", "PLUGIN", "RPC_PATH", "PaperCutConfig", "PaperCutConnector", "endpoint"]

NAME = "papercut"
RPC_PATH = "/rpc/api/xmlrpc"


_log = structlog.get_logger(__name__)

_PAGE_SIZE = 1000

# Properties read back by fetch_account, in this order.
_ACCOUNT_PROPERTIES = [
    "full-name",
    "email",
    "department",
    "office",
    "primary-card-number",
    "secondary-card-number",
    "disabled-print",
]


def _is_builtin_group(name: str) -> bool:
    return name.startswith("[")


def endpoint(url: str) -> str:
    """The XML-RPC endpoint of a PaperCut ``url`` (a base URL or the endpoint itself);
    ``ValueError`` if it is not an http(s) URL with a host and without credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the PaperCut URL must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the PaperCut URL must not contain credentials")
    path = parts.path if parts.path not in ("", "/") else RPC_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class PaperCutConfig(BaseModel):
    """A tenant's PaperCut server, as stored in its ``connector_config``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str
    token_env: str = Field(min_length=1)
    username: UsernameMapping = "local-part"
    managed_group_prefix: str = ""
    restrict_on_revoke: bool = False

    @field_validator("url")
    @classmethod
    def _endpoint_url(cls, value: str) -> str:
        endpoint(value)
        return value


class PaperCutConnector:
    """Keeps PaperCut NG/MF users and groups in line with printsync.

    ``url`` is the server's base URL (``https://papercut:9192``) or the full
    XML-RPC endpoint. ``managed_group_prefix`` limits which groups
    ``ensure_account`` removes a user from: only groups whose name starts with
    it (all groups when empty, built-in ones excepted). ``restrict_on_revoke``
    also sets ``restricted`` when access is revoked, so that the balance cannot
    go negative. The ``retry_*`` arguments tune the in-call retries of
    idempotent calls.
    """

    def __init__(
        self,
        url: str,
        auth_token: str | SecretStr,
        timeout: float = 10.0,
        *,
        managed_group_prefix: str = "",
        restrict_on_revoke: bool = False,
        username_mapping: UsernameMapping = "local-part",
        retry_attempts: int = 3,
        retry_budget: float = 5.0,
        retry_initial_wait: float = 0.25,
        ssl_context: ssl.SSLContext | None = None,
        group_wait_seconds: float = 2.0,
    ) -> None:
        token = auth_token if isinstance(auth_token, SecretStr) else SecretStr(auth_token)
        if not token.get_secret_value():
            raise ValueError("the PaperCut auth token must not be empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        self._client = PaperCutClient(
            endpoint(url),
            token,
            timeout,
            retry_attempts=retry_attempts,
            retry_budget=retry_budget,
            retry_initial_wait=retry_initial_wait,
            ssl_context=ssl_context,
        )
        self._url = self._client.url
        self._timeout = timeout
        self._managed_prefix = managed_group_prefix.casefold()
        self._restrict_on_revoke = restrict_on_revoke
        self._mapping: UsernameMapping = username_mapping
        self._group_wait = group_wait_seconds
        self._call = self._client.call

    @property
    def name(self) -> str:
        return NAME

    @property
    def url(self) -> str:
        """The XML-RPC endpoint this connector calls."""
        return self._url

    def __repr__(self) -> str:
        return f"PaperCutConnector(url={self._url!r}, timeout={self._timeout!r})"

    # -- Connector interface ------------------------------------------------

    def account_name(self, username: str) -> str:
        return map_username(username, self._mapping)

    def ensure_account(self, account: PrintAccount) -> None:
        username = self._resolve(account.username)
        if username is None and self._mapping == "upn":
            username = self._add_directory_user(self.account_name(account.username))
        if username is None:
            username = self.account_name(account.username)
            try:
                self._call(
                    "addNewInternalUser",
                    username,
                    # Internal users need a password; nobody is meant to log in with it.
                    secrets.token_urlsafe(24),
                    account.full_name,
                    account.email,
                    account.card_number,
                    "",
                    idempotent=False,
                )
            except AuthenticationError:
                raise
            except PermanentError:
                # "Already exists" (created meanwhile) becomes an update.
                if not self._user_exists(username):
                    raise
        properties = [
            ["full-name", account.full_name],
            ["email", account.email],
            ["department", account.department],
            ["office", account.office],
            ["primary-card-number", account.card_number],
            ["secondary-card-number", account.secondary_card_number],
            ["disabled-print", "false" if account.enabled else "true"],
        ]
        try:
            self._set_properties(username, properties)
            self._converge_groups(username, account.groups)
        except PermanentError as error:
            if self._refusal_means_missing_user(username, error):
                raise TransientError(
                    "account disappeared during the update; a retry re-creates it",
                    operation="ensure_account",
                ) from None
            raise

    def rename_account(self, old: str, new: str) -> None:
        source = self._resolve(old)
        target = self.account_name(new)
        if source is None or source == target or self._user_exists(target):
            # Nothing to move, the name stays, or an account under the new name is kept:
            # ensure_account updates that one.
            return
        try:
            self._call("renameUserAccount", source, target, idempotent=False)
        except AuthenticationError:
            raise
        except PermanentError as error:
            if self._refusal_means_missing_user(source, error):
                return  # renamed meanwhile, or gone: ensure_account converges
            if not self._user_exists(target):
                raise

    def revoke_access(self, username: str) -> None:
        name = self._resolve(username)
        if name is None:
            return
        blocked = [["disabled-print", "true"]]
        if self._restrict_on_revoke:
            blocked.append(["restricted", "true"])
        try:
            # Blocking printing comes first and alone: it also stops held jobs from being
            # released, and no refusal of a card or PIN value can hold it up.
            self._set_properties(name, blocked)
            self._set_properties(name, [["primary-card-number", ""], ["secondary-card-number", ""]])
            self._clear_pin(name)
            for group in self._user_groups(name):
                if not _is_builtin_group(group):
                    self._call("removeUserFromGroup", name, group, idempotent=False)
        except PermanentError as error:
            if self._refusal_means_missing_user(name, error):
                return
            raise

    def delete_account(self, username: str, *, redact: bool = True) -> None:
        name = self._resolve(username)
        if name is None:
            return
        try:
            self._call("deleteExistingUser", name, redact, idempotent=False)
        except PermanentError as error:
            if self._refusal_means_missing_user(name, error):
                return
            raise

    def check(self) -> str:
        count = self._call("getTotalUsers", idempotent=False)
        if isinstance(count, bool) or not isinstance(count, int):
            raise PermanentError(
                "unexpected response type, expected an integer", operation="getTotalUsers"
            )
        return f"PaperCut at {self._url} answered with the auth token ({count} users)"

    def delete_group(self, name: str) -> None:
        if _is_builtin_group(name):
            raise PermanentError("built-in groups cannot be deleted", operation="delete_group")
        if not self._group_exists(name):
            return
        try:
            self._call("removeGroup", name, idempotent=False)
        except AuthenticationError:
            raise
        except PermanentError:
            if self._group_exists(name):
                raise

    def rename_group(self, old: str, new: str) -> None:
        if _is_builtin_group(old) or _is_builtin_group(new):
            raise PermanentError("built-in groups cannot be renamed", operation="rename_group")
        if old.casefold() == new.casefold() or not self._group_exists(old):
            # Names differing only in case name the same PaperCut group.
            self.ensure_group(new)
            return
        self.ensure_group(new)
        already = {member.casefold() for member in self._group_members(new)}
        for member in self._group_members(old):
            if member.casefold() not in already:
                self._call("addUserToGroup", member, new, idempotent=False)
        self.delete_group(old)

    # -- Groups as PaperCut has them -----------------------------------------

    def ensure_group(self, name: str) -> None:
        """Add a directory group to PaperCut and wait briefly for the background task.

        :class:`GroupPending` when the task has not finished within ``group_wait_seconds``
        (the caller looks again later, without holding a worker thread);
        :class:`GroupUnavailable` when PaperCut finished without the group, or refused it.
        """
        if self._group_exists(name):
            return
        if _is_builtin_group(name):
            raise GroupUnavailable("built-in PaperCut groups cannot be added")
        try:
            self._call("addNewGroup", name, idempotent=False)
        except AuthenticationError:
            raise
        except PermanentError as error:
            if self._group_exists(name):
                return
            raise GroupUnavailable(f"PaperCut refused to add it ({error})") from None
        self._await_group(name)

    def add_group_members(self, name: str, usernames: Sequence[str]) -> None:
        present = {member.casefold() for member in self._group_members(name)}
        for user_name in usernames:
            username = self._resolve(user_name)
            if username is None or username.casefold() in present:
                continue
            try:
                self._call("addUserToGroup", username, name, idempotent=False)
            except PermanentError as error:
                if not self._refusal_means_missing_user(username, error):
                    raise

    def _await_group(self, name: str) -> None:
        deadline = time.monotonic() + self._group_wait
        pause = 0.05
        while True:
            completed, message = self._task_status()
            if completed:
                if self._group_exists(name):
                    return
                detail = f": {self._client.detail(message)}" if message.strip() else ""
                raise GroupUnavailable(
                    f"not in PaperCut's user directory source (the add task ended{detail})"
                )
            if time.monotonic() + pause > deadline:
                raise GroupPending(name)
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _task_status(self) -> tuple[bool, str]:
        value = self._call("getTaskStatus", idempotent=True, token=False)
        if not isinstance(value, dict) or not isinstance(value.get("completed"), bool):
            raise PermanentError(
                "unexpected response type, expected a task status", operation="getTaskStatus"
            )
        message = value.get("message")
        return value["completed"], message if isinstance(message, str) else ""

    def _add_to_existing_group(self, username: str, group: str) -> None:
        """Add the membership if PaperCut has the group; a group it does not have is left to
        the group's own effect, which adds it from the directory source and then its members."""
        if not self._group_exists(group):
            return
        try:
            self._call("addUserToGroup", username, group, idempotent=False)
        except AuthenticationError:
            raise
        except PermanentError:
            if self._group_exists(group):
                raise

    # -- Reconcile -------------------------------------------------------------

    def find_drift(self, desired: Mapping[str, PrintAccount | None]) -> Iterator[Drift]:
        existing = {group.casefold() for group in self._all_groups()}

        def holds(group: str) -> bool:
            return group.casefold() in existing

        # ``desired`` (one page of the tenant's users) is keyed by userName; PaperCut's accounts
        # are under mapped names (or, when adopted, the whole UPN). Each desired account is
        # looked up by those names: PaperCut's other accounts are never listed, read nor touched.
        # A name two userNames lead to belongs to the first that maps to it.
        keys: dict[str, str] = {}
        for key in desired:
            keys.setdefault(self.account_name(key), key)
        for key in desired:
            keys.setdefault(key.strip().lower(), key)
        return compare_accounts(
            desired, self._accounts_of(desired, keys), holds=holds, manages=self._manages
        )

    def _accounts_of(
        self, desired: Mapping[str, PrintAccount | None], keys: Mapping[str, str]
    ) -> Iterator[PrintAccount]:
        """The account of each desired userName that PaperCut has, under the userName: the
        mapped name's account first, else the whole UPN's (the adoption rule of
        :meth:`_resolve`)."""
        for key in desired:
            for name in dict.fromkeys((self.account_name(key), key.strip().lower())):
                if keys.get(name) != key:
                    continue  # another userName's account
                account = self.fetch_account(name)
                if account is not None:
                    yield dataclasses.replace(account, username=key)
                    break

    def _all_groups(self) -> Iterator[str]:
        return self._pages("listUserGroups", _PAGE_SIZE)

    def _pages(self, method: str, page_size: int) -> Iterator[str]:
        """Every name a paged list method (``listUserAccounts``, ``listUserGroups``) returns."""
        offset = 0
        while True:
            page = string_list(method, self._call(method, offset, page_size, idempotent=True))
            yield from page
            if len(page) < page_size:
                return
            offset += page_size

    # -- Reads used by reconciliation ----------------------------------------

    def iter_usernames(self, page_size: int = _PAGE_SIZE) -> Iterator[str]:
        """Yield every PaperCut username, a page of ``page_size`` at a time."""
        return self._pages("listUserAccounts", page_size)

    def fetch_account(self, username: str) -> PrintAccount | None:
        """Read an account back from PaperCut; ``None`` if it does not exist."""
        try:
            values = string_list(
                "getUserProperties",
                self._call(
                    "getUserProperties", username, list(_ACCOUNT_PROPERTIES), idempotent=True
                ),
            )
            groups = self._user_groups(username)
        except PermanentError as error:
            if self._refusal_means_missing_user(username, error):
                return None
            raise
        if len(values) != len(_ACCOUNT_PROPERTIES):
            raise PermanentError(
                "getUserProperties returned the wrong number of values",
                operation="getUserProperties",
            )
        props = dict(zip(_ACCOUNT_PROPERTIES, values, strict=True))
        return PrintAccount(
            username=username,
            full_name=props["full-name"],
            email=props["email"],
            department=props["department"],
            office=props["office"],
            card_number=props["primary-card-number"],
            secondary_card_number=props["secondary-card-number"],
            groups=tuple(group for group in groups if not _is_builtin_group(group)),
            enabled=props["disabled-print"].lower() != "true",
        )

    def close(self) -> None:
        """Close the calling thread's connection, if it has one."""
        self._client.close()

    # -- Steps ------------------------------------------------------------

    def _user_exists(self, username: str) -> bool:
        return as_bool("isUserExists", self._call("isUserExists", username, idempotent=True))

    def _resolve(self, username: str) -> str | None:
        """The PaperCut username of the account for ``username``: the mapped name, else the
        whole UPN in lower case (an account a directory sync made), else None."""
        mapped = self.account_name(username)
        if self._user_exists(mapped):
            return mapped
        upn = username.strip().lower()
        if upn != mapped and self._user_exists(upn):
            return upn
        return None

    def _add_directory_user(self, username: str) -> str:
        """Have PaperCut add ``username`` from its user directory source (``addNewUser``): with
        the ``upn`` mapping the accounts come from a directory sync, never as internal users."""
        try:
            self._call("addNewUser", username, idempotent=False)
        except AuthenticationError:
            raise
        except PermanentError:
            if not self._user_exists(username):
                raise PermanentError(
                    f"PaperCut's user directory has no user {username} (with the upn mapping"
                    " printsync adds users from the directory source only)",
                    operation="addNewUser",
                ) from None
        return username

    def _clear_pin(self, username: str) -> None:
        """Clear the card PIN; a server that refuses the empty PIN (a PIN rule) leaves it, as
        printing is already blocked."""
        try:
            self._set_properties(username, [["card-pin", ""]])
        except PermanentError as error:
            if error.code not in PIN_CODES:
                raise
            _log.warning("papercut_pin_not_cleared", fault=error.code)

    def _group_exists(self, name: str) -> bool:
        return as_bool("isGroupExists", self._call("isGroupExists", name, idempotent=True))

    def _user_groups(self, username: str) -> list[str]:
        return string_list("getUserGroups", self._call("getUserGroups", username, idempotent=True))

    def _group_members(self, name: str) -> list[str]:
        members: list[str] = []
        offset = 0
        while True:
            page = string_list(
                "getGroupMembers",
                self._call("getGroupMembers", name, offset, _PAGE_SIZE, idempotent=True),
            )
            members.extend(page)
            if len(page) < _PAGE_SIZE:
                return members
            offset += _PAGE_SIZE

    def _set_properties(self, username: str, properties: list[list[str]]) -> None:
        for pair in properties:
            if not all(isinstance(part, str) for part in pair):
                raise PermanentError(
                    "property names and values must be strings", operation="setUserProperties"
                )
        self._call("setUserProperties", username, properties, idempotent=True)

    def _converge_groups(self, username: str, desired: Sequence[str]) -> None:
        current = {group.casefold(): group for group in self._user_groups(username)}
        wanted = {group.casefold(): group for group in desired}
        for key, group in wanted.items():
            if key not in current:
                self._add_to_existing_group(username, group)
        for key, group in current.items():
            if key not in wanted and self._manages(group):
                self._call("removeUserFromGroup", username, group, idempotent=False)

    def _manages(self, group: str) -> bool:
        return not _is_builtin_group(group) and group.casefold().startswith(self._managed_prefix)

    def _refusal_means_missing_user(self, username: str, error: PermanentError) -> bool:
        """After a refusal, tell whether it happened because the user is gone."""
        if isinstance(error, NotFoundError):
            return True
        if isinstance(error, AuthenticationError):
            return False
        return not self._user_exists(username)


def build(config: PaperCutConfig, context: BuildContext) -> PaperCutConnector:
    """The tenant's connector; PermanentError if its token variable is not set."""
    token = SecretStr(context.secrets.get(config.token_env, ""))
    if not token.get_secret_value():
        raise PermanentError(
            f"the PaperCut token variable {config.token_env} is not set", operation="configure"
        )
    calls = context.settings.papercut
    try:
        return PaperCutConnector(
            config.url,
            token,
            calls.timeout_seconds,
            managed_group_prefix=config.managed_group_prefix,
            restrict_on_revoke=config.restrict_on_revoke,
            username_mapping=config.username,
            retry_attempts=calls.retry_attempts,
            retry_budget=calls.retry_budget_seconds,
            retry_initial_wait=calls.retry_initial_wait_seconds,
        )
    except ValueError as error:
        raise PermanentError(
            f"invalid PaperCut configuration: {error}", operation="configure"
        ) from None


PLUGIN = ConnectorPlugin(NAME, PaperCutConfig, build)
