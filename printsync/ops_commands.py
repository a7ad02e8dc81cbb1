"""Operator commands: ``printsync tenant status`` and ``printsync log``.

:func:`register` adds them to the ``printsync`` command group (``status`` under its ``tenant``
group, which it creates if missing).
"""

from __future__ import annotations

import click

from printsync import guard_commands
from printsync.terminal import Column, Command, Styled, emit, run, subgroup, table
from storage import clock, health, notifications, outbox, provisioning_log, reconcile, tenants
from storage.database import Database
from storage.health import Health
from storage.notifications import Notification
from storage.provisioning_log import Entry, LogQuery


def when(stamp: str | None) -> str:
    """A stored time as operators read it: ``2026-01-02 03:04:05 UTC``."""
    return "never" if stamp is None else stamp[:19].replace("T", " ") + " UTC"


_COLOURS = {health.HEALTHY: "green", health.DEGRADED: "yellow", health.FAILING: "red"}
_STATUS_COLUMNS = (
    Column("TENANT"),
    Column("HEALTH"),
    Column("LAST SUCCESS"),
    Column("REASON", shrink=True, min_width=20),
)


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
        lines = [
            (
                item.tenant,
                Styled(item.state, _COLOURS.get(item.state)),
                when(item.numbers.last_success_at),
                item.reason,
            )
            for item in healths
        ]
        table(lines, _STATUS_COLUMNS, empty="no tenants")
        return

    async def work(
        db: Database,
    ) -> tuple[
        Health,
        list[Notification],
        guard_commands.Details,
        list[reconcile.SkippedGroup],
        list[outbox.ScheduledWork],
    ]:
        tenant = await tenants.get(db, name)
        extra = await guard_commands.details(db, tenant)
        return (
            await health.read(db, tenant),
            await notifications.recent(db, tenant.id, 5),
            extra,
            await reconcile.skipped(db, tenant.id),
            await outbox.scheduled(db, tenant.id),
        )

    state, mails, (cycle, held), skipped, later = run(work)
    if as_json:
        emit(
            {
                **state.as_dict(),
                **guard_commands.status_fields(cycle, held),
                "scheduled": [item.summary() for item in later],
                "notifications": [mail.summary() for mail in mails],
                "skipped_groups": [group.summary() for group in skipped],
            }
        )
        return
    _print_detail(state, mails, guard_commands.status_lines(cycle, held, state.tenant), later)
    _print_skipped(skipped)


def _print_skipped(skipped: list[reconcile.SkippedGroup]) -> None:
    """Groups the print system cannot hold: not an error, but worth knowing."""
    if not skipped:
        return
    click.echo(f"Skipped groups ({len(skipped)}, not in the print system):")
    table(
        [(group.display_name, group.reason, when(group.skipped_at)) for group in skipped],
        _SKIPPED_COLUMNS,
    )


def _print_detail(
    state: Health,
    mails: list[notifications.Notification],
    extra: list[str],
    later: list[outbox.ScheduledWork],
) -> None:
    numbers = state.numbers
    click.echo(f"Tenant:   {state.tenant}")
    click.echo("State:    " + click.style(state.state, fg=_COLOURS.get(state.state), bold=True))
    click.echo(f"Reason:   {state.reason}")
    others = [f for f in state.findings if f.sentence not in state.reason]
    for finding in others:
        click.echo(f"          also ({finding.state}): {finding.sentence}")
    window = health.describe_duration(numbers.window_seconds)
    click.echo(f"Window:   last {window}")
    click.echo(
        f"SCIM:     {numbers.scim_requests} requests, {numbers.scim_succeeded} succeeded, "
        f"{numbers.scim_expected} refused as expected (404 for a deleted id), "
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
    _print_scheduled(later)
    click.echo(f"Last successful SCIM request: {when(numbers.last_success_at)}")
    for line in extra:
        click.echo(line)
    if mails:
        click.echo("Notifications:")
        table(
            [
                (when(mail.created_at), mail.kind, mail.state, ", ".join(mail.recipients))
                for mail in mails
            ],
            _MAIL_COLUMNS,
        )


def _print_scheduled(later: list[outbox.ScheduledWork]) -> None:
    """Effects scheduled for later (a purge after the retention period): not pending yet."""
    if not later:
        click.echo("Scheduled: none")
        return
    now = clock.now()
    for index, item in enumerate(later):
        due = health.describe_duration((clock.parse(item.next_due_at) - now).total_seconds())
        noun = "effect" if item.count == 1 else "effects"
        click.echo(
            ("Scheduled: " if index == 0 else "           ")
            + f"{item.count} {item.kind} {noun}, the next due {when(item.next_due_at)} "
            f"(in {due})"
        )


_SKIPPED_COLUMNS = (
    Column("GROUP", shrink=True, min_width=12),
    Column("REASON", shrink=True, min_width=20),
    Column("SINCE"),
)
_MAIL_COLUMNS = (
    Column("  CREATED"),
    Column("KIND"),
    Column("STATE"),
    Column("TO", shrink=True),
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
        found = await provisioning_log.search(db, query)
        return (found if as_json else await provisioning_log.named(db, found)), names

    entries, names = run(work)
    if as_json:
        emit([{**entry.as_dict(), "tenant": names.get(entry.tenant_id)} for entry in entries])
        return
    one_tenant = tenant_name is not None or len(names) == 1
    columns = [column for column in _LOG_COLUMNS if not (one_tenant and column.header == "TENANT")]
    rows = []
    for entry in entries:
        row = log_row(entry)
        if not one_tenant:
            row.insert(1, names.get(entry.tenant_id, str(entry.tenant_id)))
        rows.append(row)
    table(rows, columns, empty="no entries")


def _time_option(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        return provisioning_log.parse_time(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=name) from None


_LOG_COLUMNS = (
    Column("TIME (UTC)"),
    Column("TENANT"),
    Column("USER OR GROUP", shrink=True, min_width=16),
    Column("WHAT HAPPENED", shrink=True, min_width=24),
    Column("RESULT"),
)
_TONES = {"ok": None, "info": None, "warning": "yellow", "error": "red"}
_RESULTS = {
    provisioning_log.SUCCESS: "ok",
    provisioning_log.CLIENT_ERROR: "refused",
    provisioning_log.SERVER_ERROR: "failed",
    provisioning_log.FAILED: "failed",
    provisioning_log.DEAD: "gave up",
    provisioning_log.RETRIED: "retrying",
}


def log_row(entry: Entry) -> list[str | Styled]:
    """One entry as the cells of ``printsync log`` (without the tenant): the time in UTC, whom
    it is about (userName or displayName, else the id), what happened in words, the result."""
    event = provisioning_log.describe(entry)
    who = entry.target_name or entry.target_id or "-"
    result = _RESULTS.get(entry.result, entry.result)
    if entry.status is not None:
        result = f"{result} {entry.status}"
    return [
        entry.time[:19].replace("T", " "),
        who,
        Styled(event.text(), _TONES[event.tone]),
        Styled(result, _TONES[event.tone]),
    ]


def register(cli_group: click.Group) -> None:
    """Add ``tenant status`` and ``log`` to the ``printsync`` group."""
    tenant_group = subgroup(cli_group, "tenant", "Tenants and their Secret Tokens.")
    tenant_group.add_command(tenant_status)
    cli_group.add_command(log)


__all__ = ["log", "register", "tenant_status"]
