"""Which connector serves a tenant: the known plug-ins by name, and each tenant's connector.

:data:`PLUGINS` maps every connector name to its :class:`ConnectorPlugin`; adding a connector adds
its module's ``PLUGIN`` there. :data:`DEFAULT_CONNECTOR` is the one a tenant gets when its creator
names none.

A tenant's ``connector`` and ``connector_config`` are re-read for every effect, so a change made
with the CLI applies to the next effect; connectors are cached per tenant and configuration,
because a PaperCut connector keeps one connection per worker thread. The cache key holds
the values of the variables a configuration names (as hashes), so a corrected secret is used by
the next effect. A configuration is validated
by its plug-in's model each time it changes: one that no longer validates, or a connector name
that is not known, makes the effect fail permanently with the reason.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import orjson

from storage import accounts
from storage.blocking import BlockingDatabase
from storage.tenants import Tenant
from workers.connectors import ledger, papercut
from workers.connectors.interface import BuildContext, Connector, ConnectorPlugin, InvalidConfig
from workers.errors import PermanentError
from workers.settings import WorkerSettings

__all__ = ["DEFAULT_CONNECTOR", "PLUGINS", "ConnectorRegistry", "plugins_by_name"]


def plugins_by_name(*plugins: ConnectorPlugin[Any]) -> Mapping[str, ConnectorPlugin[Any]]:
    """A read-only name -> plug-in mapping; ValueError if two plug-ins share a name."""
    found: dict[str, ConnectorPlugin[Any]] = {}
    for plugin in plugins:
        if plugin.name in found:
            raise ValueError(f"two connectors are named {plugin.name!r}")
        found[plugin.name] = plugin
    return MappingProxyType(found)


#: Every connector printsync knows, by name.
PLUGINS: Final = plugins_by_name(ledger.PLUGIN, papercut.PLUGIN)

#: The connector of a tenant whose creator names none.
DEFAULT_CONNECTOR: Final = ledger.NAME


class ConnectorRegistry:
    """Builds and caches the connector of each tenant.

    ``environ`` is the secrets mapping in which configurations look up the variables they name
    (PaperCut's auth token): the process's entry point passes the process environment, and
    nothing here falls back to it. ``plugins`` defaults to :data:`PLUGINS`.
    """

    def __init__(
        self,
        store: BlockingDatabase,
        settings: WorkerSettings,
        environ: Mapping[str, str],
        *,
        plugins: Mapping[str, ConnectorPlugin[Any]] = PLUGINS,
    ) -> None:
        self._store = store
        self._settings = settings
        self._environ = environ
        self._plugins = plugins
        self._cache: dict[int, tuple[bytes, Connector]] = {}
        self._lock = threading.Lock()

    def connector_for(self, tenant_id: int) -> Connector:
        """The tenant's connector as configured now; PermanentError if the configuration is
        unusable (unknown connector, a configuration its model refuses, a missing secret)."""
        return self.connector_of(self._store.run(accounts.tenant_connector, tenant_id))

    def connector_of(self, tenant: Tenant) -> Connector:
        """:meth:`connector_for` with the tenant's configuration as just read."""
        fingerprint = orjson.dumps(
            [
                tenant.connector,
                tenant.connector_config,
                self._secrets_named(tenant.connector_config),
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        with self._lock:
            cached = self._cache.get(tenant.id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            connector = self._build(tenant)
            self._cache[tenant.id] = (fingerprint, connector)
            return connector

    def _secrets_named(self, config: Mapping[str, Any]) -> dict[str, str]:
        """Hashes of the values of the variables the configuration names (its token variable)."""
        return {
            value: hashlib.sha256(self._environ[value].encode()).hexdigest()
            for value in config.values()
            if isinstance(value, str) and value in self._environ
        }

    def _build(self, tenant: Tenant) -> Connector:
        plugin = self._plugins.get(tenant.connector)
        if plugin is None:
            raise PermanentError(
                f"tenant {tenant.name} uses the unknown connector {tenant.connector!r} "
                f"(known: {', '.join(sorted(self._plugins))})",
                operation="configure",
            )
        context = BuildContext(
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            store=self._store,
            settings=self._settings,
            secrets=self._environ,
        )
        try:
            return plugin.connect(tenant.connector_config, context)
        except InvalidConfig as error:
            raise PermanentError(
                f"invalid {plugin.name} configuration of tenant {tenant.name}: {error}",
                operation="configure",
            ) from None
