"""Operator commands: ``printsync tenant status`` and ``printsync log``.

:func:`register` adds them to the ``printsync`` command group (``status`` under its ``tenant``
group, which it creates if missing).
"""

from __future__ import annotations

import click

from printsync.terminal import Column, Command, Group, emit, run, table
from storage import health, notifications, provisioning_log, tenants
from storage.database import Database
from storage.health import Health
from storage.provisioning_log import Entry, LogQuery


def _when(stamp: str | None) -> str:
    return "never" if stamp is None else stamp[:19].replace("T", " ")


_COLOURS = {health.HEALTHY: "green", health.DEGRADED: "yellow", health.FAILING: "red"}
#: tenant, state, reason
_STATUS_COLUMNS = (Column(24), Column(), Column())


@click.command("status", cls=Command)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tenant_status(name: str | None, as_json: bool) -> None:
    """Sync health of every tenant, or of NAME with its numbers."""
    if name is None:
        healths = run(health.read_all)
        if as_json:
            emit([item.as_dict() for item in healths])
            return
        if not healths:
            click.echo("no tenants")
        # The state is padded before it is coloured: the colour codes take no room.
        lines = [
            (item.tenant, click.style(f"{item.state:<9}", fg=_COLOURS[item.state]), item.reason)
            for item in healths
        ]
        table(lines, _STATUS_COLUMNS)
        return

    async def work(db: Database) -> tuple[Health, list[notifications.Notification]]:
        tenant = await tenants.get(db, name)
        return await health.read(db, tenant), await notifications.recent(db, tenant.id, 5)

    state, mails = run(work)
    if as_json:
        emit({**state.as_dict(), "notifications": [mail.summary() for mail in mails]})
        return
    _print_detail(state, mails)


def _print_detail(state: Health, mails: list[notifications.Notification]) -> None:
    numbers = state.numbers
    click.echo(f"Tenant:   {state.tenant}")
    click.echo("State:    " + click.style(state.state, fg=_COLOURS[state.state], bold=True))
    click.echo(f"Reason:   {state.reason}")
    others = [f for f in state.findings if f.sentence not in state.reason]
    for finding in others:
        click.echo(f"          also ({finding.state}): {finding.sentence}")
    window = health.describe_duration(numbers.window_seconds)
    click.echo(f"Window:   last {window}")
    click.echo(
        f"SCIM:     {numbers.scim_requests} requests, {numbers.scim_succeeded} succeeded, "
        f"{numbers.scim_client_errors} client errors, "
        f"{numbers.scim_server_errors} server errors"
    )
    click.echo(
        f"Effects:  {numbers.effects_succeeded} succeeded, "
        f"{numbers.effects_retrying} retrying, {numbers.effects_dead} gave up"
    )
    lag = numbers.oldest_pending_age_seconds
    click.echo(
        "Pending:  "
        + ("none" if lag is None else f"oldest waiting {health.describe_duration(lag)}")
    )
    click.echo(f"Last successful SCIM request: {_when(numbers.last_success_at)}")
    if mails:
        click.echo("Notifications:")
        for mail in mails:
            click.echo(
                f"  {_when(mail.created_at)}  {mail.kind:<8} {mail.state:<8} "
                f"{', '.join(mail.recipients)}"
            )


@click.command("log", cls=Command)
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant.")
@click.option(
    "--user",
    "target",
    default=None,
    help="A user or group: its id, or its userName/displayName (any case).",
)
@click.option("--result", type=click.Choice(list(provisioning_log.RESULTS)), default=None)
@click.option(
    "--since", default=None, help="ISO 8601 time, or a duration back from now such as 15m, 2h, 7d."
)
@click.option("--until", default=None, help="ISO 8601 time or duration (exclusive).")
@click.option(
    "--limit",
    default=provisioning_log.DEFAULT_LIMIT,
    show_default=True,
    type=click.IntRange(1, provisioning_log.MAX_LIMIT),
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def log(
    tenant_name: str | None,
    target: str | None,
    result: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The provisioning log, newest first: what happened to users and groups, and why."""
    since_stamp = _time_option(since, "--since")
    until_stamp = _time_option(until, "--until")

    async def work(db: Database) -> tuple[list[Entry], dict[int, str]]:
        names = {tenant.id: tenant.name for tenant in await tenants.list_all(db)}
        tenant_id = None
        if tenant_name is not None:
            tenant_id = (await tenants.get(db, tenant_name)).id
        query = LogQuery(
            tenant_id=tenant_id,
            target=target,
            result=result,
            since=since_stamp,
            until=until_stamp,
            limit=limit,
        )
        return await provisioning_log.search(db, query), names

    entries, names = run(work)
    if as_json:
        emit([{**entry.as_dict(), "tenant": names.get(entry.tenant_id)} for entry in entries])
        return
    if not entries:
        click.echo("no entries")
    for entry in entries:
        click.echo(_line(entry, names.get(entry.tenant_id, str(entry.tenant_id))))


def _time_option(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        return provisioning_log.parse_time(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=name) from None


def _line(entry: Entry, tenant: str) -> str:
    target = entry.target_name or ""
    if entry.target_id:
        target = f"{target} ({entry.target_id})" if target else entry.target_id
    status = "" if entry.status is None else f" {entry.status}"
    error = f"  {entry.error}" if entry.error else ""
    return (
        f"{_when(entry.time)}  {tenant:<16} {entry.source:<6} {entry.operation:<16} "
        f"{target or '-'}  {entry.result}{status}{error}"
    )


def register(cli_group: click.Group) -> None:
    """Add ``tenant status`` and ``log`` to the ``printsync`` group."""
    tenant_group = cli_group.commands.get("tenant")
    if not isinstance(tenant_group, click.Group):
        tenant_group = Group("tenant", help="Tenants and their Secret Tokens.")
        cli_group.add_command(tenant_group)
    tenant_group.add_command(tenant_status)
    cli_group.add_command(log)


__all__ = ["log", "register", "tenant_status"]
