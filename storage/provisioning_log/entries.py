"""Provisioning-log entries: what one says, building one, and writing them given a connection.

Every SCIM operation and every effect outcome becomes one entry: time, tenant, source (``scim``,
``group`` or ``effect``), operation (``POST /Users``, ``PATCH /Groups``, ``account.sync``), target
(id and userName or displayName), result, HTTP status, error text and what changed.

A SCIM write's entry keeps what it changed (``changes``, a small JSON object made by
:class:`storage.changes.Changes`: attribute names, ``active`` before and after, members added and
removed). A group write that changed memberships also logs one ``group`` entry against each user
it added or removed (``{"membership": "added", "group": {"id", "name"}}``), so that a user's story
shows the group changes that touched the user; those entries are not SCIM requests and the health
model does not count them. An effect's entry keeps what the effect was about (``version``, the
``group`` whose change caused it) and, on success, what the worker did to the print account
(``account``: ``ensured``, ``revoked``, or ``skipped`` for a user deleted meanwhile).

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

import orjson

from metrics.redaction import clean_error
from storage import clock, outbox
from storage.database import Connection, Database
from storage.sql import Dialect, Statement, compile_text

SCIM: Final = "scim"
#: An entry against a user for a SCIM write of a group that changed the user's membership.
GROUP: Final = "group"
EFFECT: Final = "effect"
SOURCES: Final = (SCIM, GROUP, EFFECT)

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
    "changes",
)
#: Rows per INSERT statement; a batch is written as a few statements of these sizes. 64 rows of
#: 11 columns stay under SQLite's oldest bound-parameter limit (999).
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
    #: What the write changed, or what the effect did (see the module docstring).
    changes: dict[str, Any] | None = None
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
    changes: dict[str, Any] | None = None,
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
        changes=changes,
    )


def effect_entry(
    effect: outbox.Effect,
    result: str,
    *,
    error: str | None = None,
    account: str | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> Entry:
    """The entry of one effect outcome (``success``, ``retried``, ``failed`` or ``dead``), under
    the effect's tenant and subject. ``account`` says what a successful ``account.sync`` did to
    the print account (``ensured``, ``revoked`` or ``skipped``); ``subject`` names the user or
    group when the effect's payload does not; ``details`` adds what else the worker found
    (``skipped``: why a group was skipped; ``waiting``; ``drift``; a reconcile page's
    ``managed`` and ``drifted`` counts of the reconcile so far, with its ``page`` number and
    ``continued`` when the reconcile has several pages)."""
    changes = effect_changes(effect.effect_key, account)
    if details:
        changes = {**(changes or {}), **details}
    return entry(
        effect.tenant_id,
        effect.kind,
        result,
        source=EFFECT,
        target_id=effect.subject_id,
        target_name=outbox.subject_label(effect.payload, subject),
        error=error,
        changes=changes,
    )


def effect_changes(key: str, account: str | None = None) -> dict[str, Any] | None:
    """What an effect was about, read from its idempotency key (``kind:subject:v3``, or
    ``kind:user:g{group}:v3`` for a user's account effect caused by a group's change), and what
    the worker did to the print account."""
    changes: dict[str, Any] = {}
    parts = key.split(":")
    last = parts[-1]
    if len(parts) in (3, 4) and last[:1] == "v" and last[1:].isdigit():
        changes["version"] = int(last[1:])
        if len(parts) == 4 and parts[2][:1] == "g":
            changes["group"] = parts[2][1:]
    if account is not None:
        changes["account"] = account
    return changes or None


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
        dump_changes(item.changes),
    )


def dump_changes(changes: dict[str, Any] | None) -> str | None:
    return orjson.dumps(changes).decode() if changes else None


def load_changes(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    value = orjson.loads(text)
    return value if isinstance(value, dict) else None


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
