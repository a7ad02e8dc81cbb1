"""A provisioning-log entry in plain words: what happened to a user or group.

``printsync log`` and the admin console tell a user's story from the same words: "created",
"updated displayName, department", "disabled" (``active: true -> false``), "re-enabled", "added to
group Sales", "print account created", "access revoked", "print account deleted and personal data
redacted", "update refused: userName is already taken". :func:`describe` turns one entry into an
:class:`Event`; entries written before the log kept what changed read "updated".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from storage import outbox
from storage.provisioning_log.entries import (
    CLIENT_ERROR,
    DEAD,
    EFFECT,
    FAILED,
    GROUP,
    RETRIED,
    SERVER_ERROR,
    SUCCESS,
    Entry,
)

Tone = Literal["ok", "info", "warning", "error"]

#: What a failed SCIM request was trying to do, by HTTP method.
_VERBS: Final = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
    "GET": "read",
}
#: What an effect does to the print system, for the words of its failures.
_EFFECT_NOUNS: Final = {
    outbox.ACCOUNT_SYNC: "print account update",
    outbox.ACCOUNT_DELETE: "access revocation",
    outbox.ACCOUNT_PURGE: "print account deletion",
    outbox.GROUP_SYNC: "print group update",
    outbox.GROUP_DELETE: "print group deletion",
    outbox.TENANT_RECONCILE: "comparison with the print system",
    outbox.ACCOUNT_REPAIR: "print account repair",
}
_EFFECT_DONE: Final = {
    outbox.ACCOUNT_DELETE: "access revoked (deleted in Entra)",
    outbox.ACCOUNT_PURGE: "print account deleted and personal data redacted",
    outbox.GROUP_SYNC: "print group brought in line",
    outbox.GROUP_DELETE: "print group deleted",
}
_MAX_NAMES: Final = 5


@dataclass(frozen=True, slots=True)
class Event:
    """One entry in words: ``what`` happened, a ``detail`` (``active: true -> false``, the
    reason of a failure; may be empty) and a ``tone`` for colour."""

    what: str
    detail: str = ""
    tone: Tone = "ok"

    def text(self) -> str:
        """``what`` and ``detail`` on one line."""
        return f"{self.what} ({self.detail})" if self.detail else self.what


def describe(entry: Entry) -> Event:
    """The entry in plain words."""
    if entry.source == EFFECT:
        return _effect(entry)
    if entry.source == GROUP:
        return _membership(entry.changes or {})
    return _scim(entry)


def _scim(entry: Entry) -> Event:
    method, _, resource = entry.operation.partition(" /")
    verb = _VERBS.get(method, method.lower())
    if entry.result == CLIENT_ERROR:
        return Event(f"{verb} refused", _status(entry), "warning")
    if entry.result == SERVER_ERROR:
        return Event(f"{verb} failed", _status(entry), "error")
    group = resource.startswith("Groups")
    noun = "group " if group else ""
    changes = entry.changes
    if method == "POST" and resource.endswith(".search"):
        return Event("searched", tone="info")
    if method == "GET":
        return Event("read by Entra" if entry.target_id else "looked up by Entra", tone="info")
    if method == "DELETE":
        left = (changes or {}).get("groups") or []
        detail = f"left {_names(left)}" if left else ""
        return Event(f"{noun}deleted", detail)
    if method == "POST":
        parts = [f"{noun}created"]
        if changes and changes.get("active") == [None, False]:
            parts[0] += " inactive"
        parts += _member_parts(changes or {})
        return Event(", ".join(parts))
    if changes is None:
        return Event(f"{noun}updated")
    return _rewrite(changes, noun)


def _rewrite(changes: dict[str, Any], noun: str) -> Event:
    parts: list[str] = []
    detail = ""
    active = changes.get("active")
    if isinstance(active, list) and len(active) == 2:
        before, after = active
        parts.append("disabled" if after is False else "re-enabled")
        detail = f"active: {_flag(before)} -> {_flag(after)}"
    attributes = changes.get("attributes") or []
    if attributes:
        parts.append(f"{noun}updated {', '.join(str(name) for name in attributes)}")
    parts += _member_parts(changes)
    if not parts:
        return Event("no change", tone="info")
    return Event(", ".join(parts), detail)


def _member_parts(changes: dict[str, Any]) -> list[str]:
    parts = []
    for key, verb in (("added", "added"), ("removed", "removed")):
        count = changes.get(key)
        if isinstance(count, int) and count:
            names = changes.get(f"{key}_names") or []
            listed = _names(names, count)
            parts.append(f"{_plural(count, 'member')} {verb}: {listed}")
    return parts


def _membership(changes: dict[str, Any]) -> Event:
    group = changes.get("group") or {}
    name = group.get("name") or group.get("id") or "a group"
    if changes.get("membership") == "removed":
        return Event(f"removed from group {name}")
    return Event(f"added to group {name}")


def _effect(entry: Entry) -> Event:
    changes = entry.changes or {}
    if entry.result == SUCCESS:
        return _effect_success(entry.operation, changes)
    noun = _EFFECT_NOUNS.get(entry.operation, entry.operation)
    reason = entry.error or ""
    if entry.result == RETRIED:
        return Event(f"{noun} failed, will retry", reason, "warning")
    if entry.result == DEAD:
        return Event(f"{noun} gave up after retries", reason, "error")
    if entry.result == FAILED:
        return Event(f"{noun} failed", reason, "error")
    return Event(f"{noun}: {entry.result}", reason, "info")


def _effect_success(kind: str, changes: dict[str, Any]) -> Event:
    """What a successful effect did; a skipped group and a repaired drift say why."""
    if kind == outbox.GROUP_SYNC and changes.get("skipped"):
        return Event("print group skipped", str(changes["skipped"]), "warning")
    if kind == outbox.GROUP_SYNC and changes.get("waiting"):
        return Event("print group requested from the directory source, looking again", tone="info")
    if kind == outbox.TENANT_RECONCILE:
        managed, drifted = changes.get("managed", 0), changes.get("drifted", 0)
        tone: Tone = "warning" if drifted else "info"
        page = changes.get("page")
        if changes.get("continued"):  # a page of several: the counts so far
            return Event(
                f"print system compared up to page {page}: {_plural(managed, 'account')} so far,"
                f" {drifted} drifted; the next page follows",
                tone=tone,
            )
        pages = "" if page is None else f" in {page} pages"
        return Event(
            f"print system compared{pages}: {_plural(managed, 'account')}, {drifted} drifted",
            tone=tone,
        )
    if kind == outbox.ACCOUNT_REPAIR:
        drift = changes.get("drift") or []
        return Event("drift repaired", ", ".join(str(item) for item in drift), "warning")
    return Event(_effect_done(kind, changes))


def _effect_done(kind: str, changes: dict[str, Any]) -> str:
    if kind != outbox.ACCOUNT_SYNC:
        return _EFFECT_DONE.get(kind, f"{kind} done")
    account = changes.get("account")
    if account == "revoked":
        return "access revoked (inactive in Entra)"
    if account == "skipped":
        return "nothing to do (deleted in Entra since)"
    if account != "ensured":
        return "print account brought in line"
    if "group" in changes:
        return "print account's groups brought in line"
    if changes.get("version") == 1:
        return "print account created"
    return "print account updated"


def _status(entry: Entry) -> str:
    parts = [str(entry.status)] if entry.status is not None else []
    if entry.error:
        parts.append(entry.error)
    return ": ".join(parts)


def _names(names: list[Any], total: int | None = None) -> str:
    shown = [str(name) for name in names[:_MAX_NAMES]]
    more = (total if total is not None else len(names)) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _flag(value: Any) -> str:
    if value is None:
        return "unset"
    return "true" if value else "false"


__all__ = ["Event", "Tone", "describe"]
