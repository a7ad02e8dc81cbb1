"""The connector registry: plug-ins by name, a tenant's stored configuration validated by its
plug-in, one connector per tenant and configuration, and a third connector registered by a test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from storage import tenants
from storage.blocking import BlockingDatabase
from tests.fakes import connector as memory
from tests.workers.test_effects import Harness, user_body, worker_settings
from workers import effects as effects_module
from workers.connectors import ledger, papercut
from workers.connectors.registry import (
    DEFAULT_CONNECTOR,
    PLUGINS,
    ConnectorRegistry,
    plugins_by_name,
)
from workers.effects import Effects
from workers.errors import PermanentError

WITH_MEMORY = {**PLUGINS, memory.NAME: memory.PLUGIN}
TOKEN_ENV = "TEST_REGISTRY_PAPERCUT_TOKEN"


@pytest.fixture
def store(database_url: str) -> Iterator[BlockingDatabase]:
    store = BlockingDatabase(database_url, pool_size=1)
    yield store
    store.close()


def create_tenant(
    store: BlockingDatabase, connector: str, config: dict[str, Any] | None = None
) -> tuple[int, str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    created, _ = store.run(tenants.create, name, connector=connector, connector_config=config or {})
    return created.id, name


def registry(store: BlockingDatabase, environ: dict[str, str] | None = None) -> ConnectorRegistry:
    return ConnectorRegistry(store, worker_settings(), environ or {}, plugins=WITH_MEMORY)


def test_registry_knows_ledger_and_papercut_with_ledger_as_default() -> None:
    assert sorted(PLUGINS) == ["ledger", "papercut"]
    assert DEFAULT_CONNECTOR == ledger.NAME


def test_plugins_by_name_two_plugins_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="memory"):
        plugins_by_name(memory.PLUGIN, memory.PLUGIN)


def test_connector_for_unknown_connector_is_permanent_error_listing_known_ones(
    store: BlockingDatabase,
) -> None:
    tenant_id, name = create_tenant(store, "fax")

    with pytest.raises(PermanentError) as raised:
        ConnectorRegistry(store, worker_settings(), {}).connector_for(tenant_id)

    assert raised.value.operation == "configure"
    assert "'fax'" in raised.value.message
    assert name in raised.value.message
    assert "known: ledger, papercut" in raised.value.message


def test_connector_for_stored_papercut_url_invalid_is_permanent_error_naming_field(
    store: BlockingDatabase,
) -> None:
    tenant_id, name = create_tenant(
        store, "papercut", {"url": "ftp://papercut:9191", "token_env": TOKEN_ENV}
    )

    with pytest.raises(PermanentError) as raised:
        registry(store, {TOKEN_ENV: "secret"}).connector_for(tenant_id)

    assert raised.value.message == (
        f"invalid papercut configuration of tenant {name}: "
        "url: the PaperCut URL must be an http:// or https:// URL with a host"
    )


def test_connector_for_stored_config_missing_fields_names_each_field(
    store: BlockingDatabase,
) -> None:
    tenant_id, _ = create_tenant(store, "papercut", {"managed_group_prefix": "print-"})

    with pytest.raises(PermanentError) as raised:
        registry(store).connector_for(tenant_id)

    assert "invalid papercut configuration" in raised.value.message
    assert "url: Field required" in raised.value.message
    assert "token_env: Field required" in raised.value.message


def test_connector_for_stored_papercut_config_builds_connector_with_its_options(
    store: BlockingDatabase,
) -> None:
    config = {
        "url": "http://papercut:9191",
        "token_env": TOKEN_ENV,
        "managed_group_prefix": "print-",
        "restrict_on_revoke": True,
    }
    tenant_id, _ = create_tenant(store, "papercut", config)

    built = registry(store, {TOKEN_ENV: "secret"}).connector_for(tenant_id)

    assert isinstance(built, papercut.PaperCutConnector)
    assert built.url == "http://papercut:9191/rpc/api/xmlrpc"
    assert papercut.PLUGIN.parse(config) == papercut.PaperCutConfig(
        url="http://papercut:9191",
        token_env=TOKEN_ENV,
        managed_group_prefix="print-",
        restrict_on_revoke=True,
    )


def test_papercut_plugin_dump_stores_only_given_fields() -> None:
    given = {"url": "http://papercut:9191", "token_env": TOKEN_ENV}

    assert papercut.PLUGIN.dump(papercut.PLUGIN.parse(given)) == given


def test_connector_for_same_config_reuses_connector_and_changed_config_builds_new(
    store: BlockingDatabase,
) -> None:
    tenant_id, name = create_tenant(store, memory.NAME, {"site": "north"})
    connectors = registry(store)

    first = connectors.connector_for(tenant_id)
    again = connectors.connector_for(tenant_id)
    store.run(tenants.set_connector, name, memory.NAME, {"site": "south"})
    changed = connectors.connector_for(tenant_id)

    assert again is first
    assert isinstance(first, memory.MemoryConnector)
    assert isinstance(changed, memory.MemoryConnector)
    assert (first.site, changed.site) == ("north", "south")


def test_registered_third_connector_serves_tenant_effects(database_url: str) -> None:
    store = BlockingDatabase(database_url)
    tenant_id, name = create_tenant(store, memory.NAME, {"site": "north"})
    connectors = registry(store)
    harness = Harness(database_url, tenant_id, Effects(store, connectors, worker_settings()))
    try:
        user_id = harness.create_user(user_body())
        harness.create_group("Staff", [user_id])
        harness.run_pending()
        built = connectors.connector_for(tenant_id)
        assert isinstance(built, memory.MemoryConnector)
        active = built.accounts["jdoe@example.com"]

        harness.set_active(user_id, False)
        harness.run_pending()
        revoked = built.accounts["jdoe@example.com"]
    finally:
        harness.effects.close()

    assert built.tenant_name == name
    assert (active.enabled, active.card_number, active.groups) == (True, "100200", ("Staff",))
    assert (revoked.enabled, revoked.card_number, revoked.groups) == (False, "", ())
    assert harness.pending() == []


def test_run_effect_stored_config_invalid_is_dead_naming_connector_and_field(
    database_url: str,
) -> None:
    store = BlockingDatabase(database_url)
    tenant_id, _ = create_tenant(store, memory.NAME, {"site": ""})
    harness = Harness(database_url, tenant_id, Effects(store, registry(store), worker_settings()))
    effects_module.on_dead.append(harness.dead.append)
    try:
        harness.create_user(user_body())
        [effect] = harness.pending()
        with pytest.raises(PermanentError):
            harness.effects.run(effect.id)
    finally:
        effects_module.on_dead.remove(harness.dead.append)
        harness.effects.close()

    dead = harness.effect(effect.id)
    assert dead.state == "dead"
    assert "invalid memory configuration" in (dead.last_error or "")
    assert "site:" in (dead.last_error or "")
    assert [e.id for e in harness.dead] == [effect.id]
