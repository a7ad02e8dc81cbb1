"""The SCIM filter grammar (RFC 7644 §3.4.2.2): tokens, parser, syntax tree, typing rules, and the
in-memory evaluation of a value filter.

Filters have two readers. A list's ``filter`` (and ``sortBy``) runs in the database, compiled
from the tree of ``parse`` outside this package, which knows no database. A PATCH path's value
filter (``emails[type eq "work"].value``, ``members[value eq "id"]``) selects elements of a
multi-valued attribute in memory: ``ValueFilter`` checks the tree against the attribute's
sub-attributes and tests elements with it. Both follow the grammar, the typing rules and the
semantics below.

Grammar: ``eq ne co sw ew gt ge lt le pr``; ``not`` > ``and`` > ``or``; parentheses; value paths
``attr[filter]`` (``and``/``or``/``not`` inside) and ``attr[filter].sub op value``; JSON string
literals with escapes, numbers, ``true``, ``false``, ``null``. Attribute names, operators, keywords
and schema URN prefixes are case-insensitive. Leniencies: ``not`` may omit its parentheses (``not
title pr``, ``emails[not type eq "work"]``), and an unqualified name that the core schema lacks is
looked up in the extensions, so Entra's ``manager eq "id"`` means the enterprise ``manager.value``.

Semantics:

- A comparison on a missing attribute is false, and ``not`` is a two-valued negation: ``not
  (title eq "x")`` matches users without a title.
- ``a ne v`` is ``not (a eq v)``. It matches resources where ``a`` is absent, and for a
  multi-valued ``a`` it means "no value equals v" (``members ne "U"``: groups U is not in). Inside
  brackets the element is single-valued: ``emails[type ne "work"]`` is "an email whose type is not
  work".
- Any other comparison on a multi-valued attribute matches when one value matches; a complex
  attribute compared without a sub-attribute compares its ``value`` sub-attribute.
- ``pr``: the value is present and not ``""`` (a boolean or number only when it has that JSON
  type); a multi-valued attribute has at least one value; a complex one has a present
  sub-attribute. ``eq null`` means "not present", ``ne null`` "present".
- Strings follow the attribute's ``caseExact`` (both sides lower-cased when false); ``co``/``sw``
  /``ew`` are substring tests with every character literal; ``gt``/``ge``/``lt``/``le`` compare
  code points.
- Booleans take ``eq`` (and ``ne``) with ``true``/``false``, or the strings ``"true"``/``"false"``
  in any case; numbers take a number and no substring operator; strings and binaries take a
  string, binaries no ordering.
- ``dateTime`` values take ``eq``, ``ne`` and the orderings with an xsd:dateTime string (any
  offset, none meaning UTC) and compare as instants. The database holds timestamps as fixed-width
  UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) and compares a literal normalized to that text; in
  memory an element's value is read as an instant too (one that is no xsd:dateTime matches no
  comparison).

A ``password`` filter, an unknown attribute or an ill-typed value raises ``InvalidFilter``; its
detail names attributes and positions but never echoes a literal value. A filter is at most
``MAX_FILTER_LENGTH`` characters (a PATCH path has its own, longer limit) and nests at most
``MAX_DEPTH`` levels of parentheses, brackets and ``not``.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, NamedTuple, TypeAlias

from storage.scim.errors import InvalidFilter
from storage.scim.schema import Attribute

MAX_FILTER_LENGTH: Final = 2048
"""Longest list filter accepted, in characters."""

MAX_DEPTH: Final = 12
"""Deepest nesting of parentheses, brackets and ``not`` accepted."""


# Syntax tree -------------------------------------------------------------------------------------

LiteralValue: TypeAlias = str | bool | int | float | None


@dataclass(frozen=True, slots=True)
class Value:
    """A literal. ``index`` numbers the non-null literals of the filter from 0, left to right."""

    value: LiteralValue
    index: int


@dataclass(frozen=True, slots=True)
class AttributeTest:
    """A test of the attribute at ``path``."""

    path: str


@dataclass(frozen=True, slots=True)
class Comparison(AttributeTest):
    """``path op value``; ``op`` is lower-case and never ``pr``."""

    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Present(AttributeTest):
    """``path pr``."""


@dataclass(frozen=True, slots=True)
class ValuePath(AttributeTest):
    """``path[filter]``; ``path[f].sub op value`` is parsed as ``path[f and sub op value]``."""

    filter: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Junction:
    """Operands joined by ``and`` or ``or``."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class And(Junction):
    """Every operand holds."""


