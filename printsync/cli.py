"""The ``printsync`` command: the composition root, the one place that wires api, workers,
storage and metrics together.

Every command starts by validating all settings (:mod:`printsync.settings`, through
:class:`printsync.terminal.Command`): a bad value stops it with one line naming the variable and
its rule, exit status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import click
import orjson
import structlog

from metrics.exposition import ENV_VAR as MULTIPROC_VARIABLE
from printsync import (
    connector_options,
    effects_commands,
    guard_commands,
    ops_commands,
    pipeline_process,
    reconcile_commands,
    tenant_commands,
)
from printsync.terminal import (
    Column,
    Group,
    Styled,
    describe_database,
    emit,
    ready_schema,
    run,
    settings,
    table,
)
from storage import downstream, guard, tenants
from storage.database import Database
from workers.connectors.registry import DEFAULT_CONNECTOR

_log = structlog.get_logger("printsync")


@click.group(cls=Group)
@click.version_option(package_name="printsync")
def cli() -> None:
    """printsync: SCIM 2.0 provisioning from Microsoft Entra ID into the print system."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("ready", hidden=True)
def db_ready() -> None:
    """Make the schema ready as any command does (the embedded SQLite database migrated, any
    other checked); ``serve`` runs it in a child process so that the API process never loads
    Alembic."""
    ready_schema(settings().database_url)


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (PRINTSYNC_DATABASE_URL)."""
    from storage import migrate

    url = settings().database_url
    migrate.upgrade(url, revision)
    click.echo(f"database {describe_database(url)} is at schema {migrate.current(url)[0]}")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree; print nothing when they agree."""
    from storage import migrate

    url = settings().database_url
    ready_schema(url)
    try:
        migrate.check(url)
    except migrate.DriftError as error:
        raise click.ClickException(f"the models and the migrations disagree: {error}") from None


@cli.group()
def tenant() -> None:
    """Tenants and their Secret Tokens."""


def _addresses(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """The --notify addresses, checked as the admin console checks them."""
    from api.console.pages import parse_addresses

    try:
        return parse_addresses(" ".join(value))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@tenant.command("create")
@click.argument("name")
@click.option(
    "--notify",
    multiple=True,
    callback=_addresses,
    help="Failure-notification recipient (repeatable).",
)
@connector_options.options
@guard_commands.options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def tenant_create(
    name: str,
    notify: tuple[str, ...],
    connector: str,
    as_json: bool,
    **values: str | None,
) -> None:
    """Create a tenant; print its Tenant URL and Secret Token (shown only once)."""
    overrides = guard_commands.chosen(values)
    config = connector_options.config(connector, values)

    async def work(db: Database) -> tuple[tenants.Tenant, str]:
        created, token = await tenants.create(
            db, name, notify=notify, connector=connector, connector_config=config
        )
        await guard.set_overrides(db, created.id, overrides)
        return created, token

    created, token = run(work)
    url = settings().api().tenant_url(created.name)
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "name": created.name,
                    "tenant_url": url,
                    "token": token,
                    "notify": list(created.notify),
                    "connector": created.connector,
                }
            ).decode()
        )
        return
    click.echo(f"Tenant:       {created.name}")
    click.echo(f"Tenant URL:   {url}")
    click.echo(f"Secret Token: {token}")
    click.echo("Paste both into Entra ID. The token is shown only this once.")


@tenant.command("update")
@click.argument("name")
@connector_options.update_options
@guard_commands.options
def tenant_update(name: str, connector: str | None, **values: Any) -> None:
    """Change a tenant's settings and print-system options (only those given).

    Print-system options not given keep their stored values; with another --connector they
    start afresh. The tenant's effects that wait for refused credentials are tried again at
    once."""
    overrides = guard_commands.chosen(values)
    if not overrides and connector is None and not connector_options.any_given(values):
        raise click.UsageError("give at least one setting to change")

    async def current(db: Database) -> tenants.Tenant:
        return await tenants.get(db, name)

    found = run(current)
    change = tenant_commands.connector_change(found, connector, values)
    if not overrides and change is None:
        raise click.UsageError(f"no option of the {found.connector} connector given")

    async def work(db: Database) -> None:
        if overrides:
            await guard.set_overrides(db, found.id, overrides)
        if change is not None:
            await tenants.set_connector(db, name, *change)
            await downstream.resume(db, found.id)

    run(work)
    click.echo(f"tenant {name} updated")


TENANT_COLUMNS = (
    Column("NAME"),
    Column("STATE"),
    Column("CONNECTOR"),
    Column("TENANT URL", shrink=True, min_width=20),
)
_STATES = {True: Styled("disabled", "yellow"), False: Styled("enabled", "green")}


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True)
def tenant_list(as_json: bool) -> None:
    """List tenants."""
    found = run(tenants.list_all)
    api = settings().api()
    rows = [{**t.summary(), "tenant_url": api.tenant_url(t.name)} for t in found]
    if as_json:
        emit(rows)
        return
    lines = [
        (row["name"], _STATES[row["disabled"]], row["connector"], row["tenant_url"]) for row in rows
    ]
    table(lines, TENANT_COLUMNS, empty="no tenants")


