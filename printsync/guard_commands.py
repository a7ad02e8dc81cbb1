"""The deprovisioning guard and Entra's cycles on the command line.

``printsync effects approve`` (release held effects), the guard options of ``tenant create`` and
``tenant update``, and what ``tenant status NAME`` says about the tenant's cycle and held
effects. :func:`register` adds the command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from printsync.terminal import run, settings
from storage import cycles, guard, tenants
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


def status_fields(view: CycleView, state: GuardStatus) -> dict[str, Any]:
    """The fields ``tenant status NAME --json`` adds."""
    return {**view.as_dict(), "held": state.held, "guard": state.as_dict()}


def status_lines(view: CycleView, state: GuardStatus, tenant: str) -> list[str]:
    """The lines ``tenant status NAME`` adds."""
    return [f"Cycle:    {view.sentence()}", f"Guard:    {state.sentence(tenant)}"]


def register(cli: click.Group) -> None:
    """Add ``effects approve`` to ``cli`` (whose ``effects`` group exists)."""
    effects_group = cli.commands["effects"]
    assert isinstance(effects_group, click.Group)

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
            f"{count} held {noun} released; the sweeper sends them "
            "shortly, and the workers apply each as its user stands then"
        )


__all__ = [
    "Details",
    "chosen",
    "details",
    "options",
    "register",
    "status_fields",
    "status_lines",
]
