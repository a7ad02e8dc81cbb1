"""Lists: a SCIM list query run in the database, paged by index (RFC 7644 §3.4.2.4) or by
cursor (RFC 9865), over one resource type or several (a search at the server root).

Every list has one total order: with ``sortBy``, the sort value (resources without one last
when ascending, first when descending, RFC 7644 §3.4.2.3), then the resource type (in the order
the list names them), then the row's primary key; without, the type and the key. Index pages
skip ``startIndex - 1`` rows of that order (unfiltered lists from page marks, see
``PageMarks``); cursor pages seek strictly past the key of the row a cursor names
(``storage.cursors``), so a walk returns every resource that existed throughout exactly once,
whatever is created or deleted meanwhile. Several resource types are listed by one statement:
each type's rows in the same order (only as many as the page can use), merged.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from weakref import WeakKeyDictionary

from storage import counts, cursors
from storage.cursors import Cursor, Keys, Position
from storage.database import Connection, Row
from storage.scim.errors import InvalidCursor, InvalidFilter, InvalidValue
from storage.scim.filters import quote
from storage.scim.schema import ResourceType
from storage.sql import Dialect, compile_text
from storage.sql_filters import compile_filter, sort_key

MAX_PAGE_SIZE = 1000
_MAX_SQL_INTEGER = 2**63 - 1
_PARAMETER = re.compile(r"(?<![:\w]):(f\d+)\b")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the total and the stored documents (JSON text) in order, with their
    ids, primary keys and the rank of their resource type among those listed. An index page
    has its ``start_index``; a cursor page has none, and the cursors of the pages next to it."""

    total: int
    start_index: int | None
    docs: list[str]
    ids: list[str]
    pks: list[int]
    ranks: list[int] = field(default_factory=list)
    next_cursor: str | None = None
    previous_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: Literal["ascending", "descending"] = "ascending"
    cursor: str | None = None
    """RFC 9865: None pages by index; ``""`` asks for the first page by cursor; any other value
    is the ``nextCursor`` or ``previousCursor`` of a page."""


@dataclass(frozen=True, slots=True)
class Source:
    """A resource type a list reads: its table and the alias filters and sorts are written
    over."""

    resource: ResourceType
    table: str
    alias: str


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


# The statement -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Branch:
    """One resource type's part of a list: its conditions and its sort expression (None when
    the list is unsorted, or the type does not define the attribute)."""

    source: Source
    rank: int
    where: str
    params: dict[str, Any]
    sort: str | None


