"""What every ``printsync`` command shares: the settings validated when it starts, running a
piece of database work, and printing its result (JSON, or an aligned table).

Commands are :class:`Command` instances (a :class:`Group` makes them so): before one runs, it
validates every setting (:func:`start_process`), so a bad value stops it with one line naming the
variable and its rule and exit status 2, while ``--help`` works whatever the settings.
:func:`run` opens the configured database, runs one coroutine against it and closes it; the
errors an operator can cause (an unknown tenant, an invalid request) become one ``Error:`` line.
:func:`emit` prints JSON; :func:`table` prints rows in columns.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
import orjson

from metrics import exposition
from metrics.logs import configure_logging
from printsync.settings import Settings, load_or_exit
from storage.database import Database, open_database
from storage.errors import TenantNotFound
from storage.scim.errors import ScimError

T = TypeVar("T")

#: Connections a command opens: it runs one piece of work at a time.
POOL_SIZE = 2


def start_process() -> Settings:
    """What every printsync process does first: validate the settings (or exit 2), then set up
    logging and the metrics mode."""
    loaded = load_or_exit()
    # Logs go to standard error, so a command's output (e.g. --json) stays clean.
    configure_logging(json_output=loaded.production, stream=sys.__stderr__ or sys.stderr)
    exposition.configure(loaded.prometheus_multiproc_dir)
    return loaded


class Command(click.Command):
    """A ``printsync`` command: it validates the settings before it runs."""

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.find_object(Settings) is None:
            ctx.obj = start_process()
        return super().invoke(ctx)


class Group(click.Group):
    """A group whose commands are :class:`Command` and whose subgroups are groups like it."""

    command_class = Command
    group_class = type


def settings() -> Settings:
    """The settings validated when this command started."""
    found = click.get_current_context().find_object(Settings)
    return found if found is not None else start_process()


def run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured database, run ``work`` against it, close it."""
    database = settings().database()

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


__all__ = [
    "Column",
    "Command",
    "Group",
    "emit",
    "run",
    "settings",
    "start_process",
    "table",
]
