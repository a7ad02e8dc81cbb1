"""Which connector serves a tenant: the built-in ledger (default) or PaperCut, per tenant.

A tenant's ``connector`` and ``connector_config`` are re-read for every effect, so a change made
with the CLI applies to the next effect; connectors are cached per tenant and configuration,
because a PaperCut connector keeps one connection per worker thread.

PaperCut configuration (``connector_config``): ``url`` (the server, e.g. ``https://host:9192``),
``token_env`` (the name of the environment variable that holds the auth token: the token itself
is never stored in the database), and optionally ``managed_group_prefix`` and
``restrict_on_revoke``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import orjson

from storage import accounts
from storage.blocking import BlockingDatabase
from workers.connectors import Connector
from workers.errors import PermanentError
from workers.ledger import LedgerConnector
from workers.papercut import PaperCutConnector
from workers.settings import WorkerSettings


class ConnectorRegistry:
    """Builds and caches the connector of each tenant."""

    def __init__(
        self,
        store: BlockingDatabase,
        settings: WorkerSettings,
        environ: Mapping[str, str],
    ) -> None:
        self._store = store
        self._settings = settings
        self._environ = environ
        self._cache: dict[int, tuple[bytes, Connector]] = {}
        self._lock = threading.Lock()

    def connector_for(self, tenant_id: int) -> Connector:
        """The tenant's connector as configured now; PermanentError if the configuration is
        unusable (unknown connector, missing URL or token)."""
        tenant = self._store.run(accounts.tenant_connector, tenant_id)
        fingerprint = orjson.dumps([tenant.connector, tenant.config], option=orjson.OPT_SORT_KEYS)
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            connector = self._build(tenant.id, tenant.connector, tenant.config)
            self._cache[tenant_id] = (fingerprint, connector)
            return connector

    def _build(self, tenant_id: int, kind: str, config: dict[str, Any]) -> Connector:
        if kind == "ledger":
            return LedgerConnector(self._store, tenant_id)
        if kind == "papercut":
            return self._papercut(config)
        raise PermanentError(f"unknown connector {kind!r}", operation="configure")

    def _papercut(self, config: dict[str, Any]) -> Connector:
        url = config.get("url")
        variable = config.get("token_env")
        if not isinstance(url, str) or not url:
            raise PermanentError(
                "the tenant's PaperCut URL is not configured", operation="configure"
            )
        if not isinstance(variable, str) or not variable:
            raise PermanentError(
                "the tenant's PaperCut token variable is not configured", operation="configure"
            )
        token = self._environ.get(variable, "")
        if not token:
            raise PermanentError(
                f"the PaperCut token variable {variable} is not set", operation="configure"
            )
        settings = self._settings
        try:
            return PaperCutConnector(
                url,
                token,
                settings.papercut_timeout_seconds,
                managed_group_prefix=str(config.get("managed_group_prefix", "")),
                restrict_on_revoke=bool(config.get("restrict_on_revoke", False)),
                retry_attempts=settings.papercut_retry_attempts,
                retry_budget=settings.papercut_retry_budget_seconds,
                retry_initial_wait=settings.papercut_retry_initial_wait_seconds,
            )
        except ValueError as error:
            raise PermanentError(
                f"invalid PaperCut configuration: {error}", operation="configure"
            ) from None
