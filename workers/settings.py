"""The workers' sections of the settings: how effects are dispatched, retried and applied
(:class:`WorkerSettings`) and how failures are mailed (:class:`NotifySettings`).

The composition root (``printsync``) builds them from the ``PRINTSYNC_*`` variables, where the
ranges are checked; the defaults here are the same.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr

from storage.guard import GuardPolicy
from storage.health import HealthPolicy
from workers.mail import SmtpSender

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
DAY_SECONDS = 86_400.0


class NotifySettings(BaseModel):
    """The notification job: failure digests and recovery mails."""

    #: ``smtp://host[:port]`` or ``smtps://…`` (see :class:`workers.mail.SmtpSender`); unset:
    #: no mail is sent (health is still computed).
    smtp_url: SecretStr | None = None
    #: Envelope sender and From of notification mails.
    mail_from: str = "printsync@localhost"
    smtp_timeout_seconds: float = 10.0
    #: At most one digest per tenant in this many seconds.
    notify_window_seconds: float = 3600
    #: How often the job runs.
    notify_interval_seconds: float = 60
    #: How long a notification being sent stays leased to its sender.
    notify_lease_seconds: float = 300
    #: The deprovisioning guard's defaults, which the mail about held effects explains.
    guard: GuardPolicy = Field(default_factory=GuardPolicy)

    def sender(self) -> SmtpSender | None:
        if self.smtp_url is None:
            return None
        return SmtpSender(
            self.smtp_url.get_secret_value(), self.mail_from, timeout=self.smtp_timeout_seconds
        )


class PaperCutSettings(BaseModel):
    """How the PaperCut connector calls its server: each call's timeout, and the quick retries
    of a failed call within one effect attempt."""

    timeout_seconds: float = 10.0
    retry_attempts: int = 3
    retry_budget_seconds: float = 5.0
    retry_initial_wait_seconds: float = 0.25


class WorkerSettings(BaseModel):
    """How effects are dispatched, retried and applied.

    ``broker_url`` unset selects the embedded mode: ``printsync serve`` runs the relay and a
    worker on an in-memory broker in a child process of its own. ``redis://…`` or ``amqp://…``
    select Redis or RabbitMQ, with ``printsync worker`` running the worker processes.
    """

    broker_url: SecretStr | None = None
    #: How long connecting to the broker, and one call to it, may take (a hung broker must not
    #: stall the relay or a worker).
    broker_timeout_seconds: float = 10.0
    queue_name: str = "printsync-effects"
    worker_processes: int = 2
    worker_threads: int = 8
    # The embedded worker (``printsync serve`` without a broker) runs few threads: its effects
    # mostly write to one SQLite database, one writer at a time, and more threads only queue
    # for that lock and the interpreter's (3,000 ledger effects: 453/s with 1 thread, 335/s
    # with 2, 190/s with 8). A print system on the network gains from more.
    embedded_worker_threads: int = 2
    # ``printsync serve`` runs its pipeline in a child process this much nicer than the API, so
    # requests come first under load (0: same priority).
    pipeline_nice: int = 19

    # Retries: Dramatiq's backoff doubles from min to max, with jitter, for max_retries retries.
    max_retries: int = 8
    min_backoff_ms: int = 30_000
    max_backoff_ms: int = 3_600_000
    effect_time_limit_ms: int = 240_000

    # The outbox relay.
    lease_seconds: float = 300.0
    sweep_interval_seconds: float = 5.0
    relay_batch_size: int = 200
    done_retention_days: float = 14.0

    # Deleted users' print accounts are deleted (redacted) after this many days.
    retention_days: float = 30.0

    # How often every tenant's print system is compared with printsync's records and what
    # drifted is repaired (``tenant.reconcile`` effects).
    reconcile_interval_seconds: float = 3600
    # The users one ``tenant.reconcile`` effect compares (one page of the tenant); the next page
    # is its own effect, recorded when this one completes.
    reconcile_page_size: int = 1000

    # The ``/metrics`` endpoint of the worker side (no port: none).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = None

    #: The ``PRINTSYNC_PAPERCUT_*`` variables.
    papercut: PaperCutSettings = Field(default_factory=PaperCutSettings)

    # A tenant whose print system refuses printsync's credentials waits; one effect tries again
    # this often (sooner after `printsync tenant update` or a passing `printsync tenant test`).
    auth_retry_seconds: float = 300.0

    #: The notification job and the health model it judges tenants by.
    notify: NotifySettings = Field(default_factory=NotifySettings)
    health: HealthPolicy = Field(default_factory=HealthPolicy)

    @property
    def broker(self) -> Literal["stub", "redis", "rabbitmq"]:
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
