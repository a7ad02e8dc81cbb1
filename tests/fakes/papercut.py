"""A fake PaperCut NG/MF Web Services server for tests, at least as strict as the real one.

It speaks XML-RPC on ``127.0.0.1`` at ``/rpc/api/xmlrpc`` with the real ``api.<method>`` names.
Where each behaviour comes from:

- Endpoint, ``api.`` method names, the auth token as the first parameter of every call, string
  property values: PaperCut's manual, "The XML Web Services API" (tools-web-services).
- Fault codes (since PaperCut 19.2): the ``WebServices Error Codes`` page of the
  ``PaperCutSoftware/PaperCutExamples`` wiki: 257 general/unknown, 258 password blank, 259
  username blank, 261 property invalid, 262 user cannot be found, 263 group cannot be found, 268
  e-mail not unique, 270 password only on internal users, 271-273 PIN invalid / not unique / too
  short. A method refusal with no code of its own in that table (a user that already exists, a
  username PaperCut does not accept) answers 257.
- A wrong auth token, or a caller whose address is not in ``auth.webservices.allowed-addresses``,
  is refused with a fault as well. The table lists no code for either: the fake answers 257, the
  general one, and the connector tells them from other refusals by a second, harmless call, not
  by the code or the text. Public clients (``PaperCutExamples`` scripts, the
  ``ServerCommandProxy`` clients) see both as ``xmlrpc.client.Fault``, and a refused address
  reads "Access denied. Your IP address is not allowed to access the Web Services API.". The
  wording for a wrong token is not documented, so this fake's is deliberately plain ("Access
  denied.").
- Internal usernames may not contain ``@``, ``/`` or ``\\``, and every username is stored in lower
  case, so lookups ignore case (PaperCut's manual, "Internal users (users managed by PaperCut
  NG/MF)": "Usernames are stored ... as all lower case", internal usernames "must not contain /,
  \\ or @"). ``addNewUser`` adds only a user of the directory
  source (the manual and ``ServerCommandProxy.addNewUser``: "assuming the user exists in the
  OS/Network/Domain user directory"): seed that directory with ``directory``.
- ``renameUserAccount`` keeps the account: balance, cards, properties and groups move to the new
  name (``ServerCommandProxy.renameUserAccount``: "so that usage history can be maintained").
- ``getTotalUsers`` answers the number of users (the manual's method list).

Switches simulate what is not PaperCut's fault: answer with an HTTP status such as 503 (for a
number of requests, or for a while), or hang before answering. ``unique_emails`` (on by default)
refuses a second user with the same e-mail (268), as a server configured for unique e-mail does.

Use the ``papercut_server`` fixture, or ``papercut_server_factory`` to start
servers with other options. Import them into a test module or a conftest under
their ``_fixture`` names, so that test parameters do not shadow the import::

    from tests.fakes.papercut import papercut_server_fixture  # noqa: F401
"""

from __future__ import annotations

import collections
import io
import socketserver
import threading
import time
import xmlrpc.client
import xmlrpc.server
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest

from tests.fakes import FakeServer

__all__ = [
    "DEFAULT_TOKEN",
    "RPC_PATH",
    "FakePaperCutServer",
    "papercut_server",
    "papercut_server_factory",
    "papercut_server_factory_fixture",
    "papercut_server_fixture",
]

RPC_PATH = "/rpc/api/xmlrpc"
DEFAULT_TOKEN = "fake-papercut-token"

#: Properties a new internal user starts with; ``card-pin`` and ``password``
#: can be set but not read back, as in PaperCut.
_INITIAL_PROPERTIES = {
    "full-name": "",
    "email": "",
    "department": "",
    "office": "",
    "notes": "",
    "primary-card-number": "",
    "secondary-card-number": "",
    "card-pin": "",
    "disabled-print": "false",
    "restricted": "false",
    "balance": "0.00",
    "internal": "true",
    "password": "",
}
_WRITE_ONLY = frozenset({"card-pin", "password"})
_READ_ONLY = frozenset({"internal"})
_BOOLEAN = frozenset({"disabled-print", "restricted"})


