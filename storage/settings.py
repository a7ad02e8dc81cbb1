"""The database section of the settings: built by the composition root (``printsync``) from
``PRINTSYNC_DATABASE_*``, where the ranges are checked; the defaults here are the same."""

from __future__ import annotations

from pydantic import BaseModel

DEFAULT_DATABASE_URL = "sqlite:///var/printsync.sqlite3"


class DatabaseSettings(BaseModel):
    """``database_url``: ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or
    ``postgresql://user@host:port/dbname`` (``+asyncpg``/``+psycopg`` driver suffixes accepted)."""

    database_url: str = DEFAULT_DATABASE_URL
    #: PostgreSQL connections per process.
    database_pool_size: int = 10
    #: How long a SQLite connection waits for a lock (ms).
    database_busy_timeout_ms: int = 5000
