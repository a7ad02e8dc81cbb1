"""Lists: a SCIM list query run as one paged statement, and the page marks that keep deep pages
cheap."""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal
from weakref import WeakKeyDictionary

from storage import counts, sql_filters
from storage.database import Connection
from storage.scim.schema import ResourceType
from storage.sql import Dialect, compile_text

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the total and the stored documents (JSON text) in order, with their
    ids and primary keys."""

    total: int
    start_index: int
    docs: list[str]
    ids: list[str]
    pks: list[int]


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


class PageMarks:
    """Where the pages of a tenant's unfiltered lists start, as clients walk them.

    After a page of an unfiltered list (default order: ``pk``) ends at row ``pk`` and position
    ``offset``, the mark ``offset -> pk`` lets the next page start with ``pk > :after`` (an index
    seek) instead of ``OFFSET`` (a scan that grows with the position). A page asked for out of
    order skips from the nearest mark below it. Pagination is not a snapshot (RFC 7644
    §3.4.2.4), so marks need only be near the truth: a delete in this process forgets the
    tenant's marks, and every list's marks are forgotten ``ttl`` seconds after the first one.
    """

    def __init__(self, *, max_lists: int = 256, max_marks: int = 50_000, ttl: float = 30.0):
        self._lists: OrderedDict[tuple[str, int], _Marks] = OrderedDict()
        self._max_lists = max_lists
        self._max_marks = max_marks
        self._ttl = ttl

    def nearest(self, table: str, tenant_id: int, offset: int) -> tuple[int, int] | None:
        """``(position, pk)`` of the nearest mark at or before ``offset``, if any."""
        marks = self._lists.get((table, tenant_id))
        if marks is None:
            return None
        if time.monotonic() > marks.expires:
            del self._lists[(table, tenant_id)]
            return None
        index = bisect.bisect_right(marks.offsets, offset) - 1
        if index < 0:
            return None
        position = marks.offsets[index]
        return position, marks.pks[position]

    def remember(self, table: str, tenant_id: int, offset: int, pk: int) -> None:
        key = (table, tenant_id)
        marks = self._lists.get(key)
        if marks is None:
            marks = self._lists[key] = _Marks(time.monotonic() + self._ttl)
            while len(self._lists) > self._max_lists:
                self._lists.popitem(last=False)
        else:
            self._lists.move_to_end(key)
        if offset in marks.pks or len(marks.offsets) >= self._max_marks:
            return
        bisect.insort(marks.offsets, offset)
        marks.pks[offset] = pk

    def forget(self, table: str, tenant_id: int) -> None:
        self._lists.pop((table, tenant_id), None)


@dataclass(slots=True)
class _Marks:
    expires: float
    offsets: list[int] = field(default_factory=list)
    pks: dict[int, int] = field(default_factory=dict)


_marks: WeakKeyDictionary[object, PageMarks] = WeakKeyDictionary()


def page_marks(db: object) -> PageMarks:
    """The page marks of one database (one per Database object of this process)."""
    marks = _marks.get(db)
    if marks is None:
        marks = _marks[db] = PageMarks()
    return marks


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
    marks: PageMarks | None = None,
) -> Page:
    """Run a filtered, sorted, paged list in the database.

    Without a filter, the total comes from the tenant's resource counts and, in the default
    order, the page starts from a page mark when there is one: neither grows with the table.
    With a filter, the total is counted only when the page does not already tell it: a match
    query that finds 0 or 1 resources (Entra's probe and match) costs one statement.
    """
    offset, limit = clamp(query, default_count)
    params: dict[str, Any] = {"tenant": tenant_id}
    where = f"{alias}.tenant_id = :tenant"
    if query.filter is not None:
        compiled = sql_filters.compile_filter(query.filter, resource, dialect)
        where += f" AND ({compiled.sql})"
        params.update(compiled.params)
    order = f"{alias}.pk"
    if query.sort_by:
        expression = sql_filters.sort_expression(query.sort_by, resource, dialect)
        direction = "DESC" if query.sort_order == "descending" else "ASC"
        order = f"{expression} {direction}, {alias}.pk {direction}"
    walk = marks if query.filter is None and not query.sort_by else None
    docs: list[str] = []
    ids: list[str] = []
    pks: list[int] = []
    if limit:
        page_where, skip = where, offset
        mark = walk.nearest(table, tenant_id, offset) if walk is not None and offset else None
        if mark is not None:
            page_where += f" AND {alias}.pk > :after"
            skip = offset - mark[0]
            params_page = {**params, "after": mark[1]}
        else:
            params_page = dict(params)
        sql = (
            f"SELECT {alias}.id, {alias}.doc, {alias}.pk FROM {table} {alias} WHERE {page_where}"
            f" ORDER BY {order} LIMIT :limit OFFSET :offset"
        )
        rows = await conn.fetchall(
            compile_text(sql, dialect), {**params_page, "limit": limit, "offset": skip}
        )
        ids = [row[0] for row in rows]
        docs = [row[1] for row in rows]
        pks = [row[2] for row in rows]
        if walk is not None and rows:
            walk.remember(table, tenant_id, offset + len(rows), rows[-1][2])
    if query.filter is None:
        total = await counts.total(conn, dialect, tenant_id, resource.name)
    elif limit and len(docs) < limit and (docs or offset == 0):
        total = offset + len(docs)
    else:
        sql = f"SELECT count(*) FROM {table} {alias} WHERE {where}"
        row = await conn.fetchone(compile_text(sql, dialect), params)
        total = int(row[0]) if row else 0
    return Page(total=total, start_index=offset + 1, docs=docs, ids=ids, pks=pks)
