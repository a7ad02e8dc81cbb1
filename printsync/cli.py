"""The ``printsync`` command: the composition root, the one place that wires api, workers,
storage and metrics together."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson

from api.settings import get_settings as get_api_settings
from printsync import connector_options, effects_commands, ops_commands
from storage import migrate, tenants
from storage.database import Database, open_database, parse_url
from storage.errors import TenantNotFound
from storage.scim.errors import ScimError
from storage.settings import get_settings as get_database_settings

T = TypeVar("T")


def run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured database, run ``work`` against it, close it."""

    async def main() -> T:
        settings = get_database_settings()
        db = await open_database(
            settings.database_url, pool_size=2, busy_timeout_ms=settings.database_busy_timeout_ms
        )
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except TenantNotFound as error:
        raise click.ClickException(f"no tenant named {error}") from None
    except ScimError as error:
        raise click.ClickException(error.detail) from None


def emit(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.group()
@click.version_option(package_name="printsync")
def cli() -> None:
    """printsync: SCIM 2.0 provisioning from Microsoft Entra ID into the print system."""
    from metrics.logs import configure_logging

    # Logs go to standard error, so a command's output (e.g. --json) stays clean.
    production = get_api_settings().environment == "production"
    configure_logging(json_output=production, stream=sys.__stderr__ or sys.stderr)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (PRINTSYNC_DATABASE_URL)."""
    migrate.upgrade(get_database_settings().database_url, revision)
    click.echo("database is up to date")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check(get_database_settings().database_url)
    click.echo("no drift")


@cli.group()
def tenant() -> None:
    """Tenants and their Secret Tokens."""


@tenant.command("create")
@click.argument("name")
@click.option("--notify", multiple=True, help="Failure-notification recipient (repeatable).")
@connector_options.options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def tenant_create(
    name: str,
    notify: tuple[str, ...],
    connector: str,
    as_json: bool,
    **values: str | None,
) -> None:
    """Create a tenant; print its Tenant URL and Secret Token (shown only once)."""
    config = connector_options.config(connector, values)

    async def work(db: Database) -> tuple[tenants.Tenant, str]:
        return await tenants.create(
            db, name, notify=notify, connector=connector, connector_config=config
        )

    created, token = run(work)
    url = get_api_settings().tenant_url(created.name)
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


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True)
def tenant_list(as_json: bool) -> None:
    """List tenants."""
    found = run(tenants.list_all)
    settings = get_api_settings()
    rows = [{**t.summary(), "tenant_url": settings.tenant_url(t.name)} for t in found]
    if as_json:
        emit(rows)
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        click.echo(f"{row['name']:<24} {state:<9} {row['connector']:<9} {row['tenant_url']}")


@tenant.command("rotate-token")
@click.argument("name")
@click.option(
    "--overlap", default=0.0, show_default=True, help="Seconds the previous token keeps working."
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


@tenant.command("enable")
@click.argument("name")
def tenant_enable(name: str) -> None:
    """Accept the tenant's requests again."""
    _set_disabled(name, False)
    click.echo(f"tenant {name} enabled")


@cli.command()
@click.option("--host", default=None, help="Bind address (PRINTSYNC_HOST).")
@click.option("--port", default=None, type=int, help="Port (PRINTSYNC_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the SCIM API and, in a child process, the outbox relay.

    Without PRINTSYNC_BROKER_URL (the embedded mode) the child also runs the effect worker on an
    in-memory broker: nothing else needs to run. With a Redis or RabbitMQ URL the relay only
    enqueues, and `printsync worker` applies the effects.
    """
    import uvicorn

    from api.app import create_app
    from printsync.pipeline_process import PipelineProcess
    from workers.settings import get_settings as get_worker_settings

    api_settings = get_api_settings()
    production = api_settings.environment == "production"
    admin = api_settings.admin_token
    if production and admin is not None and len(admin.get_secret_value()) < 24:
        raise click.UsageError("PRINTSYNC_ADMIN_TOKEN must be a long random secret (24+ chars)")
    database = get_database_settings()
    if parse_url(database.database_url).dialect == "sqlite":
        migrate.upgrade(database.database_url)
    get_worker_settings()  # a bad setting stops serve here, not in its child
    pipeline = PipelineProcess()
    app = create_app(api_settings, database, on_start=pipeline.attach)
    pipeline.start()
    try:
        uvicorn.run(
            app,
            host=host or api_settings.host,
            port=port or api_settings.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        pipeline.stop()


effects_commands.register(cli, run, emit)
ops_commands.register(cli)


def main() -> None:
    cli(prog_name="printsync")


if __name__ == "__main__":
    main()
