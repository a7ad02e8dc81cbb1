"""Reading the provisioning log: what happened to a user or group, and when.

Operators read it to answer "what happened to this user" (``printsync log --user``,
``GET /admin/log``); :func:`parse_time` reads the times both of them accept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from storage import clock, outbox
from storage.database import Database
from storage.provisioning_log.entries import RESULTS, Entry, load_changes
from storage.sql import Dialect, compile_text, row_reader

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 5000

_TENANT_IDS: Final = "SELECT id FROM tenants ORDER BY id"


async def tenant_ids(db: Database) -> list[int]:
    """Every tenant's id: the log is read (and pruned) one tenant at a time, on its indexes."""
    async with db.reader() as conn:
        rows = await conn.fetchall(compile_text(_TENANT_IDS, db.dialect), {})
    return [int(row[0]) for row in rows]


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What to look for: all tenants, or ``tenant_id`` only; ``since`` is inclusive and
    ``until`` exclusive (stamps as :func:`parse_time` returns them).

    ``target`` names a user or group by id, by userName/displayName (any case) or a user by
    work e-mail (any case). Entries are linked through the log itself: a name also finds the
    entries of every id logged under that name (so the ``DELETE /Users/{id}`` of a user found by
    userName is included), and an id also finds the entries logged under its names (such as a
    create refused before an id existed). A user's entries include those of the group writes
    that added or removed the user (source ``group``).

    ``before`` pages: only entries older than the entry (time, id) it names, which is the last
    entry of the page before (:func:`page_mark`).
    """

    tenant_id: int | None = None
    target: str | None = None
    result: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = DEFAULT_LIMIT
    before: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if self.result is not None and self.result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")


#: What :func:`_entry` reads, in order: fields of :class:`Entry`.
_COLUMNS = (
    "id, time, tenant_id, source, operation, target_id, target_name, result, status, error, changes"
)
_SELECT = f"SELECT {_COLUMNS} FROM provisioning_log"
#: Ids (names) linked to one target name (id) at most; more are ignored.
_MAX_LINKED = 100


def _in_list(column: str, name: str, dialect: Dialect) -> str:
    if dialect == "postgresql":
        return f"{column} = ANY(CAST(:{name} AS text[]))"
    return f"{column} IN (SELECT value FROM json_each(:{name}))"


def _list_param(values: Sequence[str], dialect: Dialect) -> Any:
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


_LINKED_IDS = (
    "SELECT DISTINCT target_id FROM provisioning_log WHERE tenant_id = :tenant"
    " AND target_name_ci = :target_ci AND target_id IS NOT NULL LIMIT :limit"
)
_LINKED_NAMES = (
    "SELECT DISTINCT target_name_ci FROM provisioning_log WHERE tenant_id = :tenant"
    " AND target_id = :target AND target_name_ci IS NOT NULL LIMIT :limit"
)
#: Users the target names now: by userName or work e-mail (each on its own index).
_CURRENT_USERS = (
    "SELECT id, user_name_ci FROM users WHERE tenant_id = :tenant AND user_name_ci = :target_ci"
    " UNION SELECT id, user_name_ci FROM users WHERE tenant_id = :tenant"
    " AND work_email_ci = :target_ci"
)


async def _linked(db: Database, tenant_id: int, target: str) -> tuple[list[str], list[str]]:
    """The ids and lower-cased names that stand for ``target`` in one tenant."""
    params = {
        "tenant": tenant_id,
        "target": target,
        "target_ci": target.lower(),
        "limit": _MAX_LINKED,
    }
    async with db.reader() as conn:
        user_rows = await conn.fetchall(compile_text(_CURRENT_USERS, db.dialect), params)
        id_rows = await conn.fetchall(compile_text(_LINKED_IDS, db.dialect), params)
        name_rows = await conn.fetchall(compile_text(_LINKED_NAMES, db.dialect), params)
        for _, user_name in user_rows:  # found by e-mail: the entries under its userName
            if user_name != target.lower():
                more = await conn.fetchall(
                    compile_text(_LINKED_IDS, db.dialect), {**params, "target_ci": user_name}
                )
                id_rows = [*id_rows, *more]
    ids = sorted({target, *(row[0] for row in user_rows), *(row[0] for row in id_rows)})
    names = sorted({target.lower(), *(row[1] for row in user_rows), *(row[0] for row in name_rows)})
    return ids, names


def _search_sql(
    query: LogQuery, tenant_id: int, dialect: Dialect, ids: Sequence[str], names: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    conditions = ["tenant_id = :tenant"]
    params: dict[str, Any] = {"tenant": tenant_id, "limit": query.limit}
    if query.target is not None:
        conditions.append(
            f"({_in_list('target_id', 'ids', dialect)}"
            f" OR {_in_list('target_name_ci', 'names', dialect)})"
        )
        params["ids"] = _list_param(ids, dialect)
        params["names"] = _list_param(names, dialect)
    if query.result is not None:
        conditions.append("result = :result")
        params["result"] = query.result
    if query.since is not None:
        conditions.append("time >= :since")
        params["since"] = query.since
    if query.until is not None:
        conditions.append("time < :until")
        params["until"] = query.until
    if query.before is not None:
        conditions.append("(time < :before_time OR (time = :before_time AND id < :before_id))")
        params["before_time"], params["before_id"] = query.before
    where = " AND ".join(conditions)
    return f"{_SELECT} WHERE {where} ORDER BY time DESC, id DESC LIMIT :limit", params


_entry = row_reader(Entry, _COLUMNS.split(", "), id=int, changes=load_changes)


async def search(db: Database, query: LogQuery) -> list[Entry]:
    """Entries matching ``query``, newest first.

    Every statement is scoped to one tenant, so the (tenant, …) indexes answer it; a query
    without a tenant asks each tenant in turn and merges the answers.
    """
    tenants = [query.tenant_id] if query.tenant_id is not None else await tenant_ids(db)
    found: list[Entry] = []
    for tenant_id in tenants:
        ids: list[str] = []
        names: list[str] = []
        if query.target is not None:
            ids, names = await _linked(db, tenant_id, query.target)
        sql, params = _search_sql(query, tenant_id, db.dialect, ids, names)
        async with db.reader() as conn:
            rows = await conn.fetchall(compile_text(sql, db.dialect), params)
        found += (_entry(row) for row in rows)
    if len(tenants) > 1:
        found.sort(key=lambda item: (item.time, item.id or 0), reverse=True)
    return found[: query.limit]


def page_mark(entry: Entry) -> tuple[str, int]:
    """The ``before`` of the page after the one ``entry`` ends."""
    assert entry.id is not None
    return entry.time, entry.id


_LOGGED_NAMES = (
    "SELECT target_id, max(target_name) FROM provisioning_log WHERE tenant_id = :tenant"
    " AND {ids} AND target_name IS NOT NULL GROUP BY target_id"
)


async def names_of(db: Database, tenant_id: int, ids: Sequence[str]) -> dict[str, str]:
    """A name for each of ``ids`` that has one: the user's or group's current userName or
    displayName, else a name the log knows it by (a deleted user's). Two queries at most."""
    found = await outbox.subject_names(db, tenant_id, ids)
    left = sorted(set(ids) - set(found))
    if left:
        logged = _LOGGED_NAMES.format(ids=_in_list("target_id", "ids", db.dialect))
        async with db.reader() as conn:
            rows = await conn.fetchall(
                compile_text(logged, db.dialect),
                {"tenant": tenant_id, "ids": _list_param(left, db.dialect)},
            )
        found.update({row[0]: row[1] for row in rows if row[1]})
    return found


async def named(db: Database, entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` with a name for each target logged by id only (an effect of a user whose
    payload has no userName, a read), from :func:`names_of`."""
    missing: dict[int, set[str]] = {}
    for item in entries:
        if item.target_name is None and item.target_id is not None:
            missing.setdefault(item.tenant_id, set()).add(item.target_id)
    found: dict[tuple[int, str], str] = {}
    for tenant_id, wanted in missing.items():
        names = await names_of(db, tenant_id, sorted(wanted))
        found.update({(tenant_id, key): name for key, name in names.items()})
    return [
        replace(item, target_name=found.get((item.tenant_id, item.target_id or "")))
        if item.target_name is None and item.target_id is not None
        else item
        for item in entries
    ]


_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: datetime | None = None) -> str:
    """A stored-form stamp from ISO 8601 (``2026-01-02``, ``2026-01-02T03:04:05+01:00``; no
    offset means UTC) or a duration back from now (``90s``, ``15m``, ``2h``, ``7d``, ``1w``)."""
    relative = _DURATION.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2).lower()]
        try:
            return clock.stamp((now or clock.now()) - timedelta(seconds=seconds))
        except (OverflowError, ValueError):
            raise ValueError(f"{_shown(text)} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{_shown(text)} is neither an ISO 8601 time nor a duration such as 15m, 2h or 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return clock.stamp(moment)
    except (OverflowError, ValueError):
        raise ValueError(f"{_shown(text)} is outside the years 1 to 9999 in UTC") from None


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut short when long."""
    return repr(text if len(text) <= 40 else text[:40] + "...")
