"""What every ``printsync`` command shares: the settings validated when it starts, running a
piece of database work, and printing its result (JSON, or an aligned table).

Commands are :class:`Command` instances (a :class:`Group` makes them so): before one runs, it
validates every setting (:func:`start_process`), so a bad value stops it with one line naming the
variable and its rule and exit status 2, while ``--help`` works whatever the settings.
:func:`run` opens the configured database, runs one coroutine against it and closes it; the
errors an operator can cause (an unknown tenant, an invalid request) become one ``Error:`` line.
:func:`emit` prints JSON; :func:`table` prints rows under a header in aligned columns (every list
command prints through it), coloured and cut to fit only on a terminal; :class:`Progress` draws a
progress line on a terminal while a long command works.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO, TypeVar

import asyncpg
import click
import orjson
from sqlalchemy import exc as sa_exc

from metrics import catalog, exposition
from metrics.logs import configure_logging
from printsync.settings import Settings, load_or_exit
from storage.database import Database, open_database, parse_url
from storage.errors import SchemaError, TenantNotFound
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
    catalog.set_build_info(_version())
    return loaded


def _version() -> str:
    try:
        return importlib.metadata.version("printsync")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


#: Errors an operator's setup causes (a database or server that cannot be reached, a port in
#: use, an unknown revision): one ``Error:`` line each, never a traceback.
OPERATOR_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    sqlite3.Error,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    SchemaError,
)


def one_line(error: BaseException) -> str:
    """An error's message as one line (its first), without SQLAlchemy's background link."""
    text = str(getattr(error, "orig", None) or error).strip() or type(error).__name__
    return text.splitlines()[0]


class Command(click.Command):
    """A ``printsync`` command: it validates the settings before it runs, and reports the
    errors of :data:`OPERATOR_ERRORS` as one line (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.find_object(Settings) is None:
            ctx.obj = start_process()
        try:
            return super().invoke(ctx)
        except OPERATOR_ERRORS as error:
            loaded = ctx.find_object(Settings)
            where = describe_database(loaded.database_url) if loaded is not None else "?"
            if isinstance(error, SchemaError | OSError):
                raise click.ClickException(one_line(error)) from None
            raise click.ClickException(
                f"the database at {where} cannot be used: {one_line(error)}"
            ) from None


class Group(click.Group):
    """A group whose commands are :class:`Command` and whose subgroups are groups like it."""

    command_class = Command
    group_class = type


def subgroup(parent: click.Group, name: str, help_text: str) -> click.Group:
    """``parent``'s group ``name``, added (with ``help_text``) if it is not there yet: modules
    that register commands of one group need not know which of them runs first."""
    found = parent.commands.get(name)
    if isinstance(found, click.Group):
        return found
    group = Group(name, help=help_text)
    parent.add_command(group)
    return group


def settings() -> Settings:
    """The settings validated when this command started."""
    found = click.get_current_context().find_object(Settings)
    return found if found is not None else start_process()


#: What a command says when the database has no printsync schema, or an old one.
UPGRADE_FIRST = (
    "the database at {where} has {what}: run `printsync db upgrade` (with the same "
    "PRINTSYNC_DATABASE_URL) first"
)


def describe_database(database_url: str) -> str:
    """Where the data is, as an operator reads it: the SQLite file's absolute path, or the
    PostgreSQL URL without its password."""
    url = parse_url(database_url)
    if url.dialect == "sqlite" and url.path not in (None, ":memory:"):
        return os.path.abspath(url.path)
    return url.masked


def ready_schema(database_url: str) -> None:
    """Make sure the schema is there before a command uses it: the embedded SQLite database is
    created and migrated as ``printsync serve`` would; any other database must have been
    migrated with ``printsync db upgrade`` (else one line saying so, exit status 1)."""
    from storage import migrate  # Alembic: only in a process that checks the schema itself

    if parse_url(database_url).dialect == "sqlite":
        migrate.upgrade(database_url)
        return
    found, newest = migrate.current(database_url)
    if found != newest:
        what = "no printsync schema" if found is None else f"schema {found}, not {newest}"
        where = describe_database(database_url)
        raise click.ClickException(UPGRADE_FIRST.format(where=where, what=what))


def run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the configured database (its schema ready: :func:`ready_schema`), run ``work``
    against it, close it."""
    database = settings().database()
    ready_schema(database.database_url)

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
    """One column of :func:`table`: its ``header``, aligned left (``<``) or right (``>``).

    On a terminal too narrow for the table, the columns that may ``shrink`` are cut (the last
    first, each down to ``min_width``), their cells ending in ``…``, and if that is not enough
    the ``optional`` columns are left out; elsewhere (a pipe, a file) nothing is cut.
    """

    header: str
    align: Literal["<", ">"] = "<"
    shrink: bool = False
    min_width: int = 12
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Styled:
    """A cell with a colour (shown only on a terminal)."""

    text: str
    fg: str | None = None
    bold: bool = False

    def __str__(self) -> str:
        return self.text


Cell = str | int | float | Styled | None
_GAP = "  "
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Terminal:
    """Where a command prints: whether standard output is a terminal (colours, cutting to fit)
    and how wide it is."""

    is_tty: bool
    width: int
    colour: bool

    @classmethod
    def detect(cls) -> Terminal:
        stream = sys.stdout
        is_tty = stream.isatty()
        width = shutil.get_terminal_size((100, 24)).columns
        colour = is_tty and not os.environ.get("NO_COLOR")
        return cls(is_tty, width, colour)


def _plain(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)].rstrip() + _ELLIPSIS


def _fit(widths: list[int], columns: Sequence[Column], limit: int) -> list[int]:
    """Column widths that fit ``limit`` characters: the columns that may shrink are cut, the
    last first, down to their ``min_width``; on a terminal narrower still, down to their
    headers."""
    fitted = list(widths)
    over = sum(fitted) + len(_GAP) * (len(fitted) - 1) - limit
    for floor_of in (lambda c: max(c.min_width, len(c.header)), lambda c: len(c.header)):
        for index in reversed(range(len(columns))):
            if over <= 0:
                return fitted
            if not columns[index].shrink:
                continue
            floor = min(fitted[index], floor_of(columns[index]))
            cut = min(over, fitted[index] - floor)
            fitted[index] -= cut
            over -= cut
    return fitted


def _natural(columns: Sequence[Column], lines: list[list[Cell]]) -> list[int]:
    return [
        max([len(column.header)] + [len(_plain(row[index])) for row in lines])
        for index, column in enumerate(columns)
    ]


def _drop_optional(
    columns: Sequence[Column], lines: list[list[Cell]], limit: int
) -> tuple[Sequence[Column], list[list[Cell]]]:
    """Leave out optional columns, the last first, while the table cannot fit ``limit``."""
    while True:
        widths = _fit(_natural(columns, lines), columns, limit)
        optional = [index for index, column in enumerate(columns) if column.optional]
        if sum(widths) + len(_GAP) * (len(widths) - 1) <= limit or not optional:
            return columns, lines
        gone = optional[-1]
        columns = [column for index, column in enumerate(columns) if index != gone]
        lines = [[cell for index, cell in enumerate(row) if index != gone] for row in lines]


def table(
    rows: Iterable[Sequence[Cell]],
    columns: Sequence[Column],
    *,
    empty: str = "nothing to show",
    terminal: Terminal | None = None,
) -> None:
    """Print ``rows`` under a header, in aligned columns; ``empty`` when there are none.

    Colours (:class:`Styled` cells, a bold header) only on a terminal, and never with
    ``NO_COLOR`` set; on a terminal narrower than the table, the shrinkable columns are cut."""
    lines = [list(row) for row in rows]
    for row in lines:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells for {len(columns)} columns")
    if not lines:
        click.echo(empty)
        return
    where = terminal or Terminal.detect()
    if where.is_tty:
        columns, lines = _drop_optional(columns, lines, where.width)
    widths = _natural(columns, lines)
    if where.is_tty:
        widths = _fit(widths, columns, where.width)
    last = len(columns) - 1

    def render(cells: Sequence[Cell], header: bool = False) -> str:
        out = []
        for index, (cell, column) in enumerate(zip(cells, columns, strict=True)):
            text = _cut(_plain(cell), widths[index])
            padded = (
                text
                if index == last and column.align == "<"
                else (format(text, f"{column.align}{widths[index]}"))
            )
            if where.colour and header:
                padded = click.style(padded, bold=True)
            elif where.colour and isinstance(cell, Styled) and (cell.fg or cell.bold):
                padded = click.style(padded, fg=cell.fg, bold=cell.bold)
            out.append(padded)
        return _GAP.join(out).rstrip()

    click.echo(render([column.header for column in columns], header=True), color=where.colour)
    for row in lines:
        click.echo(render(row), color=where.colour)


class Progress:
    """A progress line on standard error while a long command works, only on a terminal:
    ``label  [#####·····]  512/1000``. Use as a context manager; :meth:`advance` moves it."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(0, total)
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._shown = self._stream.isatty() and self.total > 0

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(self, *_: object) -> None:
        if self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()

    def advance(self, count: int) -> None:
        self.done = min(self.total, self.done + count) if self.total else self.done + count
        self._draw()

    def _draw(self) -> None:
        if not self._shown:
            return
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "·" * (width - filled)
        self._stream.write(f"\r{self.label}  [{bar}]  {self.done}/{self.total}")
        self._stream.flush()


__all__ = [
    "Cell",
    "Column",
    "Command",
    "Group",
    "Progress",
    "Styled",
    "Terminal",
    "emit",
    "run",
    "settings",
    "start_process",
    "table",
]
