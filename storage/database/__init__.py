"""The database layer, by concern: ``base`` (the protocols), ``urls``, ``sqlite`` (group commit),
``pool`` and ``postgres`` (the asyncpg pool and its leases), ``translation`` (driver errors) and
``opening``. Callers import the names they need from here."""

from storage.database.base import CommitListeners, Connection, Database, Row, in_transaction
from storage.database.opening import open_database
from storage.database.pool import PostgresPool
from storage.database.postgres import PostgresDatabase
from storage.database.sqlite import SQLiteDatabase, connect_sqlite
from storage.database.urls import DatabaseURL, parse_url

__all__ = [
    "CommitListeners",
    "Connection",
    "Database",
    "DatabaseURL",
    "PostgresDatabase",
    "PostgresPool",
    "Row",
    "SQLiteDatabase",
    "connect_sqlite",
    "in_transaction",
    "open_database",
    "parse_url",
]
