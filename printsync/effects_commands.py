"""``printsync worker``, ``printsync accounts …`` and ``printsync effects …``.

:func:`register` adds them to the ``printsync`` group.
"""

from __future__ import annotations

import os
import sys
import tempfile

import click

from metrics.exposition import ENV_VAR as MULTIPROC_VARIABLE
from metrics.exposition import prepare_multiproc_dir
from printsync.terminal import Column, Progress, Styled, emit, run, settings, table
from storage import ledger, outbox, provisioning_log, tenants
from storage.database import Database


def multiprocess_metrics(directory: str | None) -> None:
    """Several processes (``printsync worker``'s, ``printsync serve`` and its pipeline child)
    export metrics through one multiprocess directory, which must be set before
    ``prometheus_client`` is first imported: when it is not set, choose one, wipe it, and start
    this command again with it in the environment."""
    if directory:
        prepare_multiproc_dir(directory)
        os.environ.setdefault("dramatiq_prom_db", directory)
        return
    directory = tempfile.mkdtemp(prefix="printsync-metrics-")
    os.environ[MULTIPROC_VARIABLE] = directory
    os.environ["dramatiq_prom_db"] = directory  # noqa: SIM112 (Dramatiq reads this name)
    os.execv(sys.executable, [sys.executable, "-m", "printsync", *sys.argv[1:]])  # noqa: S606


ACCOUNT_COLUMNS = (
    Column("USERNAME", shrink=True, min_width=20),
    Column("STATE"),
    Column("CARDS"),
    Column("GROUPS", shrink=True),
)
EFFECT_COLUMNS = (
    Column("ID", ">"),
    Column("STATE"),
    Column("KIND"),
    Column("USER OR GROUP", shrink=True, min_width=16),
    Column("FAILED ATTEMPTS"),
    Column("UPDATED (UTC)", optional=True),
    Column("LAST ERROR", shrink=True, min_width=16),
)
_EFFECT_STATES = {
    outbox.PENDING: None,
    outbox.HELD: "yellow",
    outbox.DONE: "green",
    outbox.DEAD: "red",
}


def attempts(count: int) -> str:
    """Failed attempts in words: ``none``, ``1 failed``, ``3 failed``."""
    return "none" if count == 0 else f"{count} failed"