@dataclass(frozen=True, slots=True)
class Or(Junction):
    """At least one operand holds."""


Node: TypeAlias = Comparison | Present | ValuePath | Not | And | Or


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


class _Token(NamedTuple):
    kind: str  # word, string, number, bool, null, sub, end, or one of ( ) [ ]
    text: str
    position: int
    slot: int = -1  # for literals with a value: its place in the literal list


class Scan(NamedTuple):
    """A filter's shape and its literal values.

    The shape is the filter with its literals taken out: words lower-cased, punctuation, and one
    marker per literal kind (``"`` a string, ``#`` a number, ``?`` a boolean, ``null``); a string
    literal that the caller asked to keep stays, lower-cased after its ``"``. Two filters of one
    shape differ only in ``values``, which hold the non-null literals in order.
    """

    shape: tuple[str, ...]
    values: list[LiteralValue]


_STRING, _NUMBER, _WORD, _SUB = 1, 2, 3, 4  # group numbers in _TOKEN


_NOTHING_KEPT: Final[frozenset[str]] = frozenset()


def scan(text: str, keep: frozenset[str] = _NOTHING_KEPT) -> Scan:
    """The shape and literal values of the list filter ``text``, without parsing it.

    ``keep`` names (lower-case) string literals that stay in the shape, for a caller that treats
    them apart. Raises ``InvalidFilter`` for text that cannot be tokenized; a filter of a valid
    shape may still fail to parse.
    """
    return _scan(text, None, MAX_FILTER_LENGTH, keep)


def _scan(
    text: str, tokens: list[_Token] | None, max_length: int, keep: frozenset[str] = _NOTHING_KEPT
) -> Scan:
    """Tokenize ``text`` into its shape and values, and into ``tokens`` when given."""
    if len(text) > max_length:
        raise InvalidFilter(f"the filter is longer than {max_length} characters")
    if "\x00" in text:
        raise InvalidFilter("the filter contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidFilter("the filter is not valid Unicode text") from None
    shape: list[str] = []
    values: list[LiteralValue] = []
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
            if keep and value.lower() in keep:
                shape.append('"' + value.lower())
            else:
                shape.append('"')
        elif group == _NUMBER:
            kind, index = "number", len(values)
            values.append(_decode_number(raw, found.start(group)))
            shape.append("#")
        elif group == _SUB:
            kind = "sub"
            shape.append(raw.lower())
        else:
            shape.append(raw)
        if tokens is not None:
            tokens.append(_Token(kind, raw, found.start(group), index))
    if tokens is not None:
        tokens.append(_Token("end", "", len(text)))
    return Scan(tuple(shape), values)


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


def parse(text: str, *, max_length: int = MAX_FILTER_LENGTH) -> Node:
    """The syntax tree of ``text``; ``InvalidFilter`` with a clear detail on any error."""
    tokens: list[_Token] = []
    found = _scan(text, tokens, max_length)
    return _Parser(tokens, found.values).parse()


def check_path(path: str, position: int) -> None:
    """Reject text that is not ``[URN ":"] attr ["." sub]`` (RFC 7644 ``attrPath``)."""
    prefix, colon, rest = path.rpartition(":")
    valid = _ATTRIBUTE_PATH.fullmatch(rest) is not None
    if valid and colon:
        segments = prefix.split(":")
        valid = segments[0][:1].isalpha() and all(s and "$" not in s for s in segments)
    if not valid:
        raise InvalidFilter(f"{quote(path)} at position {position} is not an attribute path")


def quote(text: str) -> str:
    """An attribute path quoted for an error detail, cut short when long."""
    return f"'{text}'" if len(text) <= 80 else f"'{text[:77]}...'"


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return "a string literal"
    if token.kind == "number":
        return "a number"
    return quote(token.text)


class _Parser:
    """Recursive descent over the tokens; ``and``/``or`` chains become n-ary nodes."""

    def __init__(self, tokens: list[_Token], values: list[LiteralValue]) -> None:
        self._tokens = tokens
        self._values = values
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
        check_path(token.text, token.position)
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
                f"unknown operator {quote(token.text)} at position {token.position}"
            )
        value = self._next()
        if value.kind == "null":
            return Comparison(path, op, Value(None, -1))
        if value.kind in ("string", "number", "bool"):
            return Comparison(path, op, Value(self._values[value.slot], value.slot))
        raise self._unexpected(value, f"a value after '{op}'")


