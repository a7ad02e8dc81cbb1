"""SCIM filters (RFC 7644 §3.4.2.2) compiled to SQL for SQLite and PostgreSQL, and ``sortBy``.

``compile_filter`` turns a filter into a boolean SQL fragment over ``users u`` or ``groups g`` with
``:f0, :f1, ...`` placeholders; ``sort_expression`` turns a ``sortBy`` path into an ORDER BY
expression. Filters always run in the database.

Grammar: ``eq ne co sw ew gt ge lt le pr``; ``not`` > ``and`` > ``or``; parentheses; value paths
``attr[filter]`` (``and``/``or``/``not`` inside) and ``attr[filter].sub op value``; JSON string
literals with escapes, numbers, ``true``, ``false``, ``null``. Attribute names, operators, keywords
and schema URN prefixes are case-insensitive. Leniencies: ``not`` may omit its parentheses, and an
unqualified name that the core schema lacks is looked up in the extensions, so Entra's ``manager
eq "id"`` means the enterprise ``manager.value``.

Semantics, identical on both databases:

- A comparison on a missing attribute is false, and ``not`` is a two-valued negation: ``not
  (title eq "x")`` matches users without a title.
- ``a ne v`` is ``not (a eq v)``. It matches resources where ``a`` is absent, and for a
  multi-valued ``a`` it means "no value equals v" (``members ne "U"``: groups U is not in). Inside
  brackets the element is single-valued: ``emails[type ne "work"]`` is "an email whose type is not
  work".
- Any other comparison on a multi-valued attribute matches when one value matches; a complex
  attribute compared without a sub-attribute compares its ``value`` sub-attribute.
- ``pr``: the value is present and not ``""``; a multi-valued attribute has at least one value; a
  complex one has a present sub-attribute. ``eq null`` means "not present", ``ne null`` "present".
- Strings follow the attribute's ``caseExact`` (both sides lower-cased when false); ``co``/``sw``
  /``ew`` are substring tests with ``%``, ``_`` (and on SQLite ``*``, ``?``, ``[``) matched
  literally; ``gt``/``ge``/``lt``/``le`` compare code points (``COLLATE "C"`` on PostgreSQL).
- Booleans take ``true``/``false``, or the strings ``"true"``/``"false"`` in any case; ordering and
  substring operators on booleans are invalid.
- ``dateTime`` literals (xsd:dateTime; any offset, none meaning UTC) are normalized to the stored
  fixed-width UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and compared as text; digits past
  microseconds are rounded in the direction that keeps the comparison exact.
- Case-insensitive comparisons on JSON values use SQL ``lower()``, which on SQLite folds ASCII
  only; the indexed ``*_ci`` columns are folded in Python and have no such limit.

A ``password`` filter, an unknown attribute or an ill-typed value raises ``InvalidFilter``; its
detail names attributes and positions but never echoes a literal value.

Compiled SQL is cached by the filter's shape (its tokens with literal values replaced by their
kind), so a repeated ``userName eq "..."`` costs one tokenization and a dictionary lookup.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Generic, Literal, NamedTuple, TypeAlias, TypeVar

from storage.scim.errors import InvalidFilter, InvalidValue
from storage.scim.schema import Attribute, ResourceType, resolve, split_urn

Dialect = Literal["sqlite", "postgresql"]

MAX_FILTER_LENGTH: Final = 2048
"""Longest filter accepted, in characters."""

MAX_DEPTH: Final = 12
"""Deepest nesting of parentheses, brackets and ``not`` accepted."""

_CACHE_SIZE: Final = 1024


# Syntax tree -------------------------------------------------------------------------------------

LiteralValue: TypeAlias = str | bool | int | float | None


@dataclass(frozen=True, slots=True)
class Value:
    """A literal. ``index`` numbers the non-null literals of the filter from 0, left to right."""

    value: LiteralValue
    index: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """``path op value``; ``op`` is lower-case and never ``pr``."""

    path: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: str


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``; ``path[f].sub op value`` is parsed as ``path[f and sub op value]``."""

    path: str
    filter: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node: TypeAlias = Comparison | Present | ValuePath | Not | And | Or


@dataclass(frozen=True)
class CompiledFilter:
    """A boolean SQL fragment and the values of its ``:fN`` placeholders."""

    sql: str
    params: dict[str, Any]


