"""The deprovisioning guard and Entra's cycles on the command line.

``printsync tenant update NAME`` (a tenant's own guard settings), ``printsync effects approve``
(release held effects), the guard options of ``tenant create``, and what ``tenant status NAME``
says about the tenant's cycle and held effects. :func:`register` adds the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from printsync.terminal import run, settings
from storage import clock, cycles, guard, tenants
from storage.cycles import CycleView
from storage.database import Database
from storage.guard import GuardStatus

F = TypeVar("F", bound=Callable[..., Any])
#: What ``tenant status NAME`` adds: the tenant's cycle and its guard.
Details = tuple[CycleView, GuardStatus]

#: Each guard option: its click name, the override it sets, its help.
_OPTIONS = (
    (
        "--guard-min",
        "min",
        "Revocations and deletions a window always lets through (0 with --guard-percent 0: "
        "the guard is off).",
        click.IntRange(0),
    ),
    (
        "--guard-percent",
        "percent",
        "… or this per cent of the tenant's enabled users, whichever is more.",
        click.IntRange(0, 100),
    ),
    (
        "--guard-window",
        "window_seconds",
        "The guard's window in seconds (0: the guard is off).",
        click.IntRange(0, 604_800),
    ),
)


def options(function: F) -> F:
    """Add ``--guard-min``, ``--guard-percent`` and ``--guard-window`` (unset: the
    deployment's ``PRINTSYNC_DEPROVISION_GUARD_*``)."""
    for flag, name, text, kind in reversed(_OPTIONS):
        function = click.option(flag, f"guard_{name}", type=kind, default=None, help=text)(function)
    return function


def chosen(values: dict[str, Any]) -> dict[str, int | None]:
    """The guard overrides among a command's option ``values`` that were given (and removes
    every guard option from ``values``)."""
    found: dict[str, int | None] = {}
    for _, name, _, _ in _OPTIONS:
        value = values.pop(f"guard_{name}", None)
        if value is not None:
            found[name] = int(value)
    return found


async def details(db: Database, tenant: tenants.Tenant) -> Details:
    """What ``tenant status NAME`` adds: the tenant's cycle and its guard."""
    loaded = settings()
    found = await cycles.recent(db, tenant.id)
    view = cycles.view(found, loaded.cycles().gap_seconds)
    return view, await guard.status(db, tenant.id, loaded.guard())


def when(stamp: str | None) -> str:
    return "unknown" if stamp is None else stamp[:19].replace("T", " ") + " UTC"


def cycle_sentence(view: CycleView) -> str:
    """The tenant's cycle in one sentence."""
    cycle = view.cycle
    if cycle is None:
        return "No provisioning cycle from Entra ID seen yet."
    kind = "initial" if cycle.initial else "incremental"
    counts = (
        f"{cycle.created} created, {cycle.updated} updated, {cycle.disabled} disabled, "
        f"{cycle.deleted} deleted, {cycle.failed} failed"
    )
    rate = cycle.as_dict(view.now, view.gap_seconds)["requests_per_second"]
    pace = f", {rate} per second" if rate is not None else ""
    if view.running:
        return (
            f"An {kind} cycle is running since {when(cycle.started_at)}: "
            f"{cycle.requests} requests so far ({counts}){pace}."
        )
    return (
        f"The last cycle ({kind}) ran from {when(cycle.started_at)} to {when(cycle.ended_at)}: "
        f"{cycle.requests} requests ({counts}){pace}; the next is expected around "
        f"{when(view.next_expected_at)}."
    )


def guard_sentence(state: GuardStatus, tenant: str) -> str:
    """The guard in one sentence: what it holds, or how far its window went."""
    policy = state.policy
    if state.held:
        noun = "revocation or deletion" if state.held == 1 else "revocations and deletions"
        return (
            f"held: {state.held} {noun} of print access wait for approval "
            f"(more than {state.threshold} in {policy.window_seconds} s); release them with "
            f"`printsync effects approve --tenant {tenant}`."
        )
    if not policy.active:
        return "off."
    if state.window_started_at is None:
        return (
            f"on (more than max({policy.min}, {policy.percent} % of enabled users) revocations "
            f"in {policy.window_seconds} s are held); nothing held."
        )
    return (
        f"on; {state.admitted} of {state.threshold} revocations used in the window since "
        f"{when(state.window_started_at)}; nothing held."
    )


def status_fields(view: CycleView, state: GuardStatus) -> dict[str, Any]:
    """The fields ``tenant status NAME --json`` adds."""
    return {**view.as_dict(), "held": state.held, "guard": state.as_dict()}


def status_lines(view: CycleView, state: GuardStatus, tenant: str) -> list[str]:
    """The lines ``tenant status NAME`` adds."""
    return [f"Cycle:    {cycle_sentence(view)}", f"Guard:    {guard_sentence(state, tenant)}"]


def register(cli: click.Group) -> None:
    """Add ``tenant update`` and ``effects approve`` to ``cli`` (whose ``tenant`` and
    ``effects`` groups exist)."""
    tenant_group = cli.commands["tenant"]
    effects_group = cli.commands["effects"]
    assert isinstance(tenant_group, click.Group) and isinstance(effects_group, click.Group)

    @tenant_group.command("update")
    @click.argument("name")
    @options
    def tenant_update(name: str, **values: Any) -> None:
        """Change a tenant's settings (only those given)."""
        overrides = chosen(values)
        if not overrides:
            raise click.UsageError("give at least one setting to change")

        async def work(db: Database) -> None:
            tenant = await tenants.get(db, name)
            await guard.set_overrides(db, tenant.id, overrides)

        run(work)
        click.echo(f"tenant {name} updated")

    @effects_group.command("approve")
    @click.argument("effect_ids", type=int, nargs=-1)
    @click.option("--tenant", "tenant_name", required=True)
    def effects_approve(effect_ids: Sequence[int], tenant_name: str) -> None:
        """Release held effects (all of the tenant's, or the IDs given) to be applied, and
        start a new guard window."""

        async def work(db: Database) -> int:
            tenant = await tenants.get(db, tenant_name)
            return await guard.approve(db, tenant.id, effect_ids)

        count = run(work)
        if effect_ids and count < len(effect_ids):
            missing = len(effect_ids) - count
            click.echo(f"{missing} of the effects given were not held", err=True)
        noun = "effect" if count == 1 else "effects"
        click.echo(
            f"{count} held {noun} released at {when(clock.stamp())}; the sweeper sends them "
            "shortly, and the workers apply each as its user stands then"
        )


__all__ = [
    "Details",
    "chosen",
    "cycle_sentence",
    "details",
    "guard_sentence",
    "options",
    "register",
    "status_fields",
    "status_lines",
]
