"""The provisioning log's settings: how the API buffers entries, how long they are kept."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogSettings(BaseSettings):
    """``PRINTSYNC_PROVISIONING_LOG_*``: buffering and retention of the provisioning log."""

    model_config = SettingsConfigDict(env_prefix="PRINTSYNC_PROVISIONING_LOG_", extra="ignore")

    #: Entries older than this many days are deleted.
    retention_days: float = Field(default=14, gt=0)
    #: At most this many entries are kept per tenant (the newest).
    max_rows_per_tenant: int = Field(default=1_000_000, ge=1)
    #: The API writes its buffer at least this often...
    flush_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    #: ...and as soon as this many entries wait (also the rows of one transaction).
    flush_rows: int = Field(default=500, ge=1, le=10_000)
    #: Entries the API keeps in memory while the database is unreachable; older ones are dropped.
    buffer_rows: int = Field(default=100_000, ge=1)
    #: How often the flush task prunes the table.
    prune_interval_seconds: float = Field(default=3600, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> LogSettings:
    return LogSettings()
