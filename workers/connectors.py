"""The interface between effects and a print system.

Actors build a :class:`PrintAccount` from the current user record and hand it
to a :class:`Connector`. Every method is synchronous (it runs on a worker
thread), idempotent and level-triggered: it converges the print system to the
state it is given, whatever the state was before. Failures are raised as the
classes of :mod:`workers.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Connector", "PrintAccount"]


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
        for name in (
            "full_name",
            "email",
            "department",
            "office",
            "card_number",
            "secondary_card_number",
        ):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string")
        groups = tuple(self.groups)
        if any(not isinstance(group, str) or not group.strip() for group in groups):
            raise ValueError("group names must be non-empty strings")
        unique: dict[str, str] = {}
        for group in groups:
            unique.setdefault(group.casefold(), group)
        object.__setattr__(self, "groups", tuple(unique.values()))


@runtime_checkable
class Connector(Protocol):
    """A print system that printsync keeps in line with the directory.

    Implementations must be safe to call from several worker threads at once.
    """

    @property
    def name(self) -> str:
        """Short constant name, used as the ``connector`` metric label."""
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
        """Make sure the group exists."""
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
