"""Drift repair: compare a tenant's print system with the records and repair what drifted.

A ``tenant.reconcile`` effect (recorded every ``PRINTSYNC_RECONCILE_INTERVAL_SECONDS`` for each
tenant, or by ``printsync reconcile``) builds the account every user of the tenant should have
(through :meth:`workers.effects.Effects.desired_account`, so exactly as ``account.sync`` would
converge it; an inactive user's account should have its access revoked) and asks the tenant's
connector for the accounts that differ (:meth:`~workers.connectors.interface.Connector.find_drift`).
Accounts that belong to no user of the tenant are never compared nor changed.

Each account that drifted gets an ``account.repair`` effect, and each group the print system
could not hold (skipped) a ``group.sync`` that tries it again, recorded when the reconcile effect
completes, in the same transaction; the worker converges it like ``account.sync``, so retries,
dead effects and failure digests work for repairs as for every effect. The provisioning log says
what was found (``drift``) against the user.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage import clock, outbox
from storage import reconcile as records
from workers.connectors import Connector, PrintAccount
from workers.connectors.interface import Drift

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
    """What one comparison found: how many accounts printsync manages, which drifted."""

    managed: int
    found: tuple[Found, ...]

    def details(self) -> dict[str, Any]:
        """What the reconcile effect's log entry keeps."""
        return {"managed": self.managed, "drifted": len(self.found)}


def desired_accounts(
    effects: Effects, tenant_id: int
) -> tuple[dict[str, PrintAccount | None], dict[str, str]]:
    """Every managed account as it should be (``None``: access revoked), by casefolded
    username, and the id of the user each one belongs to."""
    desired: dict[str, PrintAccount | None] = {}
    owners: dict[str, str] = {}
    for user_id, name in effects.store.run(records.user_names, tenant_id):
        wanted = effects.desired_account(tenant_id, name)
        if not wanted.present:
            continue  # deleted meanwhile
        username = wanted.account.username if wanted.account is not None else wanted.username
        desired[username.casefold()] = wanted.account
        owners[username.casefold()] = user_id
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


def scan(
    effects: Effects, tenant_id: int, connector: Connector, progress: Progress | None = None
) -> Scan:
    """Compare the print system with the records; changes nothing. ``progress`` (a command on
    a terminal) is told how far the comparison got."""
    desired, owners = desired_accounts(effects, tenant_id)
    looked_up = desired if progress is None else _Counted(desired, progress)
    found = tuple(
        Found(owners[drift.username.casefold()], drift)
        for drift in connector.find_drift(looked_up)
        if drift.username.casefold() in owners
    )
    return Scan(len(desired), found)


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


__all__ = ["Found", "Scan", "desired_accounts", "repairs", "scan", "skipped_again"]
