"""The Dramatiq broker, built from ``PRINTSYNC_BROKER_URL``, and its middleware.

- unset: a ``StubBroker`` (in memory), for the embedded mode of ``printsync serve``;
- ``redis://`` / ``rediss://``: ``RedisBroker``;
- ``amqp://`` / ``amqps://``: ``RabbitmqBroker`` with publisher confirms.

The middleware replaces Dramatiq's defaults: ``Retries`` is configured from the settings (the
defaults retry 20 times over weeks), and :class:`LogContext` binds the message's identity to the
log context. There is no Prometheus middleware: effect outcomes are counted by our own metrics.

The broker is durable or not, it does not matter for correctness: the outbox is the record, and
its sweeper sends again whatever a broker lost.

:func:`setup` is what a worker process of ``printsync worker`` calls first (through the hook the
composition root gives Dramatiq's command line): it builds the broker, makes it the global one,
and declares the actors on it.
"""

from __future__ import annotations

from collections.abc import Mapping
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

from storage.settings import DatabaseSettings
from workers.actors import Actors, declare
from workers.effects import Effects
from workers.settings import WorkerSettings

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
    timeout = settings.broker_timeout_seconds
    if settings.broker == "redis":
        import redis
        from dramatiq.brokers.redis import RedisBroker

        # Dramatiq's consumers poll (no blocking command waits on the server), so every call
        # may be bounded: a broker that accepts connections but never answers raises a timeout
        # instead of stalling the relay.
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        return RedisBroker(client=client, middleware=chain)  # type: ignore[no-untyped-call]
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=chain, confirm_delivery=True)


class CloseEffects(Middleware):
    """Closes the effects' database connections when the worker shuts down."""

    def __init__(self, effects: Effects) -> None:
        self._effects = effects

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._effects.close()


def setup(
    settings: WorkerSettings, database: DatabaseSettings, environ: Mapping[str, str]
) -> Actors:
    """Configure this process: broker first, then the actors on it (``environ`` holds the
    variables that tenants' connectors name)."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    effects = Effects.from_settings(
        settings,
        database.database_url,
        busy_timeout_ms=database.database_busy_timeout_ms,
        environ=environ,
    )
    broker.add_middleware(CloseEffects(effects))
    actors = declare(broker, effects, settings)
    _log.info("worker_broker_ready", broker=settings.broker, queue=settings.queue_name)
    return actors
