"""Drift repair: compare a tenant's print system with the records and repair what drifted.

A ``tenant.reconcile`` effect (recorded every ``PRINTSYNC_RECONCILE_INTERVAL_SECONDS`` for each
tenant, or by ``printsync reconcile``) compares one page of the tenant's users
(``PRINTSYNC_RECONCILE_PAGE_SIZE`` of them, in the order of their rows): it builds the account each
of them should have (through :meth:`workers.effects.Effects.desired_account`, so exactly as
``account.sync`` would converge it; an inactive user's account should have its access revoked)
and asks the tenant's connector for the accounts among them that differ
(:meth:`~workers.connectors.interface.Connector.find_drift`). Accounts that belong to no user of
the tenant are never compared nor changed.

Each account that drifted gets an ``account.repair`` effect, recorded when the page's effect
completes, in the same transaction; so is the effect of the next page (a cursor in its payload:
the last user's row, never an offset) until the last page, and with the first page a
``group.sync`` per group the print system could not hold (skipped), to try it again once per
reconcile. Each page is therefore one attempt with bounded memory and time; a page that fails is
retried alone, and the pages before it are not compared again. The worker converges a repair
like ``account.sync``, so retries, dead effects and failure digests work for repairs as for
every effect. The provisioning log says what was found (``drift``) against the user, and each
page what the reconcile has compared so far.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage import clock, outbox
from storage import reconcile as records
from workers.connectors import Connector, PrintAccount
from workers.connectors.interface import Drift
from workers.errors import PermanentError

if TYPE_CHECKING:
    from workers.effects import Effects


@dataclass(frozen=True, slots=True)
class Found:
    """An account that drifted, and the user whose account it is."""

    user_id: str
    drift: Drift

    def summary(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_name": self.drift.username,
            "drift": list(self.drift.problems),
        }


@dataclass(frozen=True, slots=True)
class Scan:
    """What one comparison found: how many accounts printsync manages, which drifted, and
    where the next page starts (``None``: nothing after these)."""

    managed: int
    found: tuple[Found, ...]
    after: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a reconcile, from its effect: its number, the row its users come after,
    the reconcile's first page (its effect id) and what the pages before it counted."""

    number: int
    after: int
    reconcile_id: int
    managed: int = 0
    drifted: int = 0

    @classmethod
    def of(cls, effect: outbox.Effect) -> Page:
        """The page an effect compares; an effect recorded without a cursor is a first page."""
        payload = effect.payload
        if "after" not in payload:
            return cls(1, 0, effect.id)
        number, after, reconcile_id, managed, drifted = (
            _count(payload, name) for name in ("page", "after", "reconcile", "managed", "drifted")
        )
        return cls(number, after, reconcile_id, managed, drifted)

    def details(self, found: Scan) -> dict[str, Any]:
        """What the page's log entry keeps: the counts of the reconcile so far; for a
        reconcile of several pages, also the page's number and whether more follow."""
        details: dict[str, Any] = {
            "managed": self.managed + found.managed,
            "drifted": self.drifted + len(found.found),
        }
        if self.number > 1 or found.after is not None:
            details["page"] = self.number
        if found.after is not None:
            details["continued"] = True
        return details

    def following(self, effect: outbox.Effect, found: Scan) -> outbox.Scheduled | None:
        """The effect of the page after this one, due now; ``None`` after the last page."""
        if found.after is None:
            return None
        number = self.number + 1
        return outbox.Scheduled(
            kind=outbox.TENANT_RECONCILE,
            subject_id=effect.subject_id,
            key=records.page_key(effect.tenant_id, self.reconcile_id, number),
            payload={
                "reconcile": self.reconcile_id,
                "page": number,
                "after": found.after,
                "managed": self.managed + found.managed,
                "drifted": self.drifted + len(found.found),
            },
            due_at=clock.stamp(),
        )


