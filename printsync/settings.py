"""Every setting of printsync, read from the environment and validated when a process starts.

:class:`Settings` declares each ``PRINTSYNC_*`` variable with its type, default and range; the
packages never read the environment themselves but receive their sections as plain models
(:meth:`Settings.api`, :meth:`Settings.database`, :meth:`Settings.worker`), built here.

:func:`load_or_exit` is how every process starts: a value out of range stops it before it does
anything, with one line per bad variable naming it and its rule
(``PRINTSYNC_NOTIFY_WINDOW_SECONDS: must be at least 60``) and exit status 2. Child processes
(the pipeline child of ``printsync serve``, the worker processes of ``printsync worker``) inherit
the environment and so validate the same values.

Secrets are ``SecretStr``; an empty one means unset (an empty ``PRINTSYNC_ADMIN_TOKEN`` turns
the admin endpoints off). Outside development, placeholder secrets are refused.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import ArgumentError

from api.settings import ApiSettings
from metrics.exposition import ENV_VAR as MULTIPROC_VARIABLE
from storage.cycles import CycleSettings
from storage.database import parse_url
from storage.guard import GuardPolicy
from storage.health import HealthPolicy
from storage.provisioning_log import LogSettings
from storage.settings import DEFAULT_DATABASE_URL, DatabaseSettings
from workers.mail import SmtpSender
from workers.settings import BROKER_SCHEMES, NotifySettings, PaperCutSettings, WorkerSettings

PREFIX = "PRINTSYNC_"
REDIS_SCHEMES = ("redis", "rediss")
DEVELOPMENT = "development"
#: Outside development the admin token must be at least this long.
MIN_ADMIN_TOKEN_LENGTH = 24
#: Values (lower case) that only stand in for a secret.
PLACEHOLDERS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "password", "example", "placeholder", "todo"}
)

Section = TypeVar("Section", bound=BaseModel)


def _empty_is_unset(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return None if value == "" else value


#: A secret; an empty value means unset.
Secret = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]


def is_placeholder(value: str) -> bool:
    """True for a value that stands in for a secret: a word such as ``changeme``, ``…``, or one
    character repeated."""
    text = value.strip().lower()
    return text in PLACEHOLDERS or len(set(text)) <= 1


class Settings(BaseSettings):
    """Every ``PRINTSYNC_*`` variable (the field name, upper case, after the prefix)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", validate_default=True
    )

    # The process ----------------------------------------------------------------------------
    #: ``production`` switches logs to JSON and refuses placeholder secrets.
    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: ``prometheus_client``'s own variable, which the start script sets; no prefix.
    prometheus_multiproc_dir: str | None = Field(
        default=None, validation_alias=AliasChoices(MULTIPROC_VARIABLE)
    )

    #: Connections and requests an API process holds at once; past it, 503 (uvicorn).
    limit_concurrency: int = Field(default=500, ge=1, le=100_000)
    #: An idle connection (new, or after a response) is closed after this many seconds.
    keepalive_timeout_seconds: int = Field(default=20, ge=1, le=300)
    #: A request's head and body must arrive within this long, or the connection is closed.
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    # The API --------------------------------------------------------------------------------
    public_url: str = "http://127.0.0.1:8000"
    admin_token: Secret = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    rate_limit_per_second: float = Field(default=100.0, ge=0, allow_inf_nan=False)
    rate_limit_burst: int = Field(default=200, ge=0)
    #: The Redis all API processes share the rate limits through; unset: the broker's, if Redis.
    rate_limit_redis_url: Secret = None
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0, le=5)

    # The database ---------------------------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)

    # Effects: broker, worker processes, retries, relay ----------------------------------------
    broker_url: Secret = None
    broker_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    queue_name: str = Field(
        default="printsync-effects", pattern=r"^[A-Za-z_][A-Za-z0-9._-]*$", max_length=100
    )
    worker_processes: int = Field(default=2, ge=1, le=64)
    worker_threads: int = Field(default=8, ge=1, le=256)
    embedded_worker_threads: int = Field(default=2, ge=1, le=256)
    pipeline_nice: int = Field(default=19, ge=0, le=19)
    max_retries: int = Field(default=8, ge=0, le=50)
    min_backoff_ms: int = Field(default=30_000, ge=1)
    max_backoff_ms: int = Field(default=3_600_000, ge=1)
    effect_time_limit_ms: int = Field(default=240_000, ge=1_000)
    lease_seconds: float = Field(default=300.0, gt=0)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    done_retention_days: float = Field(default=14.0, ge=0)
    retention_days: float = Field(default=30.0, ge=0)
    reconcile_interval_seconds: float = Field(default=3600, ge=60, le=604_800)
    reconcile_page_size: int = Field(default=1000, ge=1, le=100_000)
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # PaperCut ---------------------------------------------------------------------------------
    papercut_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    papercut_retry_attempts: int = Field(default=3, ge=1, le=10)
    papercut_retry_budget_seconds: float = Field(default=5.0, gt=0, le=60)
    papercut_retry_initial_wait_seconds: float = Field(default=0.25, gt=0, le=10)
    auth_retry_seconds: float = Field(default=300.0, gt=0, le=86_400)

    # Failure e-mails ------------------------------------------------------------------------
    smtp_url: Secret = None
    mail_from: str = "printsync@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    notify_window_seconds: float = Field(default=3600, ge=60)
    notify_interval_seconds: float = Field(default=60, gt=0)
    notify_lease_seconds: float = Field(default=300, gt=0)

    # The health model (``storage.health``) ----------------------------------------------------
    health_window_seconds: float = Field(default=3600, gt=0)
    health_min_requests: int = Field(default=10, ge=1)
    health_min_effects: int = Field(default=5, ge=1)
    health_degraded_failure_ratio: float = Field(default=0.05, ge=0, le=1)
    health_failing_failure_ratio: float = Field(default=0.40, ge=0, le=1)
    health_degraded_server_error_ratio: float = Field(default=0.01, ge=0, le=1)
    health_failing_server_error_ratio: float = Field(default=0.20, ge=0, le=1)
    health_degraded_lag_seconds: float = Field(default=300, gt=0)
    health_failing_lag_seconds: float = Field(default=3600, gt=0)
    health_stall_seconds: float = Field(default=7200, gt=0)

    # The provisioning log -------------------------------------------------------------------
    provisioning_log_retention_days: float = Field(default=14, gt=0)
    provisioning_log_max_rows_per_tenant: int = Field(default=1_000_000, ge=1)
    provisioning_log_flush_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    provisioning_log_flush_rows: int = Field(default=500, ge=1, le=10_000)
    provisioning_log_buffer_rows: int = Field(default=100_000, ge=1)
    provisioning_log_prune_interval_seconds: float = Field(default=3600, gt=0)

    # Entra's cycles and the deprovisioning guard (``storage.cycles``, ``storage.guard``) -----
    cycle_gap_seconds: float = Field(default=300, gt=0, le=86_400)
    deprovision_guard_min: int = Field(default=10, ge=0)
    deprovision_guard_percent: int = Field(default=20, ge=0, le=100)
    deprovision_guard_window_seconds: int = Field(default=3600, ge=0, le=604_800)

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or _development(info):
            return value
        token = value.get_secret_value()
        if len(token) < MIN_ADMIN_TOKEN_LENGTH or is_placeholder(token):
            raise ValueError(
                f"must be a long random secret ({MIN_ADMIN_TOKEN_LENGTH}+ characters) outside "
                "development"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _service_url(value, info, BROKER_SCHEMES, "unset for the embedded broker")

    @field_validator("rate_limit_redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _service_url(value, info, REDIS_SCHEMES, "unset: the broker's Redis, if any")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_server(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        SmtpSender(value.get_secret_value(), "printsync@localhost")  # the sender's own rules
        return _real_password(value, info)

    @field_validator("max_backoff_ms")
    @classmethod
    def _backoff_order(cls, value: int, info: ValidationInfo) -> int:
        shortest = info.data.get("min_backoff_ms")
        if shortest is not None and value < shortest:
            raise ValueError(f"must be at least {PREFIX}MIN_BACKOFF_MS ({shortest})")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            parse_url(value)
        except (ValueError, ArgumentError):
            raise ValueError(
                "must be sqlite:///path or postgresql://user@host:port/database"
            ) from None
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_address(cls, value: str) -> str:
        SmtpSender("smtp://localhost", value)  # the sender's own rule
        return value

    # Sections -------------------------------------------------------------------------------

    @property
    def production(self) -> bool:
        return self.environment != DEVELOPMENT

    def api(self) -> ApiSettings:
        section = self._section(
            ApiSettings,
            health=self.health(),
            provisioning_log=self.provisioning_log(),
            cycles=self.cycles(),
            guard=self.guard(),
        )
        return section.model_copy(update={"rate_limit_redis_url": self.shared_limit_url})

    @property
    def shared_limit_url(self) -> SecretStr | None:
        """The Redis of the shared rate limits: its own setting, else a Redis broker's."""
        if self.rate_limit_redis_url is not None:
            return self.rate_limit_redis_url
        broker = self.broker_url
        if broker is not None and urlsplit(broker.get_secret_value()).scheme in REDIS_SCHEMES:
            return broker
        return None

    def database(self) -> DatabaseSettings:
        return self._section(DatabaseSettings)

    def worker(self) -> WorkerSettings:
        return self._section(
            WorkerSettings, papercut=self.papercut(), notify=self.notify(), health=self.health()
        )

    def papercut(self) -> PaperCutSettings:
        return self._section(PaperCutSettings, "papercut_")

    def notify(self) -> NotifySettings:
        return self._section(NotifySettings, guard=self.guard())

    def health(self) -> HealthPolicy:
        return self._section(HealthPolicy, "health_")

    def provisioning_log(self) -> LogSettings:
        return self._section(LogSettings, "provisioning_log_")

    def cycles(self) -> CycleSettings:
        return self._section(CycleSettings, "cycle_")

    def guard(self) -> GuardPolicy:
        return self._section(GuardPolicy, "deprovision_guard_")

    def _section(self, model: type[Section], prefix: str = "", **parts: BaseModel) -> Section:
        """``model`` with each field taken from the setting of the same name (after
        ``prefix``), and the nested sections in ``parts``."""
        values = {
            name: getattr(self, prefix + name) for name in model.model_fields if name not in parts
        }
        return model(**values, **parts)


def _development(info: ValidationInfo) -> bool:
    # An invalid PRINTSYNC_ENVIRONMENT is reported on its own; secrets are not judged against it.
    return bool(info.data.get("environment", DEVELOPMENT) == DEVELOPMENT)


def _service_url(
    value: SecretStr | None, info: ValidationInfo, schemes: tuple[str, ...], unset: str
) -> SecretStr | None:
    """A server's URL: one of ``schemes``, and no placeholder password outside development."""
    if value is None:
        return None
    if urlsplit(value.get_secret_value()).scheme not in schemes:
        raise ValueError(
            f"must start with one of {', '.join(f'{s}://' for s in schemes)} ({unset})"
        )
    return _real_password(value, info)


def _real_password(url: SecretStr, info: ValidationInfo) -> SecretStr:
    password = urlsplit(url.get_secret_value()).password
    if password is not None and not _development(info) and is_placeholder(password):
        raise ValueError("its password is a placeholder; set a real one outside development")
    return url


# Variables and their rules ------------------------------------------------------------------


def variable(field: str) -> str:
    """The environment variable of a :class:`Settings` field (or of its alias)."""
    found = Settings.model_fields.get(field)
    if found is None:
        return field.upper()
    if isinstance(found.validation_alias, AliasChoices):
        return str(found.validation_alias.choices[0])
    return PREFIX + field.upper()


def variables() -> list[str]:
    """Every variable :class:`Settings` reads, in declaration order."""
    return [variable(field) for field in Settings.model_fields]


#: pydantic's error types, as the rule an operator reads.
_RULES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_long": "must be at most {max_length} characters long",
    "string_type": "must be text",
}


def describe(error: ErrorDetails) -> str:
    """One line for one invalid setting: ``VARIABLE: rule``."""
    location = error["loc"]
    name = variable(str(location[0])) if location else "settings"
    context = {key: _plain(value) for key, value in (error.get("ctx") or {}).items()}
    template = _RULES.get(error["type"])
    if template is not None:
        rule = template.format(**context)
    elif error["type"] == "value_error":
        rule = str(context.get("error", error["msg"]))
    else:
        rule = error["msg"][:1].lower() + error["msg"][1:]
    return f"{name}: {rule}"


def _plain(value: Any) -> Any:
    """60.0 as 60: a bound as the operator would write it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class SettingsError(Exception):
    """Settings that cannot be used; ``lines`` name each bad variable and its rule."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load() -> Settings:
    """The settings of this process's environment; SettingsError if any is invalid."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError([describe(item) for item in error.errors()]) from None


def load_or_exit() -> Settings:
    """:func:`load`, or one line per bad variable on standard error and exit status 2."""
    try:
        return load()
    except SettingsError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


__all__ = [
    "Settings",
    "SettingsError",
    "describe",
    "is_placeholder",
    "load",
    "load_or_exit",
    "variable",
    "variables",
]