#: PaperCut's fault codes (the ``WebServices Error Codes`` table) that this fake answers.
GENERAL = 257
PASSWORD_BLANK = 258
USERNAME_BLANK = 259
PROPERTY_INVALID = 261
USER_NOT_FOUND = 262
GROUP_NOT_FOUND = 263
EMAIL_NOT_UNIQUE = 268
PASSWORD_ONLY_INTERNAL = 270
PIN_INVALID = 271
PIN_NOT_UNIQUE = 272
PIN_TOO_SHORT = 273

#: What an internal username may not contain.
_FORBIDDEN_IN_USERNAME = ("@", "/", "\\")
#: The answer to a caller whose address is not allowed.
ADDRESS_REFUSED = "Access denied. Your IP address is not allowed to access the Web Services API."


class _Refused(xmlrpc.client.Fault):
    def __init__(self, message: str, code: int = GENERAL) -> None:
        super().__init__(code, message)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Refused(f"{what} must be a string, got {type(value).__name__}")
    return value


def _key(value: object) -> str:
    """A username as PaperCut keeps it: in lower case."""
    return _text(value, "username").lower()


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Refused(f"{what} must be a non-negative integer")
    return value


# -- Directory groups, background tasks and reads for reconciling -------------------------------
#
# Where the behaviour comes from:
# - addNewGroup: PaperCut's ServerCommandProxy (the Java client shipped with the server) says the
#   caller must make sure the group "exists in the linked user directory source" and that the
#   method's status "may be monitored with calls to getTaskStatus()": the group is added by a
#   background task. The fake adds a group only if it is in ``directory_groups`` (``None``: the
#   directory holds every name), after ``group_task_seconds``.
# - getTaskStatus: the same client sends it with no parameters at all (not even the auth
#   token) and reads a struct ``{"completed": bool, "message": str}`` about "the current or
#   latest task started via this API"; public TypeScript clients do the same.
# - What a task that cannot find the group does is not documented; here it completes, adds
#   nothing, and its message says the group was not found in the directory.
# - listUserAccounts(offset, limit) and listUserGroups(offset, limit): pages sorted by name,
#   1000 recommended (client docs); getUserProperties(user, names): values in the order asked;
#   getUserGroups(user): the user's group names.


class _DirectoryGroupsApi:
    """addNewGroup from the directory source in the background, and getTaskStatus."""

    _fake: FakePaperCutServer

    def addNewGroup(self, group: object) -> bool:
        name = _text(group, "group name")
        if not name.strip():
            raise _Refused("group name is required")
        if self._fake.find_group(name) is not None:
            raise _Refused(f"Group already exists: {name}")
        self._fake.start_group_task(name)
        return True

    def getTaskStatus(self) -> dict[str, object]:
        return self._fake.task_status()


#: Methods PaperCut answers without the auth token.
_WITHOUT_TOKEN = frozenset({"getTaskStatus"})


