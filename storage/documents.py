"""What users and groups share: stored documents, versions, ETags and list queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from metrics.ids import random16
from storage.database import Connection
from storage.errors import VersionMismatch
from storage.scim import filters
from storage.scim.schema import ResourceType
from storage.sql import Dialect, compile_text

MAX_PAGE_SIZE = 1000


def new_id() -> str:
    """A new resource id: a random (version 4) UUID, from the shared pool of random bytes
    (``uuid.uuid4()`` makes one system call per id, which releases the GIL on the event loop)."""
    raw = bytearray(random16())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_version(if_match: str | None, version: int) -> None:
    """Raise VersionMismatch when ``If-Match`` names no current version (``*`` matches all)."""
    if if_match is None:
        return
    current = etag(version)
    for candidate in if_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate == current or candidate == current[2:]:
            return
    raise VersionMismatch(current)


def assemble(
    attrs: dict[str, Any],
    *,
    resource_type: str,
    resource_id: str,
    created: str,
    modified: str,
    version: int,
    location: str,
) -> dict[str, Any]:
    """The stored SCIM document: schemas, id, the client's attributes, then meta."""
    doc: dict[str, Any] = {"schemas": attrs.get("schemas", []), "id": resource_id}
    for key, value in attrs.items():
        if key not in ("schemas", "id", "meta"):
            doc[key] = value
    doc["meta"] = {
        "resourceType": resource_type,
        "created": created,
        "lastModified": modified,
        "location": location,
        "version": etag(version),
    }
    return doc


def client_attributes(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored document without the server-assigned parts."""
    return {key: value for key, value in doc.items() if key not in ("id", "meta")}


def dump(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc).decode()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the total and the stored documents (JSON text) in order."""

    total: int
    start_index: int
    docs: list[str]
    ids: list[str]


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: Literal["ascending", "descending"] = "ascending"


def clamp(query: ListQuery, default_count: int) -> tuple[int, int]:
    """(offset, limit) from 1-based startIndex and count, per RFC 7644 §3.4.2.4."""
    start = max(query.start_index, 1)
    count = default_count if query.count is None else query.count
    return start - 1, max(0, min(count, MAX_PAGE_SIZE))


async def list_page(
    conn: Connection,
    dialect: Dialect,
    resource: ResourceType,
    *,
    table: str,
    alias: str,
    tenant_id: int,
    query: ListQuery,
    default_count: int,
) -> Page:
    """Run a filtered, sorted, paged list in the database.

    The total is counted only when the page does not already tell it: a match query that finds
    0 or 1 resources (Entra's probe and match) costs one statement.
    """
    offset, limit = clamp(query, default_count)
    params: dict[str, Any] = {"tenant": tenant_id}
    where = f"{alias}.tenant_id = :tenant"
    if query.filter is not None:
        compiled = filters.compile_filter(query.filter, resource, dialect)
        where += f" AND ({compiled.sql})"
        params.update(compiled.params)
    order = f"{alias}.pk"
    if query.sort_by:
        expression = filters.sort_expression(query.sort_by, resource, dialect)
        direction = "DESC" if query.sort_order == "descending" else "ASC"
        order = f"{expression} {direction}, {alias}.pk {direction}"
    docs: list[str] = []
    ids: list[str] = []
    if limit:
        sql = (
            f"SELECT {alias}.id, {alias}.doc FROM {table} {alias} WHERE {where}"
            f" ORDER BY {order} LIMIT :limit OFFSET :offset"
        )
        rows = await conn.fetchall(
            compile_text(sql, dialect), {**params, "limit": limit, "offset": offset}
        )
        ids = [row[0] for row in rows]
        docs = [row[1] for row in rows]
    if limit and len(docs) < limit and (docs or offset == 0):
        total = offset + len(docs)
    else:
        sql = f"SELECT count(*) FROM {table} {alias} WHERE {where}"
        row = await conn.fetchone(compile_text(sql, dialect), params)
        total = int(row[0]) if row else 0
    return Page(total=total, start_index=offset + 1, docs=docs, ids=ids)
