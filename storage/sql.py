"""Statements compiled once per dialect into the driver's own parameter style.

The SCIM path never builds SQL per request: each statement is a SQLAlchemy Core construct (or, for
filters, SQL text with ``:name`` placeholders) compiled once into a ``Statement``, whose text goes
straight to the driver (``sqlite3`` with ``?``, asyncpg with ``$n``, which prepares and caches it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import Dialect as SADialect

Dialect = Literal["sqlite", "postgresql"]
T = TypeVar("T")

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_DIALECTS: dict[Dialect, SADialect] = {
    "sqlite": sqlite.dialect(paramstyle="named"),
    "postgresql": postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
}


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text in the driver's style and the parameter names in positional order."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any] = field(default_factory=dict)
    _pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # The positional values in one C call (every statement of every request runs this).
        names = self.names
        pick: Callable[[Mapping[str, Any]], tuple[Any, ...]]
        if len(names) > 1:
            pick = itemgetter(*names)
        elif names:
            single = itemgetter(names[0])

            def pick(params: Mapping[str, Any]) -> tuple[Any, ...]:
                return (single(params),)
        else:

            def pick(params: Mapping[str, Any]) -> tuple[Any, ...]:
                return ()

        object.__setattr__(self, "_pick", pick)

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.constants:
            return self._pick({**self.constants, **params})
        return self._pick(params)


def _positional(sql: str, dialect: Dialect) -> Statement:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if dialect == "sqlite":
            names.append(name)
            return "?"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Statement(_NAMED.sub(number, sql), tuple(names))


def insert(table: sa.Table, dialect: Dialect) -> Any:
    """The dialect's own INSERT construct of ``table``, which has ON CONFLICT."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def compile_core(statement: sa.sql.ClauseElement, dialect: Dialect) -> Statement:
    """Compile a Core construct whose parameters are all ``bindparam(name)``."""
    compiled: Any = statement.compile(dialect=_DIALECTS[dialect])
    constants = {
        name: bind.value
        for name, bind in compiled.binds.items()
        if not bind.required and bind.value is not None and bind.callable is None
    }
    if dialect == "postgresql":
        return Statement(str(compiled), tuple(compiled.positiontup or ()), constants)
    positional = _positional(str(compiled), dialect)
    return Statement(positional.sql, positional.names, constants)


_POSITIONAL = re.compile(r"\$(\d+)")


def chained(statements: Sequence[Statement]) -> Statement:
    """PostgreSQL: one statement that runs each of ``statements`` (compiled for PostgreSQL, their
    texts holding no ``$`` but in placeholders) but the last as a data-modifying CTE, then the
    last, whose result is the statement's: one round trip instead of several. The statements
    share one snapshot and none sees another's rows, so they must not depend on each other; a
    name bound by several takes one value."""
    texts: list[str] = []
    names: list[str] = []
    constants: dict[str, Any] = {}
    for statement in statements:
        texts.append(_renumbered(statement.sql, len(names)))
        names.extend(statement.names)
        constants.update(statement.constants)
    steps = ", ".join(f"step_{index} AS ({text})" for index, text in enumerate(texts[:-1]))
    return Statement(f"WITH {steps} {texts[-1]}", tuple(names), constants)


def _renumbered(sql: str, offset: int) -> str:
    return _POSITIONAL.sub(lambda match: f"${int(match.group(1)) + offset}", sql)


@lru_cache(maxsize=4096)
def compile_text(sql: str, dialect: Dialect) -> Statement:
    """Convert SQL text with ``:name`` placeholders (cached by text)."""
    return _positional(sql, dialect)


def row_reader(
    build: Callable[..., T], columns: Sequence[str], **convert: Callable[[Any], Any]
) -> Callable[[Sequence[Any]], T]:
    """A function that makes ``build(column=value, ...)`` of a row selected as ``columns``, each
    value first passed through ``convert[column]`` where there is one.

    One tuple of names then says both what a statement selects and what each value of its rows
    is: the two cannot drift apart, and a row of another length is refused."""
    unknown = sorted(set(convert) - set(columns))
    if unknown:
        raise ValueError(f"not among the columns: {', '.join(unknown)}")
    names = tuple(columns)
    steps = tuple(convert.items())

    def read(row: Sequence[Any]) -> T:
        values = dict(zip(names, row, strict=True))
        for name, step in steps:
            values[name] = step(values[name])
        return build(**values)

    return read
