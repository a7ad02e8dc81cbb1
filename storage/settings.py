"""Database settings, read from the environment when a process starts."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/printsync.sqlite3"


class DatabaseSettings(BaseSettings):
    """``PRINTSYNC_DATABASE_URL``: ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or
    ``postgresql://user@host:port/dbname`` (``+asyncpg``/``+psycopg`` driver suffixes accepted)."""

    model_config = SettingsConfigDict(env_prefix="PRINTSYNC_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)


@lru_cache(maxsize=1)
def get_settings() -> DatabaseSettings:
    return DatabaseSettings()