# Tokens ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
      | (?P<word>[A-Za-z$][A-Za-z0-9_$:.\-]*)
      | (?P<sub>\.[A-Za-z$][A-Za-z0-9_$\-]*)
      | (?P<punct>[()\[\]])
    )""",
    re.VERBOSE | re.DOTALL,
)
_ATTRIBUTE_PATH = re.compile(r"[A-Za-z$][A-Za-z0-9_$\-]*(?:\.[A-Za-z$][A-Za-z0-9_$\-]*)?")
_OPERATORS: Final = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_KEYWORD_LITERALS: Final[dict[str, LiteralValue]] = {"true": True, "false": False, "null": None}
_SPECIALIZED = "work"
"""A string literal equal to this (any case) keeps its value in the shape key: the compiler maps
``emails[type eq "work" ...]`` to the indexed ``work_email_ci`` column."""


class _Token(NamedTuple):
    kind: str  # word, string, number, bool, null, sub, end, or one of ( ) [ ]
    text: str
    position: int
    slot: int = -1  # for literals with a value: its place in the literal list


class _Scan(NamedTuple):
    shape: tuple[str, ...]
    values: list[LiteralValue]
    tokens: list[_Token] | None


_STRING, _NUMBER, _WORD, _SUB = 1, 2, 3, 4  # group numbers in _TOKEN


def _scan(text: str, *, tokens: bool = False) -> _Scan:
    """Tokenize ``text``: its shape key, its literal values and (when asked) its tokens.

    The shape is what compiled SQL depends on: words lower-cased, punctuation, and one marker per
    literal kind; the values fill the placeholders. Compiling needs the tokens, a cache hit not.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if "\x00" in text:
        raise InvalidFilter("the filter contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidFilter("the filter is not valid Unicode text") from None
    shape: list[str] = []
    values: list[LiteralValue] = []
    found_tokens: list[_Token] | None = [] if tokens else None
    match = _TOKEN.match
    position = 0
    while True:
        found = match(text, position)
        if found is None:
            rest = text[position:].lstrip(" \t\r\n")
            if not rest:
                break
            where = len(text) - len(rest)
            if rest[0] == '"':
                raise InvalidFilter(f"unterminated string literal at position {where}")
            raise InvalidFilter(f"unexpected character {rest[0]!r} at position {where}")
        group = found.lastindex or 0
        raw = found.group(group)
        position = found.end()
        kind = raw
        index = -1
        if group == _WORD:
            lowered = raw.lower()
            if lowered in _KEYWORD_LITERALS:
                literal = _KEYWORD_LITERALS[lowered]
                if literal is None:
                    kind = lowered = "null"
                else:
                    kind, lowered, index = "bool", "?", len(values)
                    values.append(literal)
            else:
                kind = "word"
            shape.append(lowered)
        elif group == _STRING:
            value = _decode_string(raw, found.start(group))
            kind, index = "string", len(values)
            values.append(value)
            specialized = len(value) == len(_SPECIALIZED) and value.lower() == _SPECIALIZED
            shape.append('"' + _SPECIALIZED if specialized else '"')
        elif group == _NUMBER:
            kind, index = "number", len(values)
            values.append(_decode_number(raw, found.start(group)))
            shape.append("#")
        elif group == _SUB:
            kind = "sub"
            shape.append(raw.lower())
        else:
            shape.append(raw)
        if found_tokens is not None:
            found_tokens.append(_Token(kind, raw, found.start(group), index))
    if found_tokens is not None:
        found_tokens.append(_Token("end", "", len(text)))
    return _Scan(tuple(shape), values, found_tokens)


def _decode_string(raw: str, position: int) -> str:
    if "\\" not in raw:
        return raw[1:-1]
    try:
        value: str = json.loads(raw, strict=False)
    except ValueError:
        raise InvalidFilter(
            f"invalid escape sequence in the string literal at position {position}"
        ) from None
    if "\x00" in value:
        raise InvalidFilter(f"the string literal at position {position} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilter(
            f"the string literal at position {position} contains an unpaired surrogate escape"
        ) from None
    return value


def _decode_number(raw: str, position: int) -> int | float:
    if "." in raw or "e" in raw or "E" in raw:
        number = float(raw)
        if not math.isfinite(number):
            raise InvalidFilter(f"the number at position {position} is out of range")
        return number
    integer = int(raw)
    if not -(2**63) <= integer < 2**63:
        raise InvalidFilter(f"the number at position {position} is out of range")
    return integer


# Parser ------------------------------------------------------------------------------------------


def _check_path(path: str, position: int) -> None:
    """Reject text that is not ``[URN ":"] attr ["." sub]`` (RFC 7644 ``attrPath``)."""
    prefix, colon, rest = path.rpartition(":")
    valid = _ATTRIBUTE_PATH.fullmatch(rest) is not None
    if valid and colon:
        segments = prefix.split(":")
        valid = segments[0][:1].isalpha() and all(s and "$" not in s for s in segments)
    if not valid:
        raise InvalidFilter(f"{_quote(path)} at position {position} is not an attribute path")


def _quote(text: str) -> str:
    return f"'{text}'" if len(text) <= 80 else f"'{text[:77]}...'"


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return "a string literal"
    if token.kind == "number":
        return "a number"
    return _quote(token.text)


class _Parser:
    """Recursive descent over the tokens; ``and``/``or`` chains become n-ary nodes."""

    def __init__(self, scan: _Scan) -> None:
        assert scan.tokens is not None
        self._tokens = scan.tokens
        self._values = scan.values
        self._at = 0

    def parse(self) -> Node:
        if self._tokens[0].kind == "end":
            raise InvalidFilter("the filter is empty")
        node = self._or(0)
        token = self._tokens[self._at]
        if token.kind != "end":
            if token.kind == ")":
                raise InvalidFilter(f"unbalanced ')' at position {token.position}")
            if token.kind == "]":
                raise InvalidFilter(f"unbalanced ']' at position {token.position}")
            raise self._unexpected(token, "'and', 'or' or the end of the filter")
        return node

    def _next(self) -> _Token:
        token = self._tokens[self._at]
        if token.kind != "end":
            self._at += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._tokens[self._at]
        if token.kind == "word" and token.text.lower() == word:
            self._at += 1
            return True
        return False

    @staticmethod
    def _unexpected(token: _Token, expected: str) -> InvalidFilter:
        return InvalidFilter(
            f"expected {expected} at position {token.position}, found {_describe(token)}"
        )

    @staticmethod
    def _deeper(depth: int) -> int:
        if depth >= MAX_DEPTH:
            raise InvalidFilter(f"the filter nests deeper than {MAX_DEPTH} levels")
        return depth + 1

    def _or(self, depth: int) -> Node:
        operands = [self._and(depth)]
        while self._keyword("or"):
            operands.append(self._and(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self, depth: int) -> Node:
        operands = [self._unary(depth)]
        while self._keyword("and"):
            operands.append(self._unary(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self, depth: int) -> Node:
        token = self._tokens[self._at]
        if token.kind == "word" and token.text.lower() == "not":
            self._at += 1
            return Not(self._unary(self._deeper(depth)))
        if token.kind == "(":
            self._at += 1
            node = self._or(self._deeper(depth))
            self._close(")", token)
            return node
        if token.kind == "word":
            return self._attribute_expression(depth)
        raise self._unexpected(token, "an attribute, 'not' or '('")

    def _close(self, kind: str, opening: _Token) -> None:
        token = self._next()
        if token.kind != kind:
            if token.kind == "end":
                raise InvalidFilter(f"unbalanced '{opening.text}' at position {opening.position}")
            raise self._unexpected(token, f"'{kind}'")

    def _attribute_expression(self, depth: int) -> Node:
        token = self._next()
        _check_path(token.text, token.position)
        opening = self._tokens[self._at]
        if opening.kind != "[":
            return self._operation(token.text)
        self._at += 1
        inner = self._or(self._deeper(depth))
        self._close("]", opening)
        if self._tokens[self._at].kind == "sub":
            sub = self._next()
            tail = self._operation(sub.text[1:])
            operands = inner.operands if isinstance(inner, And) else (inner,)
            inner = And((*operands, tail))
        return ValuePath(token.text, inner)

    def _operation(self, path: str) -> Node:
        token = self._next()
        if token.kind != "word":
            raise self._unexpected(token, "an operator")
        op = token.text.lower()
        if op == "pr":
            return Present(path)
        if op not in _OPERATORS:
            raise InvalidFilter(
                f"unknown operator {_quote(token.text)} at position {token.position}"
            )
        value = self._next()
        if value.kind == "null":
            return Comparison(path, op, Value(None, -1))
        if value.kind in ("string", "number", "bool"):
            return Comparison(path, op, Value(self._values[value.slot], value.slot))
        raise self._unexpected(value, f"a value after '{op}'")


def parse(text: str) -> Node:
    """The syntax tree of ``text``; ``InvalidFilter`` with a clear detail on any error."""
    return _Parser(_scan(text, tokens=True)).parse()


# Literal conversion ------------------------------------------------------------------------------

Converter: TypeAlias = Callable[[Any], Any]

_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_GLOB_ESCAPES = str.maketrans({"[": "[[]", "*": "[*]", "?": "[?]"})
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _identity(value: Any) -> Any:
    return value


def _lower(value: Any) -> Any:
    return str(value).lower()


def _pattern(op: str, case_exact: bool, glob: bool) -> Converter:
    """The LIKE (or GLOB) pattern for ``co``/``sw``/``ew``, literal characters escaped."""
    wildcard = "*" if glob else "%"
    table = _GLOB_ESCAPES if glob else _LIKE_ESCAPES
    before = wildcard if op in ("co", "ew") else ""
    after = wildcard if op in ("co", "sw") else ""

    def convert(value: Any) -> Any:
        text = str(value) if case_exact else str(value).lower()
        return before + text.translate(table) + after

    return convert


def _boolean(name: str, as_text: bool) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise InvalidFilter(f"{name} is a boolean; compare it with true or false")
            value = lowered == "true"
        if as_text:
            return "true" if value else "false"
        return bool(value)

    return convert


def _datetime(op: str, name: str) -> Converter:
    """Normalize an xsd:dateTime to the stored text, rounding extra digits so ``op`` stays exact.

    Stored values have whole microseconds. Past them, ``gt``/``le`` round down, ``ge``/``lt``
    round up, and ``eq`` keeps the extra digits so the text equals no stored value.
    """

    def convert(value: Any) -> Any:
        found = _DATETIME.fullmatch(str(value))
        if found is None:
            raise InvalidFilter(
                f'{name} needs an xsd:dateTime value such as "2026-01-02T03:04:05Z"'
            )
        fraction = found.group(7) or ""
        extra = fraction[6:].rstrip("0")
        zone = found.group(8)
        tz = UTC
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise InvalidFilter(f"{name} has a dateTime value with an invalid offset")
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        try:
            moment = datetime(
                int(found.group(1)),
                int(found.group(2)),
                int(found.group(3)),
                int(found.group(4)),
                int(found.group(5)),
                int(found.group(6)),
                int((fraction + "000000")[:6]),
                tzinfo=tz,
            ).astimezone(UTC)
            if extra and op in ("ge", "lt"):
                moment += _ONE_MICROSECOND
        except (ValueError, OverflowError):
            raise InvalidFilter(f"{name} has a dateTime value out of range") from None
        text = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
        )
        if extra and op == "eq":
            text += extra
        return text + "Z"

    return convert


# Compilation targets -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _JsonRef:
    """A place in a JSON document: ``keys`` below the SQL expression ``base``."""

    base: str
    keys: tuple[str, ...]

    def child(self, key: str) -> _JsonRef:
        return _JsonRef(self.base, (*self.keys, key))


@dataclass(frozen=True, slots=True)
class _Scalar:
    """A single value: a column (``sql``), a constant, or a JSON value (``ref``)."""

    attribute: Attribute
    name: str
    sql: str | None = None
    ref: _JsonRef | None = None
    constant: str | None = None
    lowered: bool = False  # the column holds the value lower-cased by Python
    case_exact: bool | None = None  # overrides the schema when set


@dataclass(frozen=True, slots=True)
class _Array:
    """A multi-valued attribute stored as a JSON array; ``sub`` when the path names one."""

    attribute: Attribute
    name: str
    ref: _JsonRef
    sub: Attribute | None = None


@dataclass(frozen=True, slots=True)
class _Object:
    """A single-valued complex attribute stored as a JSON object."""

    attribute: Attribute
    name: str
    ref: _JsonRef


@dataclass(frozen=True, slots=True)
class _Relation:
    """Group ``members`` or user ``groups``: rows of ``memberships``, not part of the document."""

    attribute: Attribute
    name: str
    kind: Literal["members", "groups"]
    sub: Attribute | None = None


_Target: TypeAlias = _Scalar | _Array | _Object | _Relation


@dataclass(frozen=True, slots=True)
class _Column:
    sql: str
    lowered: bool = False
    case_exact: bool | None = None


# Indexed columns, by (attribute, sub-attribute) of the core schema, lower-case.
_COLUMNS: Final[dict[str, dict[tuple[str, str | None], _Column]]] = {
    "User": {
        ("id", None): _Column("u.id"),
        ("username", None): _Column("u.user_name_ci", lowered=True),
        ("externalid", None): _Column("u.external_id"),
        ("displayname", None): _Column("u.display_name"),
        ("active", None): _Column("u.active"),
        ("meta", "created"): _Column("u.created_at"),
        ("meta", "lastmodified"): _Column("u.last_modified"),
    },
    "Group": {
        ("id", None): _Column("g.id"),
        ("displayname", None): _Column("g.display_name_ci", lowered=True),
        ("externalid", None): _Column("g.external_id"),
        ("meta", "created"): _Column("g.created_at"),
        ("meta", "lastmodified"): _Column("g.last_modified"),
    },
}
_RELATIONS: Final[dict[tuple[str, str], Literal["members", "groups"]]] = {
    ("Group", "members"): "members",
    ("User", "groups"): "groups",
}
# Sub-attributes of a relation: a column of the joined table or a constant.
_RELATION_COLUMNS: Final[dict[str, dict[str, _Column | str]]] = {
    "members": {
        "value": _Column("id", case_exact=True),
        "display": _Column("display_name"),
        "type": "User",
    },
    "groups": {
        "value": _Column("id", case_exact=True),
        "display": _Column("display_name_ci", lowered=True),
        "type": "direct",
    },
}
_ALIASES: Final[dict[str, str]] = {"User": "u", "Group": "g"}
_STRING_TYPES: Final = frozenset({"string", "reference", "binary"})
_NUMBER_TYPES: Final = frozenset({"integer", "decimal"})
_SQL_OPERATORS: Final = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _kind(value: LiteralValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number"


class _Scope:
    """Where attribute names are looked up: the resource, an element, an object, a relation."""

    def resolve(self, path: str) -> _Target:
        raise NotImplementedError

    def check_readable(self, attribute: Attribute, name: str) -> None:
        if attribute.returned == "never":
            raise InvalidFilter(f"{_quote(name)} is never returned and cannot be filtered on")


class _RootScope(_Scope):
    def __init__(self, compiler: _Compiler) -> None:
        resource = compiler.resource
        self._resource = resource
        self._columns = _COLUMNS.get(resource.name, {})
        alias = _ALIASES[resource.name]
        doc = f"{alias}.doc" if compiler.dialect == "sqlite" else f"CAST({alias}.doc AS json)"
        self.document = doc

    def resolve(self, path: str) -> _Target:
        resource = self._resource
        resolved = resolve(resource, path)
        if resolved is None and split_urn(resource, path)[0] is resource.core:
            for extension in resource.extensions:
                resolved = resolve(resource, f"{extension.id}:{path}")
                if resolved is not None:
                    break
        if resolved is None:
            raise InvalidFilter(f"unknown attribute {_quote(path)}")
        attribute, sub = resolved.attribute, resolved.sub
        name = attribute.name if sub is None else f"{attribute.name}.{sub.name}"
        self.check_readable(attribute, name)
        if sub is not None:
            self.check_readable(sub, name)
        if resolved.schema is resource.core:
            relation = _RELATIONS.get((resource.name, attribute.name))
            if relation is not None:
                return _Relation(attribute, name, relation, sub)
            key = (attribute.name.lower(), None if sub is None else sub.name.lower())
            column = self._columns.get(key)
            if column is not None:
                return _Scalar(
                    resolved.target,
                    name,
                    sql=column.sql,
                    lowered=column.lowered,
                    case_exact=column.case_exact,
                )
            ref = _JsonRef(self.document, (attribute.name,))
        else:
            ref = _JsonRef(self.document, (resolved.schema.id, attribute.name))
        return _json_target(attribute, name, ref, sub)


class _NestedScope(_Scope):
    """The sub-attributes of one JSON object: an array element, or a complex attribute."""

    def __init__(self, owner: Attribute, owner_name: str, ref: _JsonRef) -> None:
        self._owner = owner
        self._owner_name = owner_name
        self._ref = ref

    def resolve(self, path: str) -> _Target:
        sub = self._owner.sub(path)
        if sub is None:
            raise InvalidFilter(
                f"{_quote(path)} is not a sub-attribute of {_quote(self._owner_name)}"
            )
        name = f"{self._owner_name}.{sub.name}"
        self.check_readable(sub, name)
        return _json_target(sub, name, self._ref.child(sub.name), None)


class _RelationScope(_Scope):
    def __init__(self, relation: _Relation, alias: str) -> None:
        self._relation = relation
        self._alias = alias

    def resolve(self, path: str) -> _Target:
        owner = self._relation.attribute
        sub = owner.sub(path)
        if sub is None:
            raise InvalidFilter(f"{_quote(path)} is not a sub-attribute of {_quote(owner.name)}")
        name = f"{owner.name}.{sub.name}"
        column = _RELATION_COLUMNS[self._relation.kind].get(sub.name)
        if column is None:
            raise InvalidFilter(f"{_quote(name)} cannot be used in a filter")
        if isinstance(column, str):
            return _Scalar(sub, name, constant=column)
        sql = f"{self._alias}.{column.sql}"
        return _Scalar(sub, name, sql=sql, lowered=column.lowered, case_exact=column.case_exact)


def _json_target(attribute: Attribute, name: str, ref: _JsonRef, sub: Attribute | None) -> _Target:
    if attribute.multi_valued:
        return _Array(attribute, name, ref, sub)
    if attribute.type == "complex":
        if sub is None:
            return _Object(attribute, name, ref)
        return _Scalar(sub, name, ref=ref.child(sub.name))
    return _Scalar(attribute, name, ref=ref)


# Compiler ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    """A compiled filter shape: SQL, constant parameters, and where each literal goes."""

    resource: ResourceType
    sql: str
    constants: dict[str, Any]
    slots: tuple[tuple[str, int, Converter], ...]


class _Compiler:
    """Compiles syntax trees of one resource type for one dialect.

    With ``inline`` (sort expressions, which have no parameters) constants become SQL string
    literals with every ``:`` spelled ``char(58)``, so no text can be taken for a placeholder.
    """

    def __init__(self, resource: ResourceType, dialect: Dialect, *, inline: bool = False) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown SQL dialect {dialect!r}")
        self.resource = resource
        self.dialect: Dialect = dialect
        self.sqlite = dialect == "sqlite"
        self.inline = inline
        self.constants: dict[str, Any] = {}
        self.slots: list[tuple[str, int, Converter]] = []
        self._constant_names: dict[str, str] = {}
        self._parameters = 0
        self._aliases = 0
        self.root = _RootScope(self)

    # Parameters and SQL pieces

    def _name(self) -> str:
        name = f"f{self._parameters}"
        self._parameters += 1
        return name

    def constant(self, value: str) -> str:
        if self.inline:
            return _sql_string(value, self.dialect)
        name = self._constant_names.get(value)
        if name is None:
            name = self._name()
            self._constant_names[value] = name
            self.constants[name] = value
        return ":" + name

    def slot(self, value: Value, convert: Converter) -> str:
        name = self._name()
        self.slots.append((name, value.index, convert))
        return ":" + name

    def alias(self) -> int:
        self._aliases += 1
        return self._aliases - 1

    def json_path(self, ref: _JsonRef) -> str:
        return self.constant("$" + "".join(f'."{key}"' for key in ref.keys))

    def _key(self, key: str) -> str:
        return f"CAST({self.constant(key)} AS text)"

    def json_node(self, ref: _JsonRef) -> str:
        """PostgreSQL: the json value at ``ref``."""
        return "(" + ref.base + "".join(f" -> {self._key(key)}" for key in ref.keys) + ")"

    def json_text(self, ref: _JsonRef) -> str:
        if self.sqlite:
            return f"json_extract({ref.base}, {self.json_path(ref)})"
        keys = [self._key(key) for key in ref.keys]
        return "(" + ref.base + "".join(f" -> {key}" for key in keys[:-1]) + f" ->> {keys[-1]})"

    def json_is(self, ref: _JsonRef, kind: Literal["boolean", "number"]) -> str:
        if self.sqlite:
            kinds = "'true', 'false'" if kind == "boolean" else "'integer', 'real'"
            return f"json_type({ref.base}, {self.json_path(ref)}) IN ({kinds})"
        return f"json_typeof({self.json_node(ref)}) = '{kind}'"

    def text(self, target: _Scalar) -> str:
        if target.sql is not None:
            return target.sql
        if target.constant is not None:
            return f"CAST({self.constant(target.constant)} AS text)"
        assert target.ref is not None
        return self.json_text(target.ref)

    # Nodes

    def node(self, node: Node, scope: _Scope) -> str:
        if isinstance(node, Comparison):
            return self.comparison(node, scope)
        if isinstance(node, Present):
            return self.present(scope.resolve(node.path))
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(item, scope) for item in node.operands) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(item, scope) for item in node.operands) + ")"
        if isinstance(node, Not):
            return f"NOT COALESCE({self.node(node.operand, scope)}, FALSE)"
        return self.value_path(node, scope)

    def comparison(self, node: Comparison, scope: _Scope) -> str:
        target = scope.resolve(node.path)
        if node.value.value is None:
            if node.op == "eq":
                return f"NOT COALESCE({self.present(target)}, FALSE)"
            if node.op == "ne":
                return self.present(target)
            raise InvalidFilter(f"'{node.op}' cannot compare with null; use 'pr' or 'eq null'")
        if node.op == "ne":
            return f"NOT COALESCE({self.compare(target, 'eq', node.value)}, FALSE)"
        return self.compare(target, node.op, node.value)

    def value_path(self, node: ValuePath, scope: _Scope) -> str:
        target = scope.resolve(node.path)
        if isinstance(target, _Array) and target.sub is None:
            if scope is self.root:
                indexed = self._work_email(target, node.filter)
                if indexed is not None:
                    return indexed
            return self.exists(target, lambda inner: self.node(node.filter, inner))
        if isinstance(target, _Relation) and target.sub is None:
            return self.exists(target, lambda inner: self.node(node.filter, inner))
        if isinstance(target, _Object):
            return self.node(node.filter, _NestedScope(target.attribute, target.name, target.ref))
        raise InvalidFilter(
            f"{_quote(node.path)} is not a complex attribute; "
            f"'[...]' filters only complex attributes"
        )

    def _work_email(self, target: _Array, node: Node) -> str | None:
        """``emails[type eq "work" and value eq X]``: the indexed ``work_email_ci`` column."""
        if self.resource.name != "User" or target.attribute.name != "emails":
            return None
        if not isinstance(node, And) or len(node.operands) != 2:
            return None
        by_path: dict[str, Comparison] = {}
        for operand in node.operands:
            if not isinstance(operand, Comparison) or operand.op != "eq":
                return None
            by_path[operand.path.lower()] = operand
        kind, value = by_path.get("type"), by_path.get("value")
        if kind is None or value is None or not isinstance(value.value.value, str):
            return None
        literal = kind.value.value
        if not isinstance(literal, str) or literal.lower() != _SPECIALIZED:
            return None
        return f"u.work_email_ci = {self.slot(value.value, _lower)}"

    def exists(self, target: _Array | _Relation, build: Callable[[_Scope], str | None]) -> str:
        """One element (or related row) satisfies what ``build`` compiles in its scope."""
        n = self.alias()
        if isinstance(target, _Relation):
            m = f"m{n}"
            if target.kind == "members":
                r = f"mu{n}"
                head = (
                    f"EXISTS (SELECT 1 FROM memberships {m} JOIN users {r} ON {r}.pk = "
                    f"{m}.user_pk WHERE {m}.group_pk = g.pk"
                )
            else:
                r = f"gg{n}"
                head = (
                    f"EXISTS (SELECT 1 FROM memberships {m} JOIN groups {r} ON {r}.pk = "
                    f"{m}.group_pk WHERE {m}.user_pk = u.pk"
                )
            inner = build(_RelationScope(target, r))
            return head + (f" AND ({inner}))" if inner else ")")
        e = f"e{n}"
        if self.sqlite:
            source = f"json_each({target.ref.base}, {self.json_path(target.ref)}) AS {e}"
            element = f"CASE {e}.type WHEN 'object' THEN {e}.value ELSE '{{}}' END"
            guard = f"{e}.type = 'object'"
        else:
            array = self.json_node(target.ref)
            source = (
                f"json_array_elements(CASE WHEN json_typeof({array}) = 'array' "
                f"THEN {array} END) AS {e}"
            )
            element = f"{e}.value"
            guard = f"json_typeof({e}.value) = 'object'"
        inner = build(_NestedScope(target.attribute, target.name, _JsonRef(element, ())))
        condition = f"{guard} AND ({inner})" if inner else guard
        return f"EXISTS (SELECT 1 FROM {source} WHERE {condition})"

    def present(self, target: _Target) -> str:
        if isinstance(target, _Relation):
            if target.sub is None:
                return self.exists(target, lambda inner: None)
            sub = target.sub.name
            return self.exists(target, lambda inner: self.present(inner.resolve(sub)))
        if isinstance(target, _Array):
            if target.sub is not None:
                sub = target.sub.name
                return self.exists(target, lambda inner: self.present(inner.resolve(sub)))
            if self.sqlite:
                return f"json_array_length({target.ref.base}, {self.json_path(target.ref)}) > 0"
            node = self.json_node(target.ref)
            return (
                f"CASE WHEN json_typeof({node}) = 'array' THEN json_array_length({node}) > 0 "
                f"ELSE FALSE END"
            )
        if isinstance(target, _Object):
            scope = _NestedScope(target.attribute, target.name, target.ref)
            parts = [
                self.present(scope.resolve(sub.name))
                for sub in target.attribute.sub_attributes
                if sub.returned != "never"
            ]
            return "(" + " OR ".join(parts) + ")"
        typed = target.attribute.type == "boolean" or target.attribute.type in _NUMBER_TYPES
        if target.constant is not None:
            return "TRUE"
        if target.ref is None:
            return f"{target.sql} IS NOT NULL" if typed else f"{target.sql} <> ''"
        if typed:
            kind: Literal["boolean", "number"] = (
                "boolean" if target.attribute.type == "boolean" else "number"
            )
            return self.json_is(target.ref, kind)
        return f"{self.json_text(target.ref)} <> ''"

    def compare(self, target: _Target, op: str, value: Value) -> str:
        if isinstance(target, _Array | _Relation):
            sub = target.sub.name if target.sub is not None else self._implied(target)
            return self.exists(target, lambda inner: self.compare(inner.resolve(sub), op, value))
        if isinstance(target, _Object):
            scope = _NestedScope(target.attribute, target.name, target.ref)
            return self.compare(scope.resolve(self._implied(target)), op, value)
        attribute = target.attribute
        kind = _kind(value.value)
        if attribute.type == "boolean":
            return self._compare_boolean(target, op, value, kind)
        if attribute.type == "dateTime":
            if op not in _SQL_OPERATORS:
                raise InvalidFilter(f"'{op}' is not defined for the dateTime {_quote(target.name)}")
            if kind != "string":
                raise InvalidFilter(
                    f"{_quote(target.name)} is a dateTime; compare it with a "
                    f'string such as "2026-01-02T03:04:05Z"'
                )
            converter = _datetime(op, target.name)
            return f"{self.text(target)} {_SQL_OPERATORS[op]} {self.slot(value, converter)}"
        if attribute.type in _NUMBER_TYPES:
            return self._compare_number(target, op, value, kind)
        return self._compare_string(target, op, value, kind)

    @staticmethod
    def _implied(target: _Array | _Relation | _Object) -> str:
        if target.attribute.sub("value") is None:
            raise InvalidFilter(f"{_quote(target.name)} is complex; name one of its sub-attributes")
        return "value"

    def _compare_boolean(self, target: _Scalar, op: str, value: Value, kind: str) -> str:
        if op != "eq":
            raise InvalidFilter(f"'{op}' is not defined for the boolean {_quote(target.name)}")
        if kind not in ("boolean", "string"):
            raise InvalidFilter(
                f"{_quote(target.name)} is a boolean; compare it with true or false"
            )
        if target.ref is None:
            return f"{self.text(target)} = {self.slot(value, _boolean(target.name, False))}"
        placeholder = self.slot(value, _boolean(target.name, True))
        if self.sqlite:
            return f"json_type({target.ref.base}, {self.json_path(target.ref)}) = {placeholder}"
        return (
            f"(json_typeof({self.json_node(target.ref)}) = 'boolean' AND "
            f"{self.json_text(target.ref)} = {placeholder})"
        )

    def _compare_number(self, target: _Scalar, op: str, value: Value, kind: str) -> str:
        if op not in _SQL_OPERATORS:
            raise InvalidFilter(f"'{op}' is not defined for the number {_quote(target.name)}")
        if kind != "number":
            raise InvalidFilter(f"{_quote(target.name)} is a number; compare it with a number")
        sql_op = _SQL_OPERATORS[op]
        if target.ref is None:
            return f"{self.text(target)} {sql_op} {self.slot(value, _identity)}"
        if self.sqlite:
            return (
                f"({self.json_is(target.ref, 'number')} AND {self.json_text(target.ref)} "
                f"{sql_op} {self.slot(value, _identity)})"
            )
        return (
            f"(CASE WHEN {self.json_is(target.ref, 'number')} THEN "
            f"CAST({self.json_text(target.ref)} AS numeric) END) {sql_op} "
            f"CAST({self.slot(value, _identity)} AS numeric)"
        )

    def _compare_string(self, target: _Scalar, op: str, value: Value, kind: str) -> str:
        attribute = target.attribute
        if kind != "string":
            raise InvalidFilter(
                f"{_quote(target.name)} is a string; compare it with a string literal"
            )
        if attribute.type == "binary" and op in ("gt", "ge", "lt", "le"):
            raise InvalidFilter(f"'{op}' is not defined for the binary {_quote(target.name)}")
        exact = attribute.case_exact if target.case_exact is None else target.case_exact
        column = self.text(target)
        if not exact and not target.lowered:
            column = f"lower({column})"
        if op in ("co", "sw", "ew"):
            if exact and self.sqlite:
                return f"{column} GLOB {self.slot(value, _pattern(op, True, glob=True))}"
            placeholder = self.slot(value, _pattern(op, exact, glob=False))
            return f"{column} LIKE {placeholder} ESCAPE '\\'"
        placeholder = self.slot(value, _identity if exact else _lower)
        if op != "eq" and not self.sqlite:
            column = f'{column} COLLATE "C"'
        return f"{column} {_SQL_OPERATORS[op]} {placeholder}"

    # Sorting

    def sort(self, target: _Target, path: str) -> str:
        if isinstance(target, _Relation):
            raise InvalidValue(f"cannot sort by {_quote(path)}")
        if isinstance(target, _Object):
            scope = _NestedScope(target.attribute, target.name, target.ref)
            return self.sort(scope.resolve(self._sortable_value(target, path)), path)
        if isinstance(target, _Array):
            sub = target.sub.name if target.sub is not None else self._sortable_value(target, path)
            return self._sort_array(target, sub)
        if target.constant is not None:
            raise InvalidValue(f"cannot sort by {_quote(path)}")
        return self._sort_scalar(target)

    @staticmethod
    def _sortable_value(target: _Array | _Object, path: str) -> str:
        if target.attribute.sub("value") is None:
            raise InvalidValue(
                f"cannot sort by the complex {_quote(path)}; name one of its sub-attributes"
            )
        return "value"

    def _sort_scalar(self, target: _Scalar) -> str:
        attribute = target.attribute
        expression = self.text(target)
        if attribute.type in _STRING_TYPES:
            exact = attribute.case_exact if target.case_exact is None else target.case_exact
            if not exact and not target.lowered:
                expression = f"lower({expression})"
            if not self.sqlite:
                expression = f'{expression} COLLATE "C"'
        elif attribute.type in _NUMBER_TYPES and target.ref is not None:
            if self.sqlite:
                expression = f"CASE WHEN {self.json_is(target.ref, 'number')} THEN {expression} END"
            else:
                expression = (
                    f"CASE WHEN {self.json_is(target.ref, 'number')} "
                    f"THEN CAST({expression} AS numeric) END"
                )
        return expression

    def _sort_array(self, target: _Array, sub: str) -> str:
        """RFC 7644 §3.4.2.3: the primary value, or else the first one."""
        e = f"e{self.alias()}"
        if self.sqlite:
            element = f"CASE {e}.type WHEN 'object' THEN {e}.value ELSE '{{}}' END"
            source = f"json_each({target.ref.base}, {self.json_path(target.ref)}) AS {e}"
            guard, position = f"{e}.type = 'object'", f"{e}.key"
        else:
            array = self.json_node(target.ref)
            element = f"{e}.value"
            source = (
                f"json_array_elements(CASE WHEN json_typeof({array}) = 'array' "
                f"THEN {array} END) WITH ORDINALITY AS {e}(value, n)"
            )
            guard, position = f"json_typeof({e}.value) = 'object'", f"{e}.n"
        scope = _NestedScope(target.attribute, target.name, _JsonRef(element, ()))
        value = scope.resolve(sub)
        if not isinstance(value, _Scalar):
            raise InvalidValue(f"cannot sort by {_quote(target.name)}")
        expression = self._sort_scalar(value)
        order = position
        if target.attribute.sub("primary") is not None:
            primary = _JsonRef(element, ("primary",))
            if self.sqlite:
                first = f"json_type({element}, {self.json_path(primary)}) = 'true'"
            else:
                first = (
                    f"(json_typeof({self.json_node(primary)}) = 'boolean' AND "
                    f"{self.json_text(primary)} = 'true')"
                )
            order = f"COALESCE({first}, FALSE) DESC, {position}"
        return f"(SELECT {expression} FROM {source} WHERE {guard} ORDER BY {order} LIMIT 1)"


def _sql_string(value: str, dialect: Dialect) -> str:
    """``value`` as an SQL string expression with no ``:`` character in its text."""
    parts = [f"'{part}'" for part in value.replace("'", "''").split(":")]
    if len(parts) == 1:
        return parts[0]
    colon = " || char(58) || " if dialect == "sqlite" else " || chr(58) || "
    return "(" + colon.join(parts) + ")"


# Caches and the public entry points -------------------------------------------------------------

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass
class _Lru(Generic[_K, _V]):
    size: int
    _data: OrderedDict[_K, _V] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: _K) -> _V | None:
        # Lock-free: each OrderedDict call is atomic, and a concurrent eviction between the two
        # only costs the recency update.
        value = self._data.get(key)
        if value is not None:
            try:  # noqa: SIM105 - contextlib.suppress would add a context manager to each hit
                self._data.move_to_end(key)
            except KeyError:
                pass
        return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_FILTERS: _Lru[tuple[int, str, tuple[str, ...]], _Template] = _Lru(_CACHE_SIZE)
