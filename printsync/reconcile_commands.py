"""``printsync reconcile``: compare a tenant's print system with the records now, and repair
what drifted (see :mod:`workers.reconcile`).

Without ``--dry-run`` it goes through the outbox like the periodic reconcile: it records a
``tenant.reconcile`` effect and applies it in this process, page after page (each page records
one ``account.repair`` effect per account that drifted, and the effect of the next page), applies
the repairs of all pages, and prints what each one came to. A repair that fails for a passing
reason stays pending, and a running pipeline retries it like any effect. With ``--dry-run`` it
only compares, all pages in this process, and prints.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from typing import Any

import click
from dramatiq import Retry

from printsync.terminal import Column, Command, Progress, Styled, emit, run, settings, table
from storage import outbox, provisioning_log, tenants
from storage import reconcile as records
from storage.database import Database
from storage.provisioning_log import LogQuery
from workers import reconcile
from workers.effects import Effects
from workers.errors import DownstreamError

COLUMNS = (
    Column("USERNAME", shrink=True, min_width=16),
    Column("DRIFT", shrink=True, min_width=20),
    Column("RESULT", shrink=True, min_width=12),
)
#: How long to wait for effects a running pipeline took over.
SETTLE_SECONDS = 30.0
_COLOURS = {"repaired": "green", "not repaired (dry run)": "yellow"}


@click.command("reconcile", cls=Command)
@click.option("--tenant", "tenant_name", required=True, help="The tenant to reconcile.")
@click.option("--dry-run", is_flag=True, help="Report what drifted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def reconcile_command(tenant_name: str, dry_run: bool, as_json: bool) -> None:
    """Compare the tenant's print system with printsync's records and repair what drifted.

    Only accounts of the tenant's users are compared; other accounts are never touched.
    """
    loaded = settings()
    database = loaded.database()
    tenant = run(lambda db: tenants.get(db, tenant_name))
    effects = Effects.from_settings(
        loaded.worker(),
        database.database_url,
        busy_timeout_ms=database.database_busy_timeout_ms,
        environ=os.environ,
    )
    try:
        if dry_run:
            report = _compare(effects, tenant.id)
        else:
            report = _repair(effects, tenant.id)
    finally:
        effects.close()
    report["tenant"] = tenant.name
    if as_json:
        emit(report)
    else:
        _print(report)
    if any(row["result"] not in ("repaired", "not repaired (dry run)") for row in report["found"]):
        raise SystemExit(1)


def _compare(effects: Effects, tenant_id: int) -> dict[str, Any]:
    try:
        connector = effects.connectors.connector_for(tenant_id)
        with _Comparing() as shown:
            found = reconcile.scan(effects, tenant_id, connector, shown)
    except DownstreamError as error:
        raise click.ClickException(f"the print system could not be read: {error}") from None
    rows = [{**item.summary(), "result": "not repaired (dry run)"} for item in found.found]
    return {"dry_run": True, "managed": found.managed, "drifted": len(rows), "found": rows}


def _repair(effects: Effects, tenant_id: int) -> dict[str, Any]:
    effect = effects.store.run(records.record_now, tenant_id, f"cli{uuid.uuid4().hex[:12]}")
    total = effects.store.run(records.user_count, tenant_id)
    with _Comparing() as shown:
        try:
            _compare_pages(effects, effect, shown, total)
        finally:
            effects.reconcile_progress = None
    repairs = effects.store.run(records.repairs_of, tenant_id, effect.id)
    groups = effects.store.run(records.repairs_of, tenant_id, effect.id, outbox.GROUP_SYNC)
    with Progress("repairing", len(repairs) + len(groups)) as progress:
        for repair in [*repairs, *groups]:  # skipped groups are tried once more
            _apply(effects, repair.id)
            progress.advance(1)
    rows = []
    for repair, now in zip(repairs, _settle(effects, repairs), strict=True):
        rows.append(
            {
                "user_id": repair.subject_id,
                "user_name": repair.payload.get("userName"),
                "drift": repair.payload.get("drift") or [],
                "effect": repair.id,
                "result": _result(now),
            }
        )
    managed = effects.store.run(_managed, tenant_id, effect.subject_id)
    return {"dry_run": False, "managed": managed, "drifted": len(rows), "found": rows}


def _compare_pages(
    effects: Effects, first: outbox.Effect, shown: reconcile.Progress, total: int
) -> None:
    """Apply the reconcile's pages one after the other, as a worker would (a running pipeline
    may take one first: it is waited for); each page records the next with its outcome."""
    page, number, compared = first, 1, 0
    while True:
        effects.reconcile_progress = reconcile.shifted(shown, compared, total)
        _apply(effects, page.id)
        [done] = _settle(effects, [page])
        if done.state != outbox.DONE:
            error = done.last_error if done is not None else "the effect is gone"
            raise click.ClickException(
                f"the comparison failed: {error} (effect {page.id}; the pipeline retries it if "
                "the failure passes)"
            )
        number += 1
        key = records.page_key(first.tenant_id, first.id, number)
        following = effects.store.run(records.effect_by_key, key)
        if following is None:
            return
        compared = following.payload.get("managed", compared)
        page = following


def _apply(effects: Effects, effect_id: int) -> None:
    """One attempt at the effect, as a worker makes it; its outcome is in the outbox."""
    with contextlib.suppress(Retry, DownstreamError):
        effects.run(effect_id)


def _settle(
    effects: Effects, started: list[outbox.Effect], timeout: float = SETTLE_SECONDS
) -> list[outbox.Effect]:
    """The effects as they are once each one has had an attempt. An effect that a running
    pipeline took before this process could is still pending without a failed attempt while
    that pipeline works on it: wait for it (up to ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        current = [effects.store.run(outbox.get, item.id) or item for item in started]
        waiting = [item for item in current if item.state == outbox.PENDING and item.attempts == 0]
        if not waiting or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def _result(effect: outbox.Effect) -> str:
    if effect.state == outbox.DONE:
        return "repaired"
    if effect.state == outbox.DEAD:
        return f"failed: {effect.last_error}"
    return f"will retry: {effect.last_error}"


async def _managed(db: Database, tenant_id: int, subject: str) -> int | None:
    """How many accounts the reconcile compared, from its provisioning-log entry."""
    query = LogQuery(tenant_id=tenant_id, target=subject, result=provisioning_log.SUCCESS)
    for entry in await provisioning_log.search(db, query):
        if entry.operation == outbox.TENANT_RECONCILE and entry.changes:
            managed = entry.changes.get("managed")
            return managed if isinstance(managed, int) else None
    return None


class _Comparing:
    """The progress line of the comparison (on a terminal): accounts compared of the tenant's
    users, over all pages, once the connector starts reading them."""

    def __init__(self) -> None:
        self._progress: Progress | None = None

    def __enter__(self) -> _Comparing:
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.__exit__()

    def __call__(self, done: int, total: int) -> None:
        if self._progress is None:
            self._progress = Progress("comparing accounts", total).__enter__()
        self._progress.advance(done - self._progress.done)


def _print(report: dict[str, Any]) -> None:
    managed = report["managed"]
    counted = "" if managed is None else f"{managed} accounts managed, "
    click.echo(f"Tenant {report['tenant']}: {counted}{report['drifted']} drifted")
    rows = [
        (
            row["user_name"] or row["user_id"],
            ", ".join(row["drift"]),
            Styled(row["result"], _COLOURS.get(row["result"], "red")),
        )
        for row in report["found"]
    ]
    table(rows, COLUMNS, empty="nothing drifted")
    if report["dry_run"]:
        click.echo("Dry run: nothing was changed.")


def register(cli: click.Group) -> None:
    """Add ``reconcile`` to the ``printsync`` group."""
    cli.add_command(reconcile_command)


__all__ = ["reconcile_command", "register"]