# Typing rules ------------------------------------------------------------------------------------

STRING_TYPES: Final = frozenset({"string", "reference", "binary"})
NUMBER_TYPES: Final = frozenset({"integer", "decimal"})
ORDERED_OPERATORS: Final = frozenset({"eq", "gt", "ge", "lt", "le"})
"""The operators of booleans' (``eq`` only), numbers' and dateTimes' comparisons."""

_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def literal_kind(value: LiteralValue) -> str:
    """``boolean``, ``string``, ``null`` or ``number``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number"


def check_null(op: str) -> None:
    """Only ``eq null`` ("not present") and ``ne null`` ("present") are defined."""
    if op not in ("eq", "ne"):
        raise InvalidFilter(f"'{op}' cannot compare with null; use 'pr' or 'eq null'")


def check_operation(attribute: Attribute, name: str, op: str, kind: str) -> None:
    """Refuse ``name op literal`` where the attribute's type does not define ``op`` or ``kind``.

    ``op`` is not ``ne`` (checked as ``eq``); ``kind`` is the literal's ``literal_kind`` and not
    ``null`` (see ``check_null``). Values are checked when they are read: ``boolean``,
    ``instant``.
    """
    label = quote(name)
    if attribute.type == "boolean":
        if op != "eq":
            raise InvalidFilter(f"'{op}' is not defined for the boolean {label}")
        if kind not in ("boolean", "string"):
            raise InvalidFilter(f"{label} is a boolean; compare it with true or false")
    elif attribute.type == "dateTime":
        if op not in ORDERED_OPERATORS:
            raise InvalidFilter(f"'{op}' is not defined for the dateTime {label}")
        if kind != "string":
            raise InvalidFilter(
                f'{label} is a dateTime; compare it with a string such as "2026-01-02T03:04:05Z"'
            )
    elif attribute.type in NUMBER_TYPES:
        if op not in ORDERED_OPERATORS:
            raise InvalidFilter(f"'{op}' is not defined for the number {label}")
        if kind != "number":
            raise InvalidFilter(f"{label} is a number; compare it with a number")
    else:
        if kind != "string":
            raise InvalidFilter(f"{label} is a string; compare it with a string literal")
        if attribute.type == "binary" and op in ("gt", "ge", "lt", "le"):
            raise InvalidFilter(f"'{op}' is not defined for the binary {label}")


def boolean(value: LiteralValue, name: str) -> bool:
    """A boolean literal: ``true``/``false`` or the strings ``"true"``/``"false"`` in any case."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise InvalidFilter(f"{name} is a boolean; compare it with true or false")
        return lowered == "true"
    return bool(value)


def instant(text: str, name: str) -> tuple[datetime, str]:
    """The xsd:dateTime ``text`` as a UTC moment in whole microseconds and the digits of its
    fraction past microseconds, trailing zeros dropped; the pairs order as the instants do."""
    read = _read_instant(text)
    if isinstance(read, str):
        raise InvalidFilter(f"{name} {read}")
    return read


def _read_instant(text: str) -> tuple[datetime, str] | str:
    """``instant`` of ``text``, or what is wrong with it."""
    found = _DATETIME.fullmatch(text)
    if found is None:
        return 'needs an xsd:dateTime value such as "2026-01-02T03:04:05Z"'
    fraction = found.group(7) or ""
    zone = found.group(8)
    tz = UTC
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return "has a dateTime value with an invalid offset"
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
    except (ValueError, OverflowError):
        return "has a dateTime value out of range"
    return moment, fraction[6:].rstrip("0")


