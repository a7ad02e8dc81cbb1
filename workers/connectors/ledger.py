"""The built-in print-account ledger as a :class:`~workers.connectors.Connector`.

It keeps one tenant's print accounts in printsync's own database (``storage.ledger``), so a tenant
without a print server still gets a reviewable record of who may print, with which cards and
groups. Every method is one short transaction; a database that is unreachable or locked is a
transient error. It needs no configuration: :class:`LedgerConfig` has no fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from storage import ledger
from storage.blocking import BlockingDatabase
from storage.errors import DatabaseUnavailable
from workers.connectors.interface import (
    BuildContext,
    ConnectorPlugin,
    Drift,
    PrintAccount,
    compare_accounts,
)
from workers.errors import TransientError

__all__ = ["NAME", "PLUGIN", "LedgerConfig", "LedgerConnector"]

NAME = "ledger"

T = TypeVar("T")


class LedgerConfig(BaseModel):
    """The ledger's configuration: nothing to set. Keys stored by hand are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class LedgerConnector:
    """The ledger of one tenant."""

    def __init__(self, store: BlockingDatabase, tenant_id: int) -> None:
        self._store = store
        self._tenant_id = tenant_id

    @property
    def name(self) -> str:
        return NAME

    def __repr__(self) -> str:
        return f"LedgerConnector(tenant_id={self._tenant_id})"

    def account_name(self, username: str) -> str:
        return username

    def rename_account(self, old: str, new: str) -> None:
        self._call(
            "rename_account",
            lambda: self._store.run(ledger.rename, self._tenant_id, old, new),
        )

    def check(self) -> str:
        count = self._call("check", lambda: self._store.run(ledger.count, self._tenant_id))
        accounts = "print account" if count == 1 else "print accounts"
        return f"the built-in ledger answered ({count} {accounts})"

    def ensure_account(self, account: PrintAccount) -> None:
        self._call(
            "ensure_account",
            # The ledger's row holds every field of the account, under the same names.
            lambda: self._store.run(ledger.ensure_account, self._tenant_id, **asdict(account)),
        )

    def revoke_access(self, username: str) -> None:
        self._call(
            "revoke_access", lambda: self._store.run(ledger.revoke, self._tenant_id, username)
        )

    def delete_account(self, username: str, *, redact: bool = True) -> None:
        self._call(
            "delete_account",
            lambda: self._store.run(ledger.delete, self._tenant_id, username, redact=redact),
        )

    def ensure_group(self, name: str) -> None:
        self._call(
            "ensure_group", lambda: self._store.run(ledger.ensure_group, self._tenant_id, name)
        )

    def delete_group(self, name: str) -> None:
        self._call(
            "delete_group", lambda: self._store.run(ledger.delete_group, self._tenant_id, name)
        )

    def rename_group(self, old: str, new: str) -> None:
        self._call(
            "rename_group", lambda: self._store.run(ledger.rename_group, self._tenant_id, old, new)
        )

    def add_group_members(self, name: str, usernames: Sequence[str]) -> None:
        # The ledger holds every group at once, so accounts get their groups with their own
        # effects; this adds the group to accounts that exist and lack it all the same.
        key = name.casefold()
        for username in usernames:
            found = self._account(username)
            if found is not None and key not in {group.casefold() for group in found.groups}:
                account = _account_of(found)
                self.ensure_account(replace(account, groups=(*account.groups, name)))

    def _account(self, username: str) -> ledger.Account | None:
        return self._call(
            "get_account",
            lambda: self._store.run(ledger.get_account, self._tenant_id, username),
        )

    def find_drift(self, desired: Mapping[str, PrintAccount | None]) -> Iterator[Drift]:
        # Only the accounts of ``desired`` (one page of the tenant's users), in one statement.
        names = {key for key, _ in desired.items()}
        names.update(account.username for _, account in desired.items() if account is not None)
        accounts = self._call(
            "find_drift",
            lambda: self._store.run(ledger.accounts_named, self._tenant_id, sorted(names)),
        )
        found = (_account_of(account) for account in accounts)
        return compare_accounts(desired, found, holds=_every, manages=_every)

    @staticmethod
    def _call(operation: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except DatabaseUnavailable as error:
            raise TransientError(
                f"ledger database unavailable ({error})", operation=operation
            ) from None


def _every(group: str) -> bool:
    """The ledger holds and manages every group."""
    return True


def _account_of(found: ledger.Account) -> PrintAccount:
    return PrintAccount.of(found.username, found, enabled=found.enabled)


def build(config: LedgerConfig, context: BuildContext) -> LedgerConnector:
    return LedgerConnector(context.store, context.tenant_id)


PLUGIN = ConnectorPlugin(NAME, LedgerConfig, build)