@dataclass(frozen=True, slots=True)
class _Plan:
    branches: list[_Branch]
    sorted: bool
    sort_type: str
    dialect: Dialect

    @classmethod
    def of(cls, sources: Sequence[Source], query: ListQuery, dialect: Dialect) -> _Plan:
        """The branches of ``query``. Across several types an attribute a type does not define
        has no value there, but one that no type defines is refused."""
        several = len(sources) > 1
        branches: list[_Branch] = []
        unknown: set[str] | None = None
        sort_types: set[str] = set()
        for rank, source in enumerate(sources):
            where = f"{source.alias}.tenant_id = :tenant"
            params: dict[str, Any] = {}
            if query.filter is not None:
                compiled = compile_filter(query.filter, source.resource, dialect, lenient=several)
                sql, params = compiled.sql, compiled.params
                if several:  # each branch's parameters get names of their own
                    sql = _PARAMETER.sub(f":b{rank}\\1", sql)
                    params = {f"b{rank}{name}": value for name, value in params.items()}
                where += f" AND ({sql})"
                unknown = set(compiled.absent) if unknown is None else unknown & compiled.absent
            expression = None
            if query.sort_by:
                key = sort_key(query.sort_by, source.resource, dialect, lenient=several)
                expression = key.expression
                if expression is not None:
                    sort_types.add(key.sql_type)
            branches.append(_Branch(source, rank, where, params, expression))
        if unknown:
            raise InvalidFilter(f"unknown attribute {quote(min(unknown))}")
        if query.sort_by and not sort_types:
            raise InvalidValue(f"sortBy: unknown attribute {quote(query.sort_by.strip())}")
        if len(sort_types) > 1:
            raise InvalidValue(f"cannot sort by {quote(query.sort_by or '')} across types")
        return cls(branches, bool(query.sort_by), min(sort_types, default="text"), dialect)

    def params(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for branch in self.branches:
            merged.update(branch.params)
        return merged

    def _columns(self, branch: _Branch) -> str:
        alias = branch.source.alias
        columns = f"{branch.rank} AS r, {alias}.id AS id, {alias}.doc AS doc, {alias}.pk AS pk"
        if self.sorted:
            if branch.sort is not None:
                columns += f", {branch.sort} AS s"
            elif self.dialect == "postgresql":
                columns += f", CAST(NULL AS {self.sort_type}) AS s"
            else:
                columns += ", NULL AS s"
        return columns

    def _order(self, branch: _Branch, ascending: bool) -> str:
        keys = [f"{branch.source.alias}.pk"]
        if branch.sort is not None:
            keys = [f"({branch.sort}) IS NULL", branch.sort, *keys]
        return _ordered(keys, ascending)

    def select(self, ascending: bool, seek: tuple[Position, bool] | None) -> str:
        """The rows of the list in its order (reversed unless ``ascending``), past ``seek``
        (a position, and whether the rows after it are wanted, in ascending order), from row
        ``:offset`` on, ``:limit`` of them."""
        parts = []
        for branch in self.branches:
            where = branch.where
            if seek is not None:
                where += " AND " + self._seek(branch, *seek)
            parts.append(
                f"SELECT {self._columns(branch)} FROM {branch.source.table} {branch.source.alias}"
                f" WHERE {where} ORDER BY {self._order(branch, ascending)}"
            )
        columns = "r, id, doc, pk" + (", s" if self.sorted else "")
        page = " LIMIT :limit OFFSET :offset"
        if len(parts) == 1:
            return parts[0] + page
        keys = ["m.r", "m.pk"]
        if self.sorted:
            text = self.sort_type == "text" and self.dialect == "postgresql"
            value = 'm.s COLLATE "C"' if text else "m.s"  # code points, as each branch sorts
            keys = ["m.s IS NULL", value, *keys]
        merged = " UNION ALL ".join(
            f"SELECT * FROM ({part} LIMIT :window) AS b{index}" for index, part in enumerate(parts)
        )
        return f"SELECT {columns} FROM ({merged}) AS m ORDER BY {_ordered(keys, ascending)}{page}"

    def _seek(self, branch: _Branch, position: Position, greater: bool) -> str:
        """The branch's rows strictly after ``position`` in ascending order (``greater``), or
        strictly before it."""
        op = ">" if greater else "<"
        if branch.rank == position.rank:
            rest = f"{branch.source.alias}.pk {op} :after_pk"
        else:
            rest = "TRUE" if (branch.rank > position.rank) == greater else "FALSE"
        if not self.sorted:
            return rest
        expression = branch.sort
        missing = position.value is None
        if expression is None:  # no row of the type has a value: they all sort as missing
            if missing:
                return rest
            return "TRUE" if greater else "FALSE"
        value = f"({expression})"
        if missing:
            if greater:
                return f"({value} IS NULL AND {rest})"
            return f"({value} IS NOT NULL OR {rest})"
        seek = f"{value} {op} :after_value OR ({value} = :after_value AND {rest})"
        return f"({value} IS NULL OR {seek})" if greater else f"({seek})"

    async def total(self, conn: Connection, tenant_id: int, filtered: bool) -> int:
        total = 0
        for branch in self.branches:
            if not filtered:
                resource = branch.source.resource.name
                total += await counts.total(conn, self.dialect, tenant_id, resource)
                continue
            source = branch.source
            sql = f"SELECT count(*) FROM {source.table} {source.alias} WHERE {branch.where}"
            params = {**branch.params, "tenant": tenant_id}
            row = await conn.fetchone(compile_text(sql, self.dialect), params)
            total += int(row[0]) if row else 0
        return total


def _ordered(keys: list[str], ascending: bool) -> str:
    direction = " ASC" if ascending else " DESC"
    return ", ".join(key + direction for key in keys)


def _position(row: Row, sorted_: bool) -> Position:
    if sorted_:
        return Position(int(row[0]), int(row[3]), row[4], sorted=True)
    return Position(int(row[0]), int(row[3]))


def _page(rows: Sequence[Row], **extra: Any) -> Page:
    return Page(
        docs=[row[2] for row in rows],
        ids=[row[1] for row in rows],
        pks=[row[3] for row in rows],
        ranks=[row[0] for row in rows],
        **extra,
    )


# Pages -------------------------------------------------------------------------------------------


async def list_page(
    conn: Connection,
    dialect: Dialect,
    sources: Sequence[Source],
    *,
    tenant_id: int,
    query: ListQuery,
    default_count: int,
    marks: PageMarks | None = None,
    keys: Keys | None = None,
) -> Page:
    """Run a filtered, sorted, paged list of ``sources`` in the database.

    Without a filter, the total comes from the tenant's resource counts and, for one type in
    the default order, an index page starts from a page mark when there is one: neither grows
    with the table. With a filter, the total is counted only when the page does not already
    tell it: a match query that finds 0 or 1 resources (Entra's probe and match) costs one
    statement. A cursor page (``query.cursor`` set) needs the deployment's cursor ``keys``.
    """
    plan = _Plan.of(sources, query, dialect)
    if query.cursor is not None:
        assert keys is not None
        return await _cursor_page(conn, plan, tenant_id, query, default_count, keys)
    offset, limit = clamp(query, default_count)
    ascending = query.sort_order == "ascending"
    params: dict[str, Any] = {**plan.params(), "tenant": tenant_id}
    walk = marks if query.filter is None and not query.sort_by and len(sources) == 1 else None
    rows: list[Row] = []
    if limit:
        seek, skip = None, offset
        mark = walk.nearest(sources[0].table, tenant_id, offset) if walk and offset else None
        if mark is not None:
            seek, skip = (Position(0, mark[1]), True), offset - mark[0]
            params["after_pk"] = mark[1]
        window = min(offset + limit, _MAX_SQL_INTEGER)
        sql = plan.select(ascending, seek)
        params.update(limit=limit, offset=skip, window=window)
        rows = await conn.fetchall(compile_text(sql, dialect), params)
        if walk is not None and rows:
            walk.remember(sources[0].table, tenant_id, offset + len(rows), rows[-1][3])
    if limit and len(rows) < limit and (rows or offset == 0) and query.filter is not None:
        total = offset + len(rows)
    else:
        total = await plan.total(conn, tenant_id, query.filter is not None)
    return _page(rows, total=total, start_index=offset + 1)


async def _cursor_page(
    conn: Connection,
    plan: _Plan,
    tenant_id: int,
    query: ListQuery,
    default_count: int,
    keys: Keys,
) -> Page:
    """A page of a cursor walk (RFC 9865): the first one for an empty cursor, else the rows
    past the cursor's position, with the cursors of the pages after and before it."""
    scope = ",".join(branch.source.resource.name for branch in plan.branches)
    sort = f"{query.sort_by.strip().lower()} {query.sort_order}" if query.sort_by else None
    bound = cursors.binding(tenant_id, scope, query.filter, sort)
    cursor = cursors.open_(keys, bound, query.cursor) if query.cursor else None
    if cursor is not None and (
        cursor.position.sorted != plan.sorted or cursor.position.rank >= len(plan.branches)
    ):
        raise InvalidCursor(cursors.INVALID_DETAIL)
    _, limit = clamp(ListQuery(count=query.count), default_count)
    backward = cursor is not None and cursor.direction == "previous"
    ascending = (query.sort_order == "ascending") != backward
    rows: list[Row] = []
    more = False
    if limit:
        params: dict[str, Any] = {**plan.params(), "tenant": tenant_id}
        seek = None
        if cursor is not None:
            seek = (cursor.position, ascending)
            params.update(after_pk=cursor.position.pk, after_value=cursor.position.value)
        params.update(limit=limit + 1, offset=0, window=limit + 1)
        sql = plan.select(ascending, seek)
        rows = await conn.fetchall(compile_text(sql, plan.dialect), params)
        more = len(rows) > limit
        rows = rows[:limit]
        if backward:
            rows.reverse()
    issued = int(time.time())

    def seal(direction: cursors.Direction, row: Row) -> str:
        return cursors.seal(keys, bound, Cursor(direction, _position(row, plan.sorted), issued))

    following = preceding = None
    if rows:
        # Going forward, the rows past this page are known (``more``) and those before it
        # exist unless this is the first page; going backward, the other way round.
        if more or backward:
            following = seal("next", rows[-1])
        if more if backward else cursor is not None:
            preceding = seal("previous", rows[0])
    if query.filter is not None and cursor is None and limit and not more:
        total = len(rows)
    else:
        total = await plan.total(conn, tenant_id, query.filter is not None)
    return _page(
        rows,
        total=total,
        start_index=None,
        next_cursor=following,
        previous_cursor=preceding,
    )