def coerce(attribute: Attribute, value: LiteralValue) -> LiteralValue:
    """A checked literal as a value of ``attribute``: a boolean's ``"True"`` is ``True``."""
    if attribute.type == "boolean" and value is not None:
        return boolean(value, quote(attribute.name))
    return value


# In-memory evaluation ----------------------------------------------------------------------------

Element: TypeAlias = Mapping[str, Any]
_Test: TypeAlias = Callable[[Element], bool]
_Check: TypeAlias = Callable[[Any], bool]

_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "co": lambda actual, expected: expected in actual,
    "sw": lambda actual, expected: actual.startswith(expected),
    "ew": lambda actual, expected: actual.endswith(expected),
}


class ValueFilter:
    """The filter of a value path (``attr[filter]``), ready to test elements of ``attribute``.

    Building one checks the tree against the sub-attributes of the complex ``attribute``: an
    unknown name or an ill-typed literal raises ``InvalidFilter``. ``matches`` then tests one
    element (a JSON object) with no further parsing.
    """

    __slots__ = ("attribute", "matches", "node")

    def __init__(self, attribute: Attribute, node: Node) -> None:
        self.attribute = attribute
        self.node = node
        self.matches: _Test = _test(attribute, node)

    def sub(self, path: str) -> Attribute:
        """The sub-attribute a path of the filter names."""
        return _element_sub(self.attribute, path)


def _element_sub(attribute: Attribute, path: str) -> Attribute:
    sub = attribute.sub(path)
    if sub is None or sub.type == "complex":
        raise InvalidFilter(f"{quote(path)} is not a sub-attribute of {quote(attribute.name)}")
    return sub


def _test(attribute: Attribute, node: Node) -> _Test:
    if isinstance(node, Comparison):
        return _comparison(attribute, node)
    if isinstance(node, Present):
        sub = _element_sub(attribute, node.path)
        key, present = sub.name, _presence(sub)
        return lambda element: present(element.get(key))
    if isinstance(node, And):
        tests = tuple(_test(attribute, operand) for operand in node.operands)
        return lambda element: all(test(element) for test in tests)
    if isinstance(node, Or):
        tests = tuple(_test(attribute, operand) for operand in node.operands)
        return lambda element: any(test(element) for test in tests)
    if isinstance(node, Not):
        inner = _test(attribute, node.operand)
        return lambda element: not inner(element)
    _element_sub(attribute, node.path)
    raise InvalidFilter(
        f"{quote(node.path)} is not a complex attribute; '[...]' filters only complex attributes"
    )


def _comparison(attribute: Attribute, node: Comparison) -> _Test:
    sub = _element_sub(attribute, node.path)
    key = sub.name
    literal = node.value.value
    if literal is None:
        check_null(node.op)
        present = _presence(sub)
        if node.op == "eq":
            return lambda element: not present(element.get(key))
        return lambda element: present(element.get(key))
    op = "eq" if node.op == "ne" else node.op
    name = f"{attribute.name}.{sub.name}"
    check_operation(sub, name, op, literal_kind(literal))
    check = _value_check(sub, name, op, literal)
    if node.op == "ne":
        return lambda element: not check(element.get(key))
    return lambda element: check(element.get(key))


def _presence(attribute: Attribute) -> _Check:
    if attribute.type == "boolean":
        return lambda value: isinstance(value, bool)
    if attribute.type in NUMBER_TYPES:
        return _is_number
    return lambda value: value is not None and value != ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_check(attribute: Attribute, name: str, op: str, literal: LiteralValue) -> _Check:
    """Whether an element's value (``None`` when missing) satisfies ``op literal``."""
    compare = _COMPARE[op]
    if attribute.type == "boolean":
        expected_boolean = boolean(literal, name)
        return lambda value: value is expected_boolean
    if attribute.type in NUMBER_TYPES:
        return lambda value: _is_number(value) and compare(value, literal)
    if attribute.type == "dateTime":
        expected_instant = instant(str(literal), name)

        def check_instant(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            read = _read_instant(value)
            return not isinstance(read, str) and compare(read, expected_instant)

        return check_instant
    text = str(literal)
    if attribute.case_exact:
        return lambda value: isinstance(value, str) and compare(value, text)
    folded = text.lower()
    return lambda value: isinstance(value, str) and compare(value.lower(), folded)
