"""The Dramatiq broker, built from ``PRINTSYNC_BROKER_URL``, and its middleware.

- unset: a ``StubBroker`` (in memory), for the embedded mode of ``printsync serve``;
- ``redis://`` / ``rediss://``: ``RedisBroker``;
- ``amqp://`` / ``amqps://``: ``RabbitmqBroker`` with publisher confirms.

The middleware replaces Dramatiq's defaults: ``Retries`` is configured from the settings (the
defaults retry 20 times over weeks), and :class:`LogContext` binds the message's identity to the
log context. There is no Prometheus middleware: effect outcomes are counted by our own metrics.

The broker is durable or not, it does not matter for correctness: the outbox is the record, and
its sweeper sends again whatever a broker lost.

:func:`setup` is what a worker process calls first (``dramatiq workers.broker:setup``): it builds
the broker, makes it the global one, and declares the actors on it.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from storage.settings import get_settings as get_database_settings
from workers.actors import Actors, declare
from workers.effects import Effects
from workers.settings import WorkerSettings, get_settings

_log = structlog.get_logger(__name__)


class LogContext(Middleware):
    """Binds ``message_id`` and ``actor_name`` to the log context while a message runs."""

    def before_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
    ) -> None:
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, actor_name=message.actor_name
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
    ) -> None:
        structlog.contextvars.clear_contextvars()


def middleware(settings: WorkerSettings) -> list[Middleware]:
    return [
        AgeLimit(),
        TimeLimit(time_limit=settings.effect_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        LogContext(),
    ]


def build_broker(settings: WorkerSettings) -> dramatiq.Broker:
    """A new broker for the configured URL (not yet the global one)."""
    chain = middleware(settings)
    if settings.broker_url is None:
        return StubBroker(middleware=chain)
    url = settings.broker_url.get_secret_value()
    if settings.broker == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=chain)  # type: ignore[no-untyped-call]
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=chain, confirm_delivery=True)


class CloseEffects(Middleware):
    """Closes the effects' database connections when the worker shuts down."""

    def __init__(self, effects: Effects) -> None:
        self._effects = effects

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._effects.close()


def setup() -> Actors:
    """Configure this process from the environment: broker first, then the actors on it.

    The Dramatiq command line calls it in every worker process (``workers.broker:setup``).
    """
    settings = get_settings()
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    database = get_database_settings()
    effects = Effects.from_settings(
        settings,
        database.database_url,
        os.environ,
        busy_timeout_ms=database.database_busy_timeout_ms,
    )
    broker.add_middleware(CloseEffects(effects))
    actors = declare(broker, effects, settings)
    _log.info("worker_broker_ready", broker=settings.broker, queue=settings.queue_name)
    return actors
