"""What a write changed, in the few words the provisioning log keeps of it.

The resource engine (``storage.resources``) computes a :class:`Changes` from what the write
already holds (the old and new client attributes, the membership rows it changed), without any
query of its own. The API puts it in the request's context and the provisioning log stores it as
a small JSON object in the entry's ``changes`` column (:meth:`Changes.detail`); a group write also
logs one entry against each user whose membership it changed (:meth:`Changes.member_details`).

Only attribute *names* are kept, never their values: the one exception is ``active``, whose
before and after (booleans) tell "disabled" from "re-enabled". Names of users (userName) and of
groups (displayName) are kept, as the log's targets are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: The attributes a diff ignores: the server's and the envelope's.
_IGNORED: Final = frozenset({"schemas", "id", "meta", "active"})
#: Member names a group's own entry lists at most (the per-user entries carry every one).
MAX_LISTED_MEMBERS: Final = 20
#: Changed attribute names an entry lists at most.
MAX_ATTRIBUTES: Final = 40

ADDED: Final = "added"
REMOVED: Final = "removed"


@dataclass(frozen=True, slots=True)
class Member:
    """A user whose membership of a group changed."""

    id: str
    user_name: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one write of a user or group changed.

    ``name`` is the resource's userName or displayName after the write (before a delete);
    ``attributes`` the names of the client attributes whose values changed (``name.givenName``,
    ``emails``; an extension's attributes by their own names); ``active`` the value of ``active``
    before and after the write when it changed (``None``: absent); ``added`` and ``removed`` the
    users whose membership of a group the write changed; ``groups`` the groups a deleted user
    left; ``created`` whether the write created the resource.
    """

    name: str | None = None
    attributes: tuple[str, ...] = ()
    active: tuple[bool | None, bool | None] | None = None
    added: tuple[Member, ...] = ()
    removed: tuple[Member, ...] = ()
    groups: tuple[str, ...] = ()
    created: bool = False
    rewrite: bool = False
    """A PUT or PATCH: its entry lists the changed attributes even when there are none."""

    @property
    def changed(self) -> bool:
        return bool(self.attributes or self.active or self.added or self.removed)

    def detail(self) -> dict[str, Any] | None:
        """The small JSON object the resource's own entry keeps (None when there is nothing)."""
        detail: dict[str, Any] = {}
        if self.attributes or self.rewrite:
            detail["attributes"] = list(self.attributes[:MAX_ATTRIBUTES])
        if self.active is not None:
            detail["active"] = list(self.active)
        for key, members in ((ADDED, self.added), (REMOVED, self.removed)):
            if members:
                detail[key] = len(members)
                detail[f"{key}_names"] = [
                    member.user_name or member.id for member in members[:MAX_LISTED_MEMBERS]
                ]
        if self.groups:
            detail["groups"] = list(self.groups)
        return detail or None

    def member_details(self, group_id: str | None) -> list[tuple[Member, dict[str, Any]]]:
        """One (user, detail) per user whose membership of this group changed: the entry logged
        against that user, so that the user's story shows the group change."""
        group = {"id": group_id, "name": self.name}
        return [
            (member, {"membership": change, "group": group})
            for change, members in ((ADDED, self.added), (REMOVED, self.removed))
            for member in members
        ]


#: What a read changed.
NO_CHANGES: Final = Changes()


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """What a write did to a group's membership rows: whether any row changed, by how many
    members the count moves, and the users that joined or left (net, in the write's order)."""

    touched: bool = False
    delta: int = 0
    added: tuple[Member, ...] = ()
    removed: tuple[Member, ...] = ()


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the client attributes whose values differ between ``old`` and ``new``:
    top-level names, and one level down in complex attributes and extensions (``name.givenName``,
    ``department``); ``active`` and the envelope are left out."""
    names: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key in _IGNORED:
            continue
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) or isinstance(after, dict):
            inner_old = before if isinstance(before, dict) else {}
            inner_new = after if isinstance(after, dict) else {}
            prefix = "" if key.startswith("urn:") else f"{key}."
            inner = [
                f"{prefix}{sub}"
                for sub in sorted(set(inner_old) | set(inner_new))
                if inner_old.get(sub) != inner_new.get(sub)
            ]
            names.extend(inner or [key])
        else:
            names.append(key)
    return tuple(names)


def active_change(
    old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> tuple[bool | None, bool | None] | None:
    """``active`` before and after, when it changed (a create: only when the new resource is
    inactive)."""
    after = _flag(new.get("active"))
    if old is None:
        return (None, False) if after is False else None
    before = _flag(old.get("active"))
    # A user without ``active`` is active (storage.indexed derives the column the same way).
    if (True if before is None else before) == (True if after is None else after):
        return None
    return before, after


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


__all__ = [
    "ADDED",
    "NO_CHANGES",
    "REMOVED",
    "Changes",
    "Member",
    "MembershipChange",
    "active_change",
    "diff",
]