class _Api(_DirectoryGroupsApi):
    """The PaperCut methods; each takes the parameters after the auth token."""

    def __init__(self, fake: FakePaperCutServer) -> None:
        self._fake = fake

    # Users

    def isUserExists(self, user: object) -> bool:
        return _key(user) in self._fake.users

    def getTotalUsers(self) -> int:
        return len(self._fake.users)

    def addNewInternalUser(
        self,
        user: object,
        password: object,
        full_name: object,
        email: object,
        card_id: object,
        pin: object,
    ) -> bool:
        name = _key(user)
        if not name:
            raise _Refused("Username cannot be blank", USERNAME_BLANK)
        if any(character in name for character in _FORBIDDEN_IN_USERNAME):
            raise _Refused(f"Invalid username for an internal user: {name}")
        if name in self._fake.users:
            raise _Refused(f"User already exists: {name}")
        properties = dict(_INITIAL_PROPERTIES)
        properties["password"] = _text(password, "password")
        if not properties["password"]:
            raise _Refused("Password cannot be blank", PASSWORD_BLANK)
        for key, value, what in (
            ("full-name", full_name, "full name"),
            ("email", email, "email"),
            ("primary-card-number", card_id, "card number"),
            ("card-pin", pin, "PIN"),
        ):
            self._write(name, properties, key, _text(value, what))
        self._fake.users[name] = properties
        return True

    def addNewUser(self, user: object) -> bool:
        name = _key(user)
        if name not in self._fake.directory:
            raise _Refused(f"User does not exist in the user directory: {name}")
        if name not in self._fake.users:
            self._fake.users[name] = dict(_INITIAL_PROPERTIES, internal="false")
        return True

    def getUserProperty(self, user: object, name: object) -> str:
        return self._read(self._user(user), _text(name, "property name"))

    def getUserProperties(self, user: object, names: object) -> list[str]:
        properties = self._user(user)
        if not isinstance(names, list):
            raise _Refused("property names must be an array")
        return [self._read(properties, _text(name, "property name")) for name in names]

    def setUserProperty(self, user: object, name: object, value: object) -> bool:
        properties = self._user(user)
        staged = dict(properties)
        self._write(_key(user), staged, _text(name, "property name"), _text(value, "value"))
        properties.update(staged)
        return True

    def setUserProperties(self, user: object, pairs: object) -> bool:
        properties = self._user(user)
        if not isinstance(pairs, list):
            raise _Refused("properties must be an array of [name, value] arrays")
        checked: list[tuple[str, str]] = []
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _Refused("each property must be a [name, value] array")
            checked.append((_text(pair[0], "property name"), _text(pair[1], "property value")))
        staged = dict(properties)
        for name, value in checked:
            self._write(_key(user), staged, name, value)
        properties.update(staged)
        return True

    def renameUserAccount(self, old: object, new: object) -> bool:
        old_name, new_name = _key(old), _key(new)
        properties = self._user(old_name)
        if not new_name:
            raise _Refused("Username cannot be blank", USERNAME_BLANK)
        if new_name in self._fake.users:
            raise _Refused(f"User already exists: {new_name}")
        del self._fake.users[old_name]
        self._fake.users[new_name] = properties
        for members in self._fake.groups.values():
            if old_name in members:
                members.discard(old_name)
                members.add(new_name)
        return True

    def deleteExistingUser(self, user: object, redact: object) -> bool:
        name = _key(user)
        self._user(name)
        if not isinstance(redact, bool):
            raise _Refused("redact must be a boolean")
        del self._fake.users[name]
        for members in self._fake.groups.values():
            members.discard(name)
        self._fake.deleted.append((name, redact))
        return True

    def listUserAccounts(self, offset: object, limit: object) -> list[str]:
        start = _count(offset, "offset")
        return sorted(self._fake.users)[start : start + _count(limit, "limit")]

    def lookUpUserNameByCardNo(self, card: object) -> str:
        number = _text(card, "card number")
        for name, properties in sorted(self._fake.users.items()):
            if number and number in (
                properties["primary-card-number"],
                properties["secondary-card-number"],
            ):
                return name
        return ""

    # Groups

    def getUserGroups(self, user: object) -> list[str]:
        name = _key(user)
        self._user(name)
        return sorted(group for group, members in self._fake.groups.items() if name in members)

    def addUserToGroup(self, user: object, group: object) -> bool:
        name = _key(user)
        self._user(name)
        self._members(group, changing=True).add(name)
        return True

    def removeUserFromGroup(self, user: object, group: object) -> bool:
        name = _key(user)
        self._user(name)
        self._members(group, changing=True).discard(name)
        return True

    def getGroupMembers(self, group: object, offset: object, limit: object) -> list[str]:
        start = _count(offset, "offset")
        members = sorted(self._members(group))
        return members[start : start + _count(limit, "limit")]

    def isGroupExists(self, group: object) -> bool:
        return self._fake.find_group(_text(group, "group name")) is not None

    def removeGroup(self, group: object) -> bool:
        name = _text(group, "group name")
        existing = self._fake.find_group(name)
        if existing is None:
            raise _Refused(f"Group does not exist: {name}")
        if existing.startswith("["):
            raise _Refused(f"Built-in group cannot be removed: {existing}")
        del self._fake.groups[existing]
        return True

    def listUserGroups(self, offset: object, limit: object) -> list[str]:
        start = _count(offset, "offset")
        return sorted(self._fake.groups)[start : start + _count(limit, "limit")]

    # Helpers

    def _user(self, user: object) -> dict[str, str]:
        name = _key(user)
        try:
            return self._fake.users[name]
        except KeyError:
            raise _Refused(f"User does not exist: {name}", USER_NOT_FOUND) from None

    def _members(self, group: object, *, changing: bool = False) -> set[str]:
        name = _text(group, "group name")
        existing = self._fake.find_group(name)
        if existing is None:
            raise _Refused(f"Group does not exist: {name}", GROUP_NOT_FOUND)
        if changing and existing.startswith("["):
            raise _Refused(f"Built-in group membership cannot be changed: {existing}")
        return self._fake.groups[existing]

    @staticmethod
    def _read(properties: dict[str, str], name: str) -> str:
        if name not in properties or name in _WRITE_ONLY:
            raise _Refused(f"Unknown or unreadable property: {name}", PROPERTY_INVALID)
        return properties[name]

    def _write(self, user: str, properties: dict[str, str], name: str, value: str) -> None:
        if name not in properties or name in _READ_ONLY:
            raise _Refused(f"Unknown or read-only property: {name}", PROPERTY_INVALID)
        if name in _BOOLEAN and value not in ("true", "false"):
            raise _Refused(f"Property {name} takes 'true' or 'false'", PROPERTY_INVALID)
        if name == "password" and properties.get("internal") != "true":
            raise _Refused("Password can only be set on internal users", PASSWORD_ONLY_INTERNAL)
        if name == "email" and value and self._fake.unique_emails:
            for other, values in self._fake.users.items():
                if other != user and values["email"].lower() == value.lower():
                    raise _Refused("Email is not unique", EMAIL_NOT_UNIQUE)
        if name == "card-pin" and value:
            if not value.isdigit():
                raise _Refused("PIN is invalid", PIN_INVALID)
            if len(value) < self._fake.min_pin_length:
                raise _Refused("PIN doesn't contain enough characters", PIN_TOO_SHORT)
            for other, values in self._fake.users.items():
                if other != user and values["card-pin"] == value:
                    raise _Refused("PIN is not unique", PIN_NOT_UNIQUE)
        properties[name] = value


