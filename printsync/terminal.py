"""What every ``printsync`` command shares: running a piece of database work and printing its
result (JSON, or an aligned table).

:func:`run` opens the configured database, runs one coroutine against it and closes it; the
errors an operator can cause (an unknown tenant, an invalid request) become one ``Error:`` line.
:func:`emit` prints JSON; :func:`table` prints rows in columns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
import orjson

from storage.database import Database, open_database
from storage.errors import TenantNotFound
from storage.scim.errors import ScimError
from storage.settings import get_settings as get_database_settings

T = TypeVar("T")

#: Connections a command opens: it runs one piece of work at a time.
POOL_SIZE = 2


def run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured database, run ``work`` against it, close it."""
    database = get_database_settings()

    async def main() -> T:
        db = await open_database(
            database.database_url,
            pool_size=POOL_SIZE,
            busy_timeout_ms=database.database_busy_timeout_ms,
        )
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except TenantNotFound as error:
        raise click.ClickException(f"no tenant named {error}") from None
    except ScimError as error:
        raise click.ClickException(error.detail) from None


def emit(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@dataclass(frozen=True, slots=True)
class Column:
    """One column of :func:`table`: at least ``width`` characters (0: as wide as the cell),
    aligned left (``<``) or right (``>``)."""

    width: int = 0
    align: Literal["<", ">"] = "<"


def table(rows: Iterable[Sequence[object]], columns: Sequence[Column]) -> None:
    """Print one line per row, its cells padded to their columns and separated by a space."""
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells for {len(columns)} columns")
        cells = (
            format(str(cell), f"{column.align}{column.width}")
            for cell, column in zip(row, columns, strict=True)
        )
        click.echo(" ".join(cells))


__all__ = ["Column", "emit", "run", "table"]