def register(cli: click.Group) -> None:
    """Add the worker, accounts and effects commands to ``cli``."""

    @cli.command()
    @click.option(
        "--processes", type=int, default=None, help="Worker processes (PRINTSYNC_WORKER_PROCESSES)."
    )
    @click.option(
        "--threads", type=int, default=None, help="Threads per process (PRINTSYNC_WORKER_THREADS)."
    )
    @click.option(
        "--sweeper/--no-sweeper",
        default=True,
        show_default=True,
        help="Also run a sweeping relay process.",
    )
    def worker(processes: int | None, threads: int | None, sweeper: bool) -> None:
        """Run Dramatiq worker processes for a Redis or RabbitMQ broker.

        Needs PRINTSYNC_BROKER_URL (redis://… or amqp://…); without it, `printsync serve` runs
        the effects in its own process. The API processes (`printsync serve`) keep running the
        relay, which only enqueues; this command also runs a sweeper, so effects recorded by an
        API process that died before sending them are still delivered.
        """
        loaded = settings()
        configured = loaded.worker()
        if configured.embedded:
            raise click.UsageError(
                "PRINTSYNC_BROKER_URL is not set: in the embedded mode `printsync serve` runs "
                "the workers itself"
            )
        multiprocess_metrics(loaded.prometheus_multiproc_dir)
        from dramatiq.cli import main as dramatiq_main
        from dramatiq.cli import make_argument_parser

        from printsync import worker_process

        worker_process.use(loaded)
        argv = [
            worker_process.SETUP,
            "--processes",
            str(processes or configured.worker_processes),
            "--threads",
            str(threads or configured.worker_threads),
            "--worker-shutdown-timeout",
            "30000",
        ]
        if sweeper:
            argv += ["--fork-function", worker_process.SWEEPER]
        parser = make_argument_parser()  # type: ignore[no-untyped-call]
        sys.exit(dramatiq_main(parser.parse_args(argv)))  # type: ignore[no-untyped-call]

    @cli.group()
    def accounts() -> None:
        """Print accounts of the built-in ledger."""

    @accounts.command("list")
    @click.option("--tenant", "tenant_name", required=True)
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
    def accounts_list(tenant_name: str, as_json: bool) -> None:
        """List a tenant's ledger accounts: userName, enabled, card numbers, groups."""

        async def work(db: Database) -> tuple[tenants.Tenant, list[ledger.Account]]:
            tenant = await tenants.get(db, tenant_name)
            return tenant, await ledger.list_accounts(db, tenant.id)

        tenant, found = run(work)
        rows = [account.summary() for account in found]
        if as_json:
            emit(rows)
            return
        if tenant.connector != "ledger":
            click.echo(
                f"tenant {tenant.name} uses the {tenant.connector} connector; "
                "its accounts are kept there",
                err=True,
            )
        lines = []
        for row in rows:
            state = Styled("enabled", "green") if row["enabled"] else Styled("disabled", "yellow")
            cards = (
                ",".join(card for card in (row["cardNumber"], row["secondaryCardNumber"]) if card)
                or "-"
            )
            lines.append((row["userName"], state, cards, ", ".join(row["groups"]) or "-"))
        table(lines, ACCOUNT_COLUMNS, empty="no accounts")

    @cli.group()
    def effects() -> None:
        """Effects in the outbox: what the workers apply to the print system."""

    @effects.command("list")
    @click.option("--tenant", "tenant_name", required=True)
    @click.option("--state", type=click.Choice(list(outbox.STATES)), default=None)
    @click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
    def effects_list(tenant_name: str, state: str | None, limit: int, as_json: bool) -> None:
        """List a tenant's effects, newest first."""

        async def work(db: Database) -> tuple[list[outbox.Effect], dict[str, str]]:
            tenant = await tenants.get(db, tenant_name)
            found = await outbox.list_effects(db, tenant.id, state=state, limit=limit)
            ids = sorted({effect.subject_id for effect in found})
            return found, await provisioning_log.names_of(db, tenant.id, ids)

        found, names = run(work)
        if as_json:
            emit([effect.summary() for effect in found])
            return
        lines = [
            (
                effect.id,
                Styled(effect.state, _EFFECT_STATES.get(effect.state)),
                effect.kind,
                outbox.subject_label(effect.payload, names.get(effect.subject_id))
                or effect.subject_id,
                attempts(effect.attempts),
                effect.updated_at[:19].replace("T", " "),
                effect.last_error or "-",
            )
            for effect in found
        ]
        table(lines, EFFECT_COLUMNS, empty="no effects")

    @effects.command("retry")
    @click.argument("effect_id", type=int, required=False)
    @click.option("--dead", "all_dead", is_flag=True, help="Retry every dead effect.")
    @click.option("--tenant", "tenant_name", required=True)
    def effects_retry(effect_id: int | None, all_dead: bool, tenant_name: str) -> None:
        """Make a dead effect (ID) or all dead effects (--dead) pending again."""
        if (effect_id is None) == (not all_dead):
            raise click.UsageError("give either an effect ID or --dead")

        async def work(db: Database) -> int:
            tenant = await tenants.get(db, tenant_name)
            if all_dead:
                total = await outbox.count_dead(db, tenant.id)
                with Progress("sending dead effects through again", total) as shown:
                    return await outbox.retry_dead(db, tenant.id, progress=shown.advance)
            assert effect_id is not None
            return int(await outbox.retry(db, tenant.id, effect_id))

        count = run(work)
        if effect_id is not None and not count:
            raise click.ClickException(f"effect {effect_id} of tenant {tenant_name} is not dead")
        if not count:
            click.echo(f"tenant {tenant_name} has no dead effects")
            return
        noun = "effect" if count == 1 else "effects"
        seconds = f"{settings().sweep_interval_seconds:g}"
        click.echo(
            f"{count} {noun} pending again: a running `printsync serve` (or, with a broker, "
            f"`printsync worker`) sends them within {seconds} s (PRINTSYNC_SWEEP_INTERVAL_SECONDS)"
        )
