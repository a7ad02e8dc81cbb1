"""PaperCut NG/MF connector over the XML-RPC Web Services API.

Calls go to ``/rpc/api/xmlrpc`` as ``api.<method>``, with the auth token as the
first parameter. Every property value is a string (``"true"``, ``""``), never
``None``. Each worker thread gets its own ``ServerProxy``; a proxy shared by
several threads corrupts its connection. The transport sets a socket timeout,
because ``ServerProxy`` has no timeout of its own and a blocked call cannot be
interrupted by Dramatiq's time limit.

Failures leave this module as :mod:`workers.errors` classes:

- ``xmlrpc.client.Fault`` (a refusal by PaperCut) is a ``PermanentError``, an
  ``AuthenticationError`` when the fault text is clearly about the auth token
  or access rights. Fault codes are not documented, so existence is checked
  with ``isUserExists`` / ``isGroupExists`` before and after a refusal instead
  of parsing them.
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
database), and optionally ``managed_group_prefix`` and ``restrict_on_revoke``. The token is looked
up in the secrets mapping each time the connector is built.

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

import http.client
import re
import secrets
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit
from xml.parsers.expat import ExpatError

import structlog
import tenacity
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
from workers.errors import (
    AuthenticationError,
    DownstreamError,
    NotFoundError,
    PermanentError,
    TransientError,
)

__all__ = ["NAME", "PLUGIN", "RPC_PATH", "PaperCutConfig", "PaperCutConnector", "endpoint"]

NAME = "papercut"
RPC_PATH = "/rpc/api/xmlrpc"

# What an XML-RPC parameter may be here: strings, integers for paging, booleans
# where the API asks for one, and lists of string pairs for properties.
_Param: TypeAlias = str | int | bool | list[str] | list[list[str]]

_log = structlog.get_logger(__name__)

_AUTH_FAULT = re.compile(
    r"auth|token|permission|access denied|not allowed|unauthori[sz]ed|forbidden",
    re.IGNORECASE,
)
_TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
_AUTH_HTTP_STATUSES = frozenset({401, 403})
_SERVER_ERROR = 500
_MAX_DETAIL = 300
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
    managed_group_prefix: str = ""
    restrict_on_revoke: bool = False

    @field_validator("url")
    @classmethod
    def _endpoint_url(cls, value: str) -> str:
        endpoint(value)
        return value


class _TimeoutTransport(xmlrpc.client.Transport):
    """HTTP transport whose connections time out after ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: tuple[str, dict[str, str]] | str) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


