"""Opening the database a URL names."""

from __future__ import annotations

from storage.database.postgres import PostgresDatabase
from storage.database.sqlite import SQLiteDatabase
from storage.database.urls import parse_url


async def open_database(
    raw_url: str, *, pool_size: int = 10, busy_timeout_ms: int = 5000, shared_loop: bool = True
) -> SQLiteDatabase | PostgresDatabase:
    """Open the database of ``raw_url``. ``shared_loop=False`` is for a thread that uses its
    own event loop for its own work (``storage.blocking``): on SQLite it then waits for the
    write lock in SQLite's busy handler and runs WAL checkpoints."""
    url = parse_url(raw_url)
    if url.dialect == "sqlite":
        assert url.path is not None
        return SQLiteDatabase(url.path, busy_timeout_ms, shared_loop=shared_loop)
    return await PostgresDatabase.connect(url.asyncpg_dsn, pool_size)
