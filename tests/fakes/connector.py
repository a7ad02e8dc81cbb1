"""A third connector, kept in memory: what a connector plug-in takes, and a print system whose
state a test can read directly.

It is not one of the registry's plug-ins; a test registers it by building a
``ConnectorRegistry`` with ``plugins={**PLUGINS, NAME: PLUGIN}``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from workers.connectors import PrintAccount
from workers.connectors.interface import BuildContext, ConnectorPlugin, Drift, compare_accounts

NAME = "memory"


class MemoryConfig(BaseModel):
    """``site`` labels the print system; it must be given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    site: str = Field(min_length=1, max_length=40)


class MemoryConnector:
    """Print accounts and groups in dictionaries, keyed case-insensitively like a print system."""

    def __init__(self, site: str, tenant_name: str) -> None:
        self.site = site
        self.tenant_name = tenant_name
        self.accounts: dict[str, PrintAccount] = {}
        self.groups: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return NAME

    def ensure_account(self, account: PrintAccount) -> None:
        with self._lock:
            self.accounts[account.username.casefold()] = account
            for group in account.groups:
                self.groups.setdefault(group.casefold(), group)

    def revoke_access(self, username: str) -> None:
        with self._lock:
            account = self.accounts.get(username.casefold())
            if account is not None:
                self.accounts[username.casefold()] = dataclasses.replace(
                    account, enabled=False, card_number="", secondary_card_number="", groups=()
                )

    def delete_account(self, username: str, *, redact: bool = True) -> None:
        with self._lock:
            self.accounts.pop(username.casefold(), None)

    def ensure_group(self, name: str) -> None:
        with self._lock:
            self.groups.setdefault(name.casefold(), name)

    def delete_group(self, name: str) -> None:
        with self._lock:
            self.groups.pop(name.casefold(), None)
            self._regroup(name, None)

    def rename_group(self, old: str, new: str) -> None:
        with self._lock:
            self.groups.pop(old.casefold(), None)
            self.groups[new.casefold()] = new
            self._regroup(old, new)

    def add_group_members(self, name: str, usernames: Sequence[str]) -> None:
        with self._lock:
            for username in usernames:
                account = self.accounts.get(username.casefold())
                if account is not None and name.casefold() not in {
                    group.casefold() for group in account.groups
                }:
                    grouped = dataclasses.replace(account, groups=(*account.groups, name))
                    self.accounts[username.casefold()] = grouped

    def find_drift(self, desired: Mapping[str, PrintAccount | None]) -> Iterator[Drift]:
        with self._lock:
            found = list(self.accounts.values())
        return compare_accounts(desired, found, holds=_every, manages=_every)

    def _regroup(self, old: str, new: str | None) -> None:
        for key, account in self.accounts.items():
            kept = [group for group in account.groups if group.casefold() != old.casefold()]
            if len(kept) != len(account.groups) and new is not None:
                kept.append(new)
            self.accounts[key] = dataclasses.replace(account, groups=tuple(kept))


def _every(group: str) -> bool:
    return True


def build(config: MemoryConfig, context: BuildContext) -> MemoryConnector:
    return MemoryConnector(config.site, context.tenant_name)


PLUGIN = ConnectorPlugin(NAME, MemoryConfig, build)