class _TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS transport whose connections time out after ``timeout`` seconds."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None) -> None:
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(
        self, host: tuple[str, dict[str, str]] | str
    ) -> http.client.HTTPSConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


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
        self._url = endpoint(url)
        self._token = token
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._managed_prefix = managed_group_prefix.casefold()
        self._restrict_on_revoke = restrict_on_revoke
        self._group_wait = group_wait_seconds
        self._local = threading.local()
        self._retrying = tenacity.Retrying(
            stop=(
                tenacity.stop_after_attempt(retry_attempts)
                | tenacity.stop_before_delay(retry_budget)
            ),
            wait=(
                tenacity.wait_exponential(
                    multiplier=retry_initial_wait, max=max(retry_initial_wait, retry_budget / 2)
                )
                + tenacity.wait_random(0, retry_initial_wait)
            ),
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=self._log_retry,
            reraise=True,
        )

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

    def ensure_account(self, account: PrintAccount) -> None:
        username = account.username
        if not self._user_exists(username):
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

    def revoke_access(self, username: str) -> None:
        if not self._user_exists(username):
            return
        properties = [
            ["disabled-print", "true"],
            ["primary-card-number", ""],
            ["secondary-card-number", ""],
            ["card-pin", ""],
        ]
        if self._restrict_on_revoke:
            properties.append(["restricted", "true"])
        try:
            # Blocking printing comes first: it also stops held jobs from being released.
            self._set_properties(username, properties)
            for group in self._user_groups(username):
                if not _is_builtin_group(group):
                    self._call("removeUserFromGroup", username, group, idempotent=False)
        except PermanentError as error:
            if self._refusal_means_missing_user(username, error):
                return
            raise

    def delete_account(self, username: str, *, redact: bool = True) -> None:
        if not self._user_exists(username):
            return
        try:
            self._call("deleteExistingUser", username, redact, idempotent=False)
        except PermanentError as error:
            if self._refusal_means_missing_user(username, error):
                return
            raise

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
        for username in usernames:
            if username.casefold() in present or not self._user_exists(username):
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
                detail = f": {self._detail(message)}" if message.strip() else ""
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

        # Accounts printsync does not manage are listed, never read in detail nor touched.
        found = (
            account
            for username in self.iter_usernames()
            if username.casefold() in desired
            and (account := self.fetch_account(username)) is not None
        )
        return compare_accounts(desired, found, holds=holds, manages=self._manages)

    def _all_groups(self) -> Iterator[str]:
        offset = 0
        while True:
            page = self._string_list(
                "listUserGroups",
                self._call("listUserGroups", offset, _PAGE_SIZE, idempotent=True),
            )
            yield from page
            if len(page) < _PAGE_SIZE:
                return
            offset += _PAGE_SIZE

    # -- Reads used by reconciliation ----------------------------------------

    def iter_usernames(self, page_size: int = _PAGE_SIZE) -> Iterator[str]:
        """Yield every PaperCut username, a page of ``page_size`` at a time."""
        offset = 0
        while True:
            page = self._string_list(
                "listUserAccounts",
                self._call("listUserAccounts", offset, page_size, idempotent=True),
            )
            yield from page
            if len(page) < page_size:
                return
            offset += page_size

    def fetch_account(self, username: str) -> PrintAccount | None:
        """Read an account back from PaperCut; ``None`` if it does not exist."""
        try:
            values = self._string_list(
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
        proxy = cast("xmlrpc.client.ServerProxy | None", getattr(self._local, "proxy", None))
        if proxy is not None:
            proxy("close")()
            del self._local.proxy

    # -- Steps ------------------------------------------------------------

    def _user_exists(self, username: str) -> bool:
        return self._bool("isUserExists", self._call("isUserExists", username, idempotent=True))

    def _group_exists(self, name: str) -> bool:
        return self._bool("isGroupExists", self._call("isGroupExists", name, idempotent=True))

    def _user_groups(self, username: str) -> list[str]:
        return self._string_list(
            "getUserGroups", self._call("getUserGroups", username, idempotent=True)
        )

    def _group_members(self, name: str) -> list[str]:
        members: list[str] = []
        offset = 0
        while True:
            page = self._string_list(
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

    # -- Calls ------------------------------------------------------------

    def _call(self, method: str, *args: _Param, idempotent: bool, token: bool = True) -> object:
        """Call ``api.<method>`` with the token first (``token=False``: without it, as
        ``getTaskStatus`` takes no parameters)."""
        if idempotent:
            return self._retrying.copy()(self._call_once, method, args, token)
        return self._call_once(method, args, token)

    def _call_once(self, method: str, args: tuple[_Param, ...], token: bool = True) -> object:
        proxy = self._proxy()
        try:
            remote: Callable[..., object] = getattr(proxy, f"api.{method}")
            if not token:
                return remote(*args)
            return remote(self._token.get_secret_value(), *args)
        except xmlrpc.client.Fault as fault:
            error = self._classify_fault(method, fault)
        except xmlrpc.client.ProtocolError as exc:
            error = self._classify_status(method, exc.errcode, exc.errmsg)
        except ssl.SSLCertVerificationError as exc:
            error = PermanentError(
                f"TLS certificate rejected ({self._detail(exc)})", operation=method
            )
        except (OSError, http.client.HTTPException, ExpatError) as exc:
            # Refused, reset or timed-out connections, name resolution, broken
            # or non-XML responses from a proxy in front of PaperCut.
            error = TransientError(
                f"PaperCut unreachable ({type(exc).__name__}: {self._detail(exc)})",
                operation=method,
            )
        # Raised outside the handlers so that the client exception, whose frames
        # hold the request parameters, is not chained to the error.
        raise error

    def _classify_fault(self, method: str, fault: xmlrpc.client.Fault) -> DownstreamError:
        text = f"{fault.faultString}"
        detail = f"PaperCut refused the call (fault {fault.faultCode}: {self._detail(text)})"
        if _AUTH_FAULT.search(text):
            return AuthenticationError(detail, operation=method)
        return PermanentError(detail, operation=method)

    def _classify_status(self, method: str, status: int, reason: str) -> DownstreamError:
        detail = f"HTTP {status} {self._detail(reason)}".rstrip()
        if status >= _SERVER_ERROR or status in _TRANSIENT_HTTP_STATUSES:
            return TransientError(detail, operation=method)
        if status in _AUTH_HTTP_STATUSES:
            return AuthenticationError(detail, operation=method)
        return PermanentError(detail, operation=method)

    def _detail(self, value: object) -> str:
        """Text for an error message: single line, bounded, without the token."""
        text = " ".join(str(value).split())
        secret = self._token.get_secret_value()
        text = text.replace(secret, "[redacted]")
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 3] + "..."
        return text

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        proxy = cast("xmlrpc.client.ServerProxy | None", getattr(self._local, "proxy", None))
        if proxy is None:
            transport: xmlrpc.client.Transport
            if self._url.startswith("https:"):
                transport = _TimeoutSafeTransport(self._timeout, self._ssl_context)
            else:
                transport = _TimeoutTransport(self._timeout)
            proxy = xmlrpc.client.ServerProxy(self._url, transport=transport, allow_none=False)
            self._local.proxy = proxy
        return proxy

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        _log.warning(
            "papercut_call_retry",
            operation=state.args[0] if state.args else None,
            attempt=state.attempt_number,
            error=str(error) if isinstance(error, DownstreamError) else type(error).__name__,
        )

    @staticmethod
    def _bool(method: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise PermanentError("unexpected response type, expected a boolean", operation=method)
        return value

    @staticmethod
    def _string_list(method: str, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise PermanentError(
                "unexpected response type, expected a list of strings", operation=method
            )
        return cast("list[str]", value)


def build(config: PaperCutConfig, context: BuildContext) -> PaperCutConnector:
    """The tenant's connector; PermanentError if its token variable is not set."""
    token = SecretStr(context.secrets.get(config.token_env, ""))
    if not token.get_secret_value():
        raise PermanentError(
            f"the PaperCut token variable {config.token_env} is not set", operation="configure"
        )
    settings = context.settings
    try:
        return PaperCutConnector(
            config.url,
            token,
            settings.papercut_timeout_seconds,
            managed_group_prefix=config.managed_group_prefix,
            restrict_on_revoke=config.restrict_on_revoke,
            retry_attempts=settings.papercut_retry_attempts,
            retry_budget=settings.papercut_retry_budget_seconds,
            retry_initial_wait=settings.papercut_retry_initial_wait_seconds,
        )
    except ValueError as error:
        raise PermanentError(
            f"invalid PaperCut configuration: {error}", operation="configure"
        ) from None


PLUGIN = ConnectorPlugin(NAME, PaperCutConfig, build)