def _count(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PermanentError(f"the reconcile page's payload has no {name}", operation="dispatch")
    return value


def desired_accounts(
    effects: Effects, tenant_id: int, users: Sequence[records.PageUser]
) -> tuple[dict[str, PrintAccount | None], dict[str, str]]:
    """The account each of ``users`` should have (``None``: access revoked), by casefolded
    username, and the id of the user each one belongs to."""
    desired: dict[str, PrintAccount | None] = {}
    owners: dict[str, str] = {}
    for user in users:
        wanted = effects.desired_account(tenant_id, user.user_name)
        if not wanted.present:
            continue  # deleted meanwhile
        username = wanted.account.username if wanted.account is not None else wanted.username
        desired[username.casefold()] = wanted.account
        owners[username.casefold()] = user.user_id
    return desired, owners


#: Told how many managed accounts there are, then of each one compared (a progress line).
Progress = Callable[[int, int], None]


class _Counted(Mapping[str, "PrintAccount | None"]):
    """The desired accounts, telling ``progress`` each time the connector looks one up (once
    per account it found among them)."""

    def __init__(self, accounts: dict[str, PrintAccount | None], progress: Progress) -> None:
        self._accounts = accounts
        self._progress = progress
        self._looked = 0

    def __getitem__(self, key: str) -> PrintAccount | None:
        value = self._accounts[key]
        self._looked += 1
        self._progress(self._looked, len(self._accounts))
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._accounts

    def __iter__(self) -> Iterator[str]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    def items(self) -> ItemsView[str, PrintAccount | None]:
        return self._accounts.items()  # the connector's last pass: accounts it did not find


def scan_page(
    effects: Effects,
    tenant_id: int,
    connector: Connector,
    *,
    after: int,
    progress: Progress | None = None,
) -> Scan:
    """Compare the accounts of one page of the tenant's users (those after the row ``after``,
    ``reconcile_page_size`` at most) with the print system; changes nothing. ``progress`` is
    told how far the comparison of the page got."""
    limit = effects.settings.reconcile_page_size
    users = effects.store.run(records.user_page, tenant_id, after, limit + 1)
    page = users[:limit]
    desired, owners = desired_accounts(effects, tenant_id, page)
    looked_up = desired if progress is None else _Counted(desired, progress)
    found = tuple(
        Found(owners[drift.username.casefold()], drift)
        for drift in connector.find_drift(looked_up)
        if drift.username.casefold() in owners
    )
    return Scan(len(desired), found, page[-1].pk if len(users) > limit else None)


def scan(
    effects: Effects, tenant_id: int, connector: Connector, progress: Progress | None = None
) -> Scan:
    """Compare the whole tenant with the print system, a page at a time; changes nothing.
    ``progress`` (a command on a terminal) is told how far the comparison got, of the tenant's
    users."""
    total = 0 if progress is None else effects.store.run(records.user_count, tenant_id)
    managed, compared, after = 0, 0, 0
    found: list[Found] = []
    while True:
        told = None if progress is None else shifted(progress, compared, total)
        page = scan_page(effects, tenant_id, connector, after=after, progress=told)
        managed += page.managed
        found += page.found
        if page.after is None:
            return Scan(managed, tuple(found))
        compared += effects.settings.reconcile_page_size
        after = page.after


def shifted(progress: Progress, before: int, total: int) -> Progress:
    """``progress`` told of one page as of the whole tenant: ``before`` users came before it."""
    return lambda done, page_total: progress(before + done, max(total, before + page_total))


def compare_page(
    effects: Effects, effect: outbox.Effect, connector: Connector
) -> tuple[tuple[outbox.Scheduled, ...], dict[str, Any]]:
    """Apply one ``tenant.reconcile`` effect: compare its page, and return the effects to
    record with its outcome (the repairs, the next page, and with the first page the skipped
    groups' new tries) and what its log entry keeps."""
    page = Page.of(effect)
    found = scan_page(
        effects, effect.tenant_id, connector, after=page.after, progress=effects.reconcile_progress
    )
    more = repairs(found, effect)
    if page.number == 1:
        more += skipped_again(effects, effect)
    following = page.following(effect, found)
    if following is not None:
        more += (following,)
    return more, page.details(found)


def repairs(scan_result: Scan, reconcile: outbox.Effect) -> tuple[outbox.Scheduled, ...]:
    """One ``account.repair`` effect, due now, per account that drifted."""
    now = clock.stamp()
    return tuple(
        outbox.Scheduled(
            kind=outbox.ACCOUNT_REPAIR,
            subject_id=item.user_id,
            key=records.repair_key(item.user_id, reconcile.id),
            payload={"userName": item.drift.username, "drift": list(item.drift.problems)},
            due_at=now,
        )
        for item in scan_result.found
    )


def skipped_again(effects: Effects, reconcile: outbox.Effect) -> tuple[outbox.Scheduled, ...]:
    """One ``group.sync`` per skipped group of the tenant, due now: a group added to the
    directory source since is added then (once per reconcile, never a storm)."""
    now = clock.stamp()
    return tuple(
        outbox.Scheduled(
            kind=outbox.GROUP_SYNC,
            subject_id=group.group_id,
            key=f"{outbox.GROUP_SYNC}:{group.group_id}:r{reconcile.id}",
            payload={},
            due_at=now,
        )
        for group in effects.store.run(records.skipped, reconcile.tenant_id)
    )


__all__ = [
    "Found",
    "Page",
    "Scan",
    "compare_page",
    "desired_accounts",
    "repairs",
    "scan",
    "scan_page",
    "shifted",
    "skipped_again",
]
