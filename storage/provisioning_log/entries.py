"""Provisioning-log entries: what one says, building one, and writing them given a connection.

Every SCIM operation and every effect outcome becomes one entry: time, tenant, source (``scim`` or
``effect``), operation (``POST /Users``, ``PATCH /Groups``, ``account.sync``), target (id and
userName or displayName), result, HTTP status and error text.

Entries never carry tokens, PINs or card numbers: error texts pass through
:func:`metrics.redaction.clean_error`, which masks bearer tokens, printsync tokens,
``pin=…``/``card…=…``/``password=…`` pairs and long digit runs, and truncates to 500
characters. Callers still must not put secrets or SCIM payloads in ``error``.

Workers log an effect's outcome with :func:`effect_entry` and :func:`insert`, in the transaction
that marks the outbox row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Final

from metrics.redaction import clean_error
from storage import clock, outbox
from storage.database import Connection, Database
from storage.sql import Dialect, Statement, compile_text

SCIM: Final = "scim"
EFFECT: Final = "effect"
SOURCES: Final = (SCIM, EFFECT)

SUCCESS: Final = "success"
CLIENT_ERROR: Final = "client_error"
SERVER_ERROR: Final = "server_error"
FAILED: Final = "failed"
DEAD: Final = "dead"
RETRIED: Final = "retried"
#: Every result an entry may have: SCIM requests end in success, client_error (4xx) or
#: server_error (5xx); effect attempts in success, retried (transient error, another attempt
#: follows), failed (permanent error) or dead (retries exhausted).
RESULTS: Final = (SUCCESS, CLIENT_ERROR, SERVER_ERROR, FAILED, DEAD, RETRIED)

MAX_TARGET_CHARS: Final = 256
MAX_OPERATION_CHARS: Final = 64

COLUMNS: Final = (
    "time",
    "tenant_id",
    "source",
    "operation",
    "target_id",
    "target_name",
    "target_name_ci",
    "result",
    "status",
    "error",
)
#: Rows per INSERT statement; a batch is written as a few statements of these sizes. 64 rows of
#: 10 columns stay under SQLite's oldest bound-parameter limit (999).
_CHUNKS: Final = (64, 8, 1)

#: One row as inserted: the values of ``COLUMNS`` in order.
StoredRow = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One provisioning-log entry. ``id`` is set on entries read back from the table."""

    time: str
    tenant_id: int
    source: str
    operation: str
    result: str
    target_id: str | None = None
    target_name: str | None = None
    status: int | None = None
    error: str | None = None
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_of(status: int) -> str:
    """The result of a SCIM request answered with ``status``."""
    if status >= 500:
        return SERVER_ERROR
    if status >= 400:
        return CLIENT_ERROR
    return SUCCESS


def clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit]


def entry(
    tenant_id: int,
    operation: str,
    result: str,
    *,
    source: str = EFFECT,
    target_id: str | None = None,
    target_name: str | None = None,
    status: int | None = None,
    error: str | None = None,
    time: str | None = None,
) -> Entry:
    """An entry with its fields checked and cleaned (the workers' way to build one)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    if result not in RESULTS:
        raise ValueError(f"result must be one of {', '.join(RESULTS)}")
    return Entry(
        time=time or clock.stamp(),
        tenant_id=tenant_id,
        source=source,
        operation=clip(operation, MAX_OPERATION_CHARS) or "",
        result=result,
        target_id=clip(target_id, MAX_TARGET_CHARS),
        target_name=clip(target_name, MAX_TARGET_CHARS),
        status=status,
        error=clean_error(error),
    )


def effect_entry(effect: outbox.Effect, result: str, *, error: str | None = None) -> Entry:
    """The entry of one effect outcome (``success``, ``retried``, ``failed`` or ``dead``), under
    the effect's tenant and subject."""
    return entry(
        effect.tenant_id,
        effect.kind,
        result,
        source=EFFECT,
        target_id=effect.subject_id,
        target_name=outbox.subject_label(effect.payload, None),
        error=error,
    )


def stored_row(item: Entry) -> StoredRow:
    name = item.target_name
    return (
        item.time,
        item.tenant_id,
        item.source,
        item.operation,
        item.target_id,
        name,
        name.lower() if name is not None else None,
        item.result,
        item.status,
        item.error,
    )


@lru_cache(maxsize=8)
def _insert(dialect: Dialect, rows: int) -> Statement:
    values = ", ".join(
        "(" + ", ".join(f":{column}_{index}" for column in COLUMNS) + ")" for index in range(rows)
    )
    sql = f"INSERT INTO provisioning_log ({', '.join(COLUMNS)}) VALUES {values}"
    return compile_text(sql, dialect)


@lru_cache(maxsize=8)
def _names(rows: int) -> tuple[str, ...]:
    return tuple(f"{column}_{index}" for index in range(rows) for column in COLUMNS)


async def insert(conn: Connection, dialect: Dialect, entries: Sequence[Entry]) -> None:
    """Insert ``entries`` inside the caller's transaction."""
    await insert_rows(conn, dialect, [stored_row(item) for item in entries])


async def insert_rows(conn: Connection, dialect: Dialect, rows: Sequence[StoredRow]) -> None:
    """Insert rows already in stored form (a few multi-row INSERTs), inside the caller's
    transaction."""
    start = 0
    for size in _CHUNKS:
        while len(rows) - start >= size:
            values = [value for row in rows[start : start + size] for value in row]
            await conn.execute(_insert(dialect, size), dict(zip(_names(size), values, strict=True)))
            start += size


async def write(db: Database, entries: Sequence[Entry]) -> None:
    """Insert ``entries`` in one transaction of their own."""
    if not entries:
        return
    async with db.transaction() as conn:
        await insert(conn, db.dialect, entries)