_SORTS: _Lru[tuple[int, str, str], tuple[ResourceType, str]] = _Lru(_CACHE_SIZE)


def compile_filter(text: str, resource: ResourceType, dialect: Dialect) -> CompiledFilter:
    """``text`` as a boolean SQL fragment over ``users u`` (or ``groups g``) and its parameters.

    Raises ``InvalidFilter`` for a filter that is malformed, too long or too deep, names an
    unknown or never-returned attribute, or compares a value of the wrong type.
    """
    scan = _scan(text)
    key = (id(resource), dialect, scan.shape)
    template = _FILTERS.get(key)
    if template is None or template.resource is not resource:
        node = _Parser(_scan(text, tokens=True)).parse()
        compiler = _Compiler(resource, dialect)
        sql = compiler.node(node, compiler.root)
        template = _Template(resource, sql, compiler.constants, tuple(compiler.slots))
        _FILTERS.put(key, template)
    params = dict(template.constants)
    values = scan.values
    for name, index, convert in template.slots:
        params[name] = convert(values[index])
    return CompiledFilter(template.sql, params)


def sort_expression(path: str, resource: ResourceType, dialect: Dialect) -> str:
    """The ORDER BY expression for ``sortBy=path`` (no parameters; the caller adds ASC/DESC).

    Strings sort case-insensitively unless ``caseExact``, by code point on both databases; a
    multi-valued attribute sorts by its primary value, or else its first. Missing values are
    NULL, which SQLite and PostgreSQL place at opposite ends unless the caller adds ``NULLS
    LAST``/``NULLS FIRST``. Raises ``InvalidValue`` for an unknown or unsortable attribute.
    """
    stripped = path.strip()
    key = (id(resource), dialect, stripped.lower())
    cached = _SORTS.get(key)
    if cached is not None and cached[0] is resource:
        return cached[1]
    compiler = _Compiler(resource, dialect, inline=True)
    try:
        _check_path(stripped, 0)
        target = compiler.root.resolve(stripped)
    except InvalidFilter as error:
        raise InvalidValue(f"sortBy: {error.detail}") from None
    expression = compiler.sort(target, stripped)
    _SORTS.put(key, (resource, expression))
    return expression