class _Dispatcher:
    """Checks the token and routes ``api.<method>`` to :class:`_Api`."""

    def __init__(self, fake: FakePaperCutServer) -> None:
        self._fake = fake
        self._api = _Api(fake)

    def _dispatch(self, method: str, params: tuple[Any, ...]) -> object:
        prefix, _, name = method.partition(".")
        handler: Callable[..., object] | None = getattr(self._api, name, None)
        if prefix != "api" or name.startswith("_") or handler is None:
            raise _Refused(f"Unknown method: {method}")
        arguments = tuple(params) if name in _WITHOUT_TOKEN else tuple(params[1:])
        if self._fake.refuse_address:
            raise _Refused(ADDRESS_REFUSED)
        if name not in _WITHOUT_TOKEN and (not params or params[0] != self._fake.token):
            raise _Refused("Access denied.")
        with self._fake.lock:
            self._fake.finish_tasks()
            hook = self._fake.before.get(method)
            if hook is not None:
                hook(arguments)
            try:
                return handler(*arguments)
            except TypeError:
                raise _Refused(f"Wrong number of parameters for {method}") from None


class _Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
    rpc_paths = (RPC_PATH,)
    server: _HttpServer

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception:
            params, method = (), None
        status, delay = fake.admit(method or "<unparseable>", params)
        if delay > 0 and fake.wait_released(delay):
            return
        if status is not None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.rfile = io.BytesIO(body)
        super().do_POST()

    def log_message(self, fmt: str, *args: Any) -> None:
        """Keep test output quiet."""


