"""What a connector is: the :class:`Connector` protocol, the :class:`PrintAccount` it converges
to, and the :class:`ConnectorPlugin` through which a connector module declares itself.

Actors build a :class:`PrintAccount` from the current user record and hand it
to a :class:`Connector`. Every method is synchronous (it runs on a worker
thread), idempotent and level-triggered: it converges the print system to the
state it is given, whatever the state was before. Failures are raised as the
classes of :mod:`workers.errors`.

A connector module declares one :class:`ConnectorPlugin`: the connector's name (stored in the
tenant's ``connector`` column), the pydantic model of its configuration (stored as JSON in
``connector_config``) and how it is built from a validated configuration and a
:class:`BuildContext` (the tenant, the worker's settings and the secrets mapping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from storage.blocking import BlockingDatabase
from workers.settings import WorkerSettings

__all__ = [
    "PROFILE",
    "BuildContext",
    "ConfigT",
    "Connector",
    "ConnectorPlugin",
    "Drift",
    "GroupPending",
    "GroupUnavailable",
    "InvalidConfig",
    "PrintAccount",
    "account_drift",
    "compare_accounts",
]


#: The text fields of a :class:`PrintAccount` besides its username: a user's profile as the print
#: system shows it (an empty string clears the property downstream).
PROFILE: Final = (
    "full_name",
    "email",
    "department",
    "office",
    "card_number",
    "secondary_card_number",
)


@dataclass(frozen=True, slots=True)
class PrintAccount:
    """The print-system user for one SCIM user, as it should be.

    Every text field is a string; an empty string means "no value" and clears
    the property downstream. Card numbers are left out of ``repr`` so that the
    object can appear in logs. ``groups`` holds print-system group names; it is
    de-duplicated, keeping the first spelling of each name.
    """

    username: str
    full_name: str = ""
    email: str = ""
    department: str = ""
    office: str = ""
    card_number: str = field(default="", repr=False)
    secondary_card_number: str = field(default="", repr=False)
    groups: tuple[str, ...] = ()
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.username or self.username != self.username.strip():
            raise ValueError("username must be non-empty without surrounding whitespace")
        for name in PROFILE:
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string")
        groups = tuple(self.groups)
        if any(not isinstance(group, str) or not group.strip() for group in groups):
            raise ValueError("group names must be non-empty strings")
        unique: dict[str, str] = {}
        for group in groups:
            unique.setdefault(group.casefold(), group)
        object.__setattr__(self, "groups", tuple(unique.values()))

    @classmethod
    def of(cls, username: str, source: object, *, enabled: bool) -> PrintAccount:
        """The account named ``username`` with the :data:`PROFILE` fields and the ``groups`` of
        ``source`` (a user as the account should reflect it, an account read back); a value of
        the wrong type raises :class:`TypeError`."""
        copied = {name: getattr(source, name) for name in (*PROFILE, "groups")}
        return cls(username, **copied, enabled=enabled)


@runtime_checkable
class Connector(Protocol):
    """A print system that printsync keeps in line with the directory.

    Implementations must be safe to call from several worker threads at once.
    """

    @property
    def name(self) -> str:
        """Short constant name, used as the ``connector`` metric label."""
        ...

    def account_name(self, username: str) -> str:
        """The print system's username for a SCIM ``userName`` (no network call).

        Two userNames that map to one name would share an account: the effects refuse the
        second user (a permanent error naming both) instead of merging them. Every other method
        takes the SCIM userName and maps it itself.
        """
        ...

    def ensure_account(self, account: PrintAccount) -> None:
        """Create the account, or update it if it already exists.

        Sets full name, e-mail, department, office and both card numbers;
        printing is enabled when ``account.enabled`` is true and disabled
        otherwise. Group membership becomes exactly ``account.groups`` among
        the groups this connector manages: missing memberships are added
        (creating the group if needed) and extra ones removed. Memberships of
        groups the connector does not manage are left alone.
        """
        ...

    def rename_account(self, old: str, new: str) -> None:
        """Move the account of userName ``old`` to userName ``new``, keeping it (balance, cards,
        groups, history).

        Does nothing when there is no account under ``old``, when both map to one name, or when
        an account under ``new`` exists already (``ensure_account`` then updates that one).
        """
        ...

    def check(self) -> str:
        """A harmless call that needs the credentials: a one-line description of the print
        system on success, a :mod:`workers.errors` class otherwise (the connection test)."""
        ...

    def revoke_access(self, username: str) -> None:
        """Stop the user from printing and releasing jobs.

        Disables printing, clears both card numbers and the card PIN and
        removes every group membership. A user who does not exist counts as
        revoked: the call returns normally.
        """
        ...

    def delete_account(self, username: str, *, redact: bool = True) -> None:
        """Delete the account, redacting its personal data if ``redact``.

        A user who does not exist counts as deleted.
        """
        ...

    def ensure_group(self, name: str) -> None:
        """Make sure the group exists.

        A print system that adds groups in the background raises :class:`GroupPending` while
        it is still adding it (the caller looks again later), and one that cannot hold the
        group at all raises :class:`GroupUnavailable` with the reason.
        """
        ...

    def add_group_members(self, name: str, usernames: Sequence[str]) -> None:
        """Add the existing accounts among ``usernames`` to the existing group ``name``.

        Called once a group is in the print system, for members whose accounts were brought
        in line before it was. Accounts that do not exist are left out (their own effects
        create them, with the group).
        """
        ...

    def delete_group(self, name: str) -> None:
        """Delete the group; a group that does not exist counts as deleted."""
        ...

    def rename_group(self, old: str, new: str) -> None:
        """Give group ``old`` the name ``new``, keeping its members.

        If ``old`` no longer exists and ``new`` does, the rename is done; if
        neither exists, ``new`` is created.
        """
        ...

    def find_drift(self, desired: Mapping[str, PrintAccount | None]) -> Iterator[Drift]:
        """Compare the print system with ``desired`` and yield each account that drifted.

        ``desired`` holds one page of the accounts printsync manages (a reconcile calls this
        once per page of the tenant's users, ``PRINTSYNC_RECONCILE_PAGE_SIZE`` at most): it
        maps the casefolded username of each to the account as it should be, or to ``None``
        when its access is revoked (no printing, no cards, no managed groups). The connector
        reads only the accounts of ``desired`` (by name), never every account of the print
        system for each page; accounts not in ``desired`` are never read in detail nor changed.
        An account that should exist and does not is reported as ``account missing``. Nothing
        is changed.
        """
        ...


class GroupPending(Exception):
    """The print system is still adding the group in the background."""


class GroupUnavailable(Exception):
    """The print system cannot hold the group; ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Drift:
    """An account that is not as printsync left it: ``problems`` in words (``printing
    enabled``, ``e-mail``, ``missing from group Staff``); never the values, which may be card
    numbers."""

    username: str
    problems: tuple[str, ...]


_COMPARED = (
    ("full_name", "full name"),
    ("email", "e-mail"),
    ("department", "department"),
    ("office", "office"),
    ("card_number", "card number"),
    ("secondary_card_number", "secondary card number"),
)


def account_drift(
    desired: PrintAccount | None,
    actual: PrintAccount | None,
    *,
    holds: Callable[[str], bool],
    manages: Callable[[str], bool],
) -> tuple[str, ...]:
    """What differs between the account as it should be (``None``: access revoked) and as
    it is (``None``: it does not exist).

    Only groups the print system ``holds`` can be missing, and only groups the connector
    ``manages`` can be extra. Group names compare case-insensitively.
    """
    if actual is None:
        return ("account missing",) if desired is not None and desired.enabled else ()
    problems: list[str] = []
    if desired is None or not desired.enabled:
        if actual.enabled:
            problems.append("printing enabled")
        problems += [words for name, words in _COMPARED[4:] if getattr(actual, name)]
        wanted: set[str] = set()
    else:
        if not actual.enabled:
            problems.append("printing disabled")
        problems += [
            words for name, words in _COMPARED if getattr(desired, name) != getattr(actual, name)
        ]
        wanted = {group.casefold() for group in desired.groups}
        have = {group.casefold() for group in actual.groups}
        problems += [
            f"missing from group {group}"
            for group in desired.groups
            if group.casefold() not in have and holds(group)
        ]
    problems += [
        f"in group {group}"
        for group in actual.groups
        if group.casefold() not in wanted and manages(group)
    ]
    return tuple(problems)


def compare_accounts(
    desired: Mapping[str, PrintAccount | None],
    found: Iterable[PrintAccount],
    *,
    holds: Callable[[str], bool],
    manages: Callable[[str], bool],
) -> Iterator[Drift]:
    """:meth:`Connector.find_drift` from the accounts a connector ``found`` among those in
    ``desired`` (keyed by casefolded username): each one that drifted, then each one that
    should exist and was not found."""
    seen: set[str] = set()
    for actual in found:
        key = actual.username.casefold()
        if key not in desired:
            continue
        seen.add(key)
        problems = account_drift(desired[key], actual, holds=holds, manages=manages)
        if problems:
            yield Drift(actual.username, problems)
    for key, wanted in desired.items():
        if key not in seen and wanted is not None:
            problems = account_drift(wanted, None, holds=holds, manages=manages)
            if problems:
                yield Drift(wanted.username, problems)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a connector may use when it is built for one tenant.

    ``secrets`` maps variable names to values (the worker's process environment, handed down by
    the process's entry point): a configuration names the variable that holds a secret, never
    the secret itself.
    """

    tenant_id: int
    tenant_name: str
    store: BlockingDatabase
    settings: WorkerSettings
    secrets: Mapping[str, str]


class InvalidConfig(ValueError):
    """A connector configuration that the connector's model refuses.

    ``problems`` pairs each offending field (``""`` for the configuration as a whole) with what is
    wrong with it; the text never repeats the value, which may come from an operator's typo of a
    secret.
    """

    def __init__(self, connector: str, problems: Sequence[tuple[str, str]]) -> None:
        self.connector = connector
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(f"{name}: {message}" if name else message for name, message in self.problems)
        )


@dataclass(frozen=True, slots=True)
class ConnectorPlugin(Generic[ConfigT]):
    """A connector as the registry knows it: its name, its configuration model, its builder.

    ``build`` receives the validated configuration and the :class:`BuildContext`; it raises a
    :class:`~workers.errors.PermanentError` when the connector cannot work as configured (a
    secret variable that is not set, say).
    """

    name: str
    config: type[ConfigT]
    build: Callable[[ConfigT, BuildContext], Connector]

    def parse(self, raw: Mapping[str, Any]) -> ConfigT:
        """The configuration ``raw`` validated by the model; :class:`InvalidConfig` if it is
        not valid."""
        try:
            return self.config.model_validate(raw)
        except ValidationError as error:
            raise InvalidConfig(self.name, [_problem(item) for item in error.errors()]) from None

    def dump(self, config: ConfigT) -> dict[str, Any]:
        """The JSON form of ``config`` to store: the fields that were given, as validated."""
        return config.model_dump(mode="json", exclude_unset=True)

    def connect(self, raw: Mapping[str, Any], context: BuildContext) -> Connector:
        """Validate ``raw`` and build the connector from it."""
        return self.build(self.parse(raw), context)


def _problem(error: ErrorDetails) -> tuple[str, str]:
    name = ".".join(str(part) for part in error["loc"])
    context = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in context:
        # A validator's own ValueError: its text, without pydantic's "Value error, " prefix.
        return name, str(context["error"])
    return name, error["msg"]
