"""Worker settings, read from the environment (``PRINTSYNC_*``) when a process starts."""

from __future__ import annotations

from functools import lru_cache
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
DAY_SECONDS = 86_400.0


class WorkerSettings(BaseSettings):
    """How effects are dispatched, retried and applied.

    ``broker_url`` unset selects the embedded mode: ``printsync serve`` runs the relay and a
    worker on an in-memory broker in a child process of its own. ``redis://…`` or ``amqp://…``
    select Redis or RabbitMQ, with ``printsync worker`` running the worker processes.
    """

    model_config = SettingsConfigDict(env_prefix="PRINTSYNC_", extra="ignore")

    broker_url: SecretStr | None = None
    queue_name: str = Field(
        default="printsync-effects", pattern=r"^[A-Za-z_][A-Za-z0-9._-]*$", max_length=100
    )
    worker_processes: int = Field(default=2, ge=1, le=64)
    worker_threads: int = Field(default=8, ge=1, le=256)
    # The embedded worker (``printsync serve`` without a broker) runs few threads: its effects
    # mostly write to one SQLite database, one writer at a time, and more threads only queue
    # for that lock and the interpreter's (3,000 ledger effects: 453/s with 1 thread, 335/s
    # with 2, 190/s with 8). A print system on the network gains from more.
    embedded_worker_threads: int = Field(default=2, ge=1, le=256)
    # ``printsync serve`` runs its pipeline in a child process this much nicer than the API, so
    # requests come first under load (0: same priority).
    pipeline_nice: int = Field(default=19, ge=0, le=19)

    # Retries: Dramatiq's backoff doubles from min to max, with jitter, for max_retries retries.
    max_retries: int = Field(default=8, ge=0, le=50)
    min_backoff_ms: int = Field(default=30_000, ge=1)
    max_backoff_ms: int = Field(default=3_600_000, ge=1)
    effect_time_limit_ms: int = Field(default=240_000, ge=1_000)

    # The outbox relay.
    lease_seconds: float = Field(default=300.0, gt=0)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    done_retention_days: float = Field(default=14.0, ge=0)

    # Deleted users' print accounts are deleted (redacted) after this many days.
    retention_days: float = Field(default=30.0, ge=0)

    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    smtp_url: SecretStr | None = None
    mail_from: str = "printsync@localhost"

    papercut_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    papercut_retry_attempts: int = Field(default=3, ge=1, le=10)
    papercut_retry_budget_seconds: float = Field(default=5.0, gt=0, le=60)
    papercut_retry_initial_wait_seconds: float = Field(default=0.25, gt=0, le=10)

    @field_validator("broker_url")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"the broker URL must start with one of {', '.join(BROKER_SCHEMES)}"
                " (unset for the embedded broker)"
            )
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.min_backoff_ms > self.max_backoff_ms:
            raise ValueError("min_backoff_ms must not exceed max_backoff_ms")
        return self

    @property
    def broker(self) -> str:
        """``stub`` (embedded), ``redis`` or ``rabbitmq``."""
        if self.broker_url is None:
            return "stub"
        scheme = urlsplit(self.broker_url.get_secret_value()).scheme
        return "redis" if scheme.startswith("redis") else "rabbitmq"

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * DAY_SECONDS


@lru_cache(maxsize=1)
def get_settings() -> WorkerSettings:
    return WorkerSettings()