class _HttpServer(socketserver.ThreadingMixIn, xmlrpc.server.SimpleXMLRPCServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakePaperCutServer) -> None:
        self.fake = fake
        super().__init__(
            ("127.0.0.1", 0),
            requestHandler=_Handler,
            logRequests=False,
            allow_none=False,
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (timeouts) close their sockets; that is expected here."""


class FakePaperCutServer(FakeServer):
    """An in-process PaperCut stand-in; start it, point a connector at ``url``.

    State, for assertions and seeding (guard changes made while a client is
    running with ``lock``):

    - ``users``: username (lower case) -> property name -> string value
    - ``directory``: usernames of the directory source that ``addNewUser`` may add
    - ``groups``: group name -> set of member usernames
    - ``deleted``: ``(username, redact)`` for each ``deleteExistingUser``
    - ``calls``: how many requests each method received, including those
      answered by an outage switch; ``params`` the parameters of each request
      after the token, in order.

    ``before`` maps a method name (``"api.setUserProperties"``) to a callable
    run with the parameters after the token just before the method, under
    ``lock``: use it to change the state mid-operation, as a concurrent client
    would, or raise an ``xmlrpc.client.Fault``.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, unique_emails: bool = True) -> None:
        self.token = token
        self.unique_emails = unique_emails
        self.min_pin_length = 4
        #: Answer every call as from an address not in ``auth.webservices.allowed-addresses``.
        self.refuse_address = False
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, str]] = {}
        self.directory: set[str] = set()
        self.groups: dict[str, set[str]] = {}
        self.deleted: list[tuple[str, bool]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.params: list[tuple[str, tuple[Any, ...]]] = []
        self.before: dict[str, Callable[[tuple[Any, ...]], object]] = {}
        self._outage_status: int | None = None
        self._outage_until = 0.0
        self._failures_left = 0
        self._failure_status = 503
        self._failure_method: str | None = None
        self._hang_seconds = 0.0
        self._released = threading.Event()
        #: The directory source's groups (``None``: every name is one); see add_group.
        self.directory_groups: set[str] | None = None
        #: How long a background addNewGroup task takes.
        self.group_task_seconds = 0.0
        self._tasks: list[tuple[float, str]] = []
        self._task_message = ""
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> Self:
        if self._http is not None:
            raise RuntimeError("the fake PaperCut server is already running")
        self._released.clear()
        self._http = _HttpServer(self)
        self._http.register_instance(_Dispatcher(self))
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-papercut",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the fake PaperCut server is not running")
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{RPC_PATH}"

    # Outage switches

    def set_outage(self, status: int | None = 503) -> None:
        """Answer every request with HTTP ``status``; ``None`` ends the outage."""
        with self.lock:
            self._outage_status = status

    def set_outage_for(self, seconds: float, status: int = 503) -> None:
        """Answer every request with HTTP ``status`` for the next ``seconds``, then recover."""
        with self.lock:
            self._failure_status = status
            self._outage_until = time.monotonic() + seconds

    def fail_next(self, count: int, status: int = 503, *, method: str | None = None) -> None:
        """Answer the next ``count`` requests (to ``method`` only, if given) with
        HTTP ``status``, then recover."""
        with self.lock:
            self._failures_left = count
            self._failure_status = status
            self._failure_method = method

    def set_hang(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 answers at once)."""
        with self.lock:
            self._hang_seconds = seconds

    # Seeding and inspection

    def add_user(self, username: str, **properties: str) -> None:
        """Create an internal user (stored in lower case, as PaperCut does); keyword names use
        ``_`` for ``-``."""
        values = dict(_INITIAL_PROPERTIES, password="seeded")
        for name, value in properties.items():
            key = name.replace("_", "-")
            if key not in values:
                raise KeyError(key)
            values[key] = value
        with self.lock:
            self.users[username.lower()] = values

    def add_group(self, name: str, members: tuple[str, ...] = ()) -> None:
        with self.lock:
            self.groups[name] = {member.lower() for member in members}

    def find_group(self, name: str) -> str | None:
        """The stored spelling of group ``name``, compared case-insensitively."""
        key = name.casefold()
        return next((group for group in self.groups if group.casefold() == key), None)

    def user_groups(self, username: str) -> set[str]:
        with self.lock:
            return {group for group, members in self.groups.items() if username.lower() in members}

    # Directory groups and background tasks

    def set_directory(self, *names: str, task_seconds: float | None = None) -> None:
        """The groups of the user directory source (what addNewGroup can add), and how long
        the add task takes."""
        with self.lock:
            self.directory_groups = set(names)
            if task_seconds is not None:
                self.group_task_seconds = task_seconds

    def start_group_task(self, name: str) -> None:
        with self.lock:
            self._tasks.append((time.monotonic() + self.group_task_seconds, name))
            self._task_message = f"Adding group {name}"
            self.finish_tasks()

    def finish_tasks(self) -> None:
        """Apply the add tasks whose time has come (called before every request)."""
        with self.lock:
            now = time.monotonic()
            for due, name in [task for task in self._tasks if task[0] <= now]:
                self._tasks.remove((due, name))
                directory = self.directory_groups
                found = (
                    name
                    if directory is None
                    else next((g for g in directory if g.casefold() == name.casefold()), None)
                )
                if found is None:
                    self._task_message = f"Group not found in the user directory: {name}"
                elif self.find_group(found) is None:
                    self.groups[found] = set()
                    self._task_message = f"Group added: {found}"

    def task_status(self) -> dict[str, object]:
        with self.lock:
            return {"completed": not self._tasks, "message": self._task_message}

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.params.clear()

    # Used by the request handler

    def admit(self, method: str, params: tuple[Any, ...]) -> tuple[int | None, float]:
        """Record a request; return the HTTP status to fail it with and the delay."""
        with self.lock:
            self.calls[method] += 1
            self.params.append((method, tuple(params[1:])))
            status = self._outage_status
            if status is None and time.monotonic() < self._outage_until:
                status = self._failure_status
            if (
                status is None
                and self._failures_left > 0
                and self._failure_method in (None, method)
            ):
                self._failures_left -= 1
                status = self._failure_status
            return status, self._hang_seconds

    def wait_released(self, seconds: float) -> bool:
        """Sleep for ``seconds``; true if the server is being stopped meanwhile."""
        return self._released.wait(seconds)


@pytest.fixture(name="papercut_server")
def papercut_server_fixture() -> Iterator[FakePaperCutServer]:
    """A running fake PaperCut server with the default token."""
    with FakePaperCutServer() as server:
        yield server


@pytest.fixture(name="papercut_server_factory")
def papercut_server_factory_fixture() -> Iterator[Callable[..., FakePaperCutServer]]:
    """Start fake PaperCut servers with custom options; all stop after the test."""
    servers: list[FakePaperCutServer] = []

    def start(token: str = DEFAULT_TOKEN, *, unique_emails: bool = True) -> FakePaperCutServer:
        server = FakePaperCutServer(token=token, unique_emails=unique_emails).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# The fixtures under their own names too, for ``from ... import papercut_server``.
papercut_server = papercut_server_fixture
papercut_server_factory = papercut_server_factory_fixture
