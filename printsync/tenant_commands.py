"""``printsync tenant test`` (a connection test towards a tenant's print system, like Entra's
"Test connection" the other way), and the connector options of ``printsync tenant update``.

The test builds the tenant's connector as a worker would (the same registry, the worker settings
and this process's environment for the token variable) and makes one harmless authenticated
call. It prints one line: what answered, or what is wrong ("PaperCut refused the auth token",
"connection refused at URL", "PaperCut at URL timed out after N s"); the exit status is 0 or 1.
A test that passes ends a pause of the tenant's effects at once (``storage.downstream``), as
does an update of its connector options (:func:`connector_change`).

:func:`register` adds the test to the ``tenant`` group of the ``printsync`` command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
import orjson

from metrics.redaction import clean_error
from printsync import connector_options
from printsync.terminal import Command, settings, subgroup
from storage import downstream, tenants
from storage.blocking import BlockingDatabase
from storage.errors import TenantNotFound
from workers.connectors.registry import ConnectorRegistry
from workers.errors import DownstreamError


def connector_change(
    tenant: tenants.Tenant, connector: str | None, values: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """The connector and configuration ``tenant update`` stores from its options, or None when
    no connector option was given. Options not given keep their stored values; with another
    ``--connector`` they start afresh. A refused value is a one-line error naming the option."""
    chosen = connector or tenant.connector
    if chosen == tenant.connector:
        if not connector_options.given(chosen, values):
            return None
        return chosen, connector_options.updated(chosen, tenant.connector_config, values)
    return chosen, connector_options.config(chosen, values)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


@click.command("test", cls=Command)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def tenant_test(name: str, as_json: bool) -> None:
    """Test the connection to the tenant's print system: one harmless authenticated call.

    Exit status 0 when it answers, 1 with one line naming the problem otherwise."""
    outcome = _test(name)
    if as_json:
        click.echo(orjson.dumps({"tenant": name, **_fields(outcome)}).decode())
    elif outcome.ok:
        click.echo(f"ok: {outcome.message}")
    else:
        click.echo(f"failed: {outcome.message}", err=True)
    if not outcome.ok:
        raise SystemExit(1)


def _fields(outcome: Outcome) -> dict[str, Any]:
    return {"ok": outcome.ok, "message": outcome.message}


def _test(name: str) -> Outcome:
    loaded = settings()
    database = loaded.database()
    store = BlockingDatabase(
        database.database_url, busy_timeout_ms=database.database_busy_timeout_ms
    )
    try:
        try:
            tenant = store.run(tenants.get, name)
        except TenantNotFound:
            raise click.ClickException(f"no tenant named {name}") from None
        registry = ConnectorRegistry(store, loaded.worker(), os.environ)
        try:
            message = registry.connector_for(tenant.id).check()
        except DownstreamError as error:
            return Outcome(False, error.message)
        except Exception as error:  # a fault of ours: still one line, never a traceback
            reason = clean_error(str(error))
            return Outcome(False, f"the test could not run ({type(error).__name__}: {reason})")
        store.run(downstream.resume, tenant.id)
        return Outcome(True, message)
    finally:
        store.close()


def register(cli_group: click.Group) -> None:
    """Add ``tenant test`` to the ``printsync`` group."""
    tenant_group = subgroup(cli_group, "tenant", "Tenants and their Secret Tokens.")
    tenant_group.add_command(tenant_test)


__all__ = ["connector_change", "register", "tenant_test"]
