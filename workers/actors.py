"""Actor declarations: one actor per effect kind, each taking the effect's id.

Actors are declared on a given broker by :func:`declare` (a worker process calls it from
``workers.broker.setup`` once the broker is set), so a process can hold more than one broker, as
tests and the benchmark do. Names are explicit and never change: messages already queued under a
name must still find their actor.

Every effect actor retries transient failures (``workers.effects`` raises ``Retry`` with the
backoff it also wrote to the outbox), fails permanent ones at once (``throws``), and names
``give_up_effect`` to run when Dramatiq's retries run out before the outbox's count did (for
instance, the database was down while an attempt failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq

from storage import outbox
from workers.effects import Effects
from workers.errors import PermanentError
from workers.settings import WorkerSettings

#: Actor name of each effect kind.
ACTOR_NAMES: Mapping[str, str] = {
    outbox.ACCOUNT_SYNC: "sync_print_account",
    outbox.ACCOUNT_DELETE: "remove_print_account",
    outbox.ACCOUNT_PURGE: "purge_print_account",
    outbox.GROUP_SYNC: "sync_print_group",
    outbox.GROUP_DELETE: "delete_print_group",
    outbox.TENANT_RECONCILE: "reconcile_tenant",
    outbox.ACCOUNT_REPAIR: "repair_print_account",
}
GIVE_UP_ACTOR = "give_up_effect"


@dataclass(frozen=True, slots=True)
class Actors:
    """The actors declared on one broker."""

    broker: dramatiq.Broker
    by_kind: Mapping[str, dramatiq.Actor[[int], None]]
    give_up: dramatiq.Actor[[dict[str, Any], dict[str, Any]], None]

    def send(self, kind: str, effect_id: int) -> None:
        """Enqueue one message carrying the effect's id."""
        self.by_kind[kind].send(effect_id)


def _effect_actor(effects: Effects, kind: str) -> Callable[[int], None]:
    def apply(effect_id: int) -> None:
        effects.run(effect_id, kind=kind)

    apply.__name__ = apply.__qualname__ = ACTOR_NAMES[kind]
    return apply


def declare(broker: dramatiq.Broker, effects: Effects, settings: WorkerSettings) -> Actors:
    """Declare the effect actors on ``broker``, bound to ``effects``."""

    def give_up_effect(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
        args = message.get("args") or ()
        if args and isinstance(args[0], int):
            effects.exhausted(args[0], retries=int(retry_info.get("retries", 0)))

    give_up = dramatiq.actor(
        actor_name=GIVE_UP_ACTOR, broker=broker, queue_name=settings.queue_name, max_retries=3
    )(give_up_effect)
    options: dict[str, Any] = {
        "max_retries": settings.max_retries,
        "min_backoff": settings.min_backoff_ms,
        "max_backoff": settings.max_backoff_ms,
        "time_limit": settings.effect_time_limit_ms,
        "throws": (PermanentError,),
        "on_retry_exhausted": GIVE_UP_ACTOR,
    }
    by_kind = {
        kind: dramatiq.actor(
            actor_name=name, broker=broker, queue_name=settings.queue_name, **options
        )(_effect_actor(effects, kind))
        for kind, name in ACTOR_NAMES.items()
    }
    return Actors(broker, by_kind, give_up)