@tenant.command("rotate-token")
@click.argument("name")
@click.option(
    "--overlap",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0, max=30 * 86400),
    help="Seconds the previous token keeps working.",
)
@click.option("--json", "as_json", is_flag=True)
def tenant_rotate(name: str, overlap: float, as_json: bool) -> None:
    """Issue a new Secret Token."""

    async def work(db: Database) -> str:
        return await tenants.rotate_token(db, name, overlap_seconds=overlap)

    token = run(work)
    if as_json:
        click.echo(orjson.dumps({"name": name, "token": token}).decode())
        return
    click.echo(f"Secret Token: {token}")
    click.echo("Update it in Entra ID. The token is shown only this once.")
    _reaches_servers("the old token may still be accepted")


def _reaches_servers(what: str) -> None:
    """Say when a change to a tenant reaches the running servers: each API process keeps a
    verified token for PRINTSYNC_AUTH_CACHE_SECONDS."""
    seconds = settings().auth_cache_seconds
    shown = f"{seconds:g} s"
    click.echo(
        f"Running servers apply this within {shown} (PRINTSYNC_AUTH_CACHE_SECONDS): "
        f"until then {what} there."
        if seconds
        else "Running servers apply this at once (PRINTSYNC_AUTH_CACHE_SECONDS=0)."
    )


def _set_disabled(name: str, disabled: bool) -> None:
    async def work(db: Database) -> None:
        await tenants.set_disabled(db, name, disabled)

    run(work)


@tenant.command("disable")
@click.argument("name")
def tenant_disable(name: str) -> None:
    """Refuse the tenant's requests (403) until enabled again."""
    _set_disabled(name, True)
    click.echo(f"tenant {name} disabled")
    _reaches_servers("its requests may still be accepted")


@tenant.command("enable")
@click.argument("name")
def tenant_enable(name: str) -> None:
    """Accept the tenant's requests again."""
    _set_disabled(name, False)
    click.echo(f"tenant {name} enabled")
    _reaches_servers("its requests may still be refused")


def _ready_schema_in_child() -> None:
    """``printsync db ready`` in a child process, whose messages reach the terminal as they
    are: the API process then holds neither Alembic nor what a migration loaded."""
    environ = {key: value for key, value in os.environ.items() if key != MULTIPROC_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-m", "printsync", "db", "ready"], env=environ, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.returncode)


@cli.command()
@click.option("--host", default=None, help="Bind address (PRINTSYNC_HOST).")
@click.option("--port", default=None, type=int, help="Port (PRINTSYNC_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the SCIM API and, in a child process, the outbox relay.

    Without PRINTSYNC_BROKER_URL (the embedded mode) the child also runs the effect worker on an
    in-memory broker: nothing else needs to run. With a Redis or RabbitMQ URL the relay only
    enqueues, and `printsync worker` applies the effects.
    """
    from api.app import create_app
    from printsync import http_server
    from workers.cycle_gauges import CycleGauges

    loaded = settings()
    # The API and its pipeline child export their metrics through one directory, so that the
    # API's /metrics shows the effects the child applies too.
    effects_commands.multiprocess_metrics(loaded.prometheus_multiproc_dir)
    database = loaded.database()
    _ready_schema_in_child()
    pipeline = pipeline_process.PipelineProcess()
    embedded = loaded.worker().embedded
    app = create_app(
        loaded.api(),
        database,
        on_start=pipeline.attach,
        default_connector=DEFAULT_CONNECTOR,
        database_gauges=embedded,
        more_gauges=(CycleGauges(),),
    )
    bound_host, bound_port = host or loaded.host, port or loaded.port
    _log.info(
        "serving",
        listen=f"http://{bound_host}:{bound_port}",
        public_url=loaded.public_url,
        mode="embedded" if embedded else "broker",
        effects=(
            "applied by this process's pipeline child"
            if embedded
            else "relayed to the broker; `printsync worker` applies them"
        ),
        database=describe_database(database.database_url),
    )
    pipeline.start()
    try:
        http_server.serve(app, loaded, host=bound_host, port=bound_port)
    finally:
        pipeline.stop()


@cli.command(hidden=True)
@click.option("--wake-fd", type=int, default=None, help="The wake-up pipe of `printsync serve`.")
def pipeline(wake_fd: int | None) -> None:
    """The effects pipeline: the child process of `printsync serve` (with --wake-fd), or alone,
    the embedded pipeline without an API (e.g. to drain the outbox of a SQLite database)."""
    loaded = settings()
    worker = loaded.worker()
    if wake_fd is None and not worker.embedded:
        raise click.ClickException("PRINTSYNC_BROKER_URL is set: run `printsync worker` instead")
    pipeline_process.run_child(worker, loaded.database(), os.environ, wake_fd)


effects_commands.register(cli)
ops_commands.register(cli)
guard_commands.register(cli)
tenant_commands.register(cli)
reconcile_commands.register(cli)


def main() -> None:
    cli(prog_name="printsync")


if __name__ == "__main__":
    main()
