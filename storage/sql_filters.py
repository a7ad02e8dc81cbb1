"""SCIM filters and ``sortBy`` compiled to SQL for SQLite and PostgreSQL.

``compile_filter`` turns a list filter into a boolean SQL fragment over ``users u`` or ``groups
g`` with ``:f0, :f1, ...`` placeholders; ``sort_expression`` turns a ``sortBy`` path into an ORDER
BY expression. Filters always run in the database. The grammar, its typing rules and its
semantics are ``storage.scim.filters``'s, identical on both databases; ``storage.sql_targets``
says where each attribute lives.

In SQL:

- ``co``/``sw``/``ew`` are ``LIKE`` (or, case-exact on SQLite, ``GLOB``) patterns with ``%``,
  ``_`` (and on SQLite ``*``, ``?``, ``[``) escaped; orderings compare code points (``COLLATE
  "C"`` on PostgreSQL).
- ``dateTime`` literals are normalized to the stored fixed-width UTC text
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and compared as text; digits past microseconds are rounded in
  the direction that keeps the comparison exact.
- Case-insensitive comparisons on JSON values use SQL ``lower()``, which on SQLite folds ASCII
  only; the indexed ``*_ci`` columns are folded in Python and have no such limit.
- ``emails[type eq "work" and value eq X]`` reads the indexed work e-mail column.

Compiled SQL is cached by the filter's shape (its tokens with literal values replaced by their
kind, a literal naming an indexed element type such as ``"work"`` kept), so a repeated ``userName
eq "..."`` costs one tokenization and a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from storage.scim.errors import InvalidFilter, InvalidValue
from storage.scim.filters import (
    NUMBER_TYPES,
    STRING_TYPES,
    And,
    Comparison,
    Node,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
    boolean,
    check_null,
    check_operation,
    check_path,
    instant,
    literal_kind,
    parse,
    quote,
    scan,
)
from storage.scim.schema import ResourceType
from storage.sql import Dialect
from storage.sql_targets import (
    TYPED_VALUES,
    Absent,
    Array,
    JsonRef,
    NestedScope,
    Object,
    Relation,
    RelationScope,
    RootScope,
    Scalar,
    Scope,
    Target,
)

__all__ = ["CompiledFilter", "Dialect", "SortKey", "compile_filter", "sort_expression", "sort_key"]

_CACHE_SIZE: Final = 1024
_SQL_OPERATORS: Final = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_TYPES: Final = frozenset(kind for _, _, kind in TYPED_VALUES)
"""Literals kept in the shape key: the element types with an indexed column."""


@dataclass(frozen=True)
class CompiledFilter:
    """A boolean SQL fragment and the values of its ``:fN`` placeholders; ``absent`` names (in
    lower case) the attributes a lenient compile found the resource type not to define."""

    sql: str
    params: dict[str, Any]
    absent: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SortKey:
    """A ``sortBy`` as SQL: the expression (None when the resource type does not define the
    attribute, in a search across types) and the SQL type of its values."""

    expression: str | None
    sql_type: Literal["text", "numeric", "boolean"]


# Literal conversion ------------------------------------------------------------------------------

Converter: TypeAlias = Callable[[Any], Any]

_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
_GLOB_ESCAPES = str.maketrans({"[": "[[]", "*": "[*]", "?": "[?]"})
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
        truth = boolean(value, name)
        if as_text:
            return "true" if truth else "false"
        return truth

    return convert


def _datetime(op: str, name: str) -> Converter:
    """Normalize an xsd:dateTime to the stored text, rounding extra digits so ``op`` stays exact.

    Stored values have whole microseconds. Past them, ``gt``/``le`` round down, ``ge``/``lt``
    round up, and ``eq`` keeps the extra digits so the text equals no stored value.
    """

    def convert(value: Any) -> Any:
        moment, extra = instant(str(value), name)
        if extra and op in ("ge", "lt"):
            try:
                moment += _ONE_MICROSECOND
            except OverflowError:
                raise InvalidFilter(f"{name} has a dateTime value out of range") from None
        text = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
        )
        if extra and op == "eq":
            text += extra
        return text + "Z"

    return convert


# Compiler ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    """A compiled filter shape: SQL, constant parameters, and where each literal goes."""

    resource: ResourceType
    sql: str
    constants: dict[str, Any]
    slots: tuple[tuple[str, int, Converter], ...]
    absent: frozenset[str]


class _Compiler:
    """Compiles syntax trees of one resource type for one dialect.

    With ``inline`` (sort expressions, which have no parameters) constants become SQL string
    literals with every ``:`` spelled ``char(58)``, so no text can be taken for a placeholder.
    With ``lenient`` an attribute the type does not define has no value (``Absent``).
    """

    def __init__(
        self,
        resource: ResourceType,
        dialect: Dialect,
        *,
        inline: bool = False,
        lenient: bool = False,
    ) -> None:
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
        self.root = RootScope(resource, dialect, lenient=lenient)
        self.sort_type: Literal["text", "numeric", "boolean"] = "text"

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

    def json_path(self, ref: JsonRef) -> str:
        return self.constant("$" + "".join(f'."{key}"' for key in ref.keys))

    def _key(self, key: str) -> str:
        return f"CAST({self.constant(key)} AS text)"

    def json_node(self, ref: JsonRef) -> str:
        """PostgreSQL: the json value at ``ref``."""
        return "(" + ref.base + "".join(f" -> {self._key(key)}" for key in ref.keys) + ")"

    def json_text(self, ref: JsonRef) -> str:
        if self.sqlite:
            return f"json_extract({ref.base}, {self.json_path(ref)})"
        keys = [self._key(key) for key in ref.keys]
        return "(" + ref.base + "".join(f" -> {key}" for key in keys[:-1]) + f" ->> {keys[-1]})"

    def json_is(self, ref: JsonRef, kind: Literal["boolean", "number"]) -> str:
        if self.sqlite:
            kinds = "'true', 'false'" if kind == "boolean" else "'integer', 'real'"
            return f"json_type({ref.base}, {self.json_path(ref)}) IN ({kinds})"
        return f"json_typeof({self.json_node(ref)}) = '{kind}'"

    def text(self, target: Scalar) -> str:
        if target.sql is not None:
            return target.sql
        if target.constant is not None:
            return f"CAST({self.constant(target.constant)} AS text)"
        assert target.ref is not None
        return self.json_text(target.ref)

    # Nodes

    def node(self, node: Node, scope: Scope) -> str:
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

    def comparison(self, node: Comparison, scope: Scope) -> str:
        target = scope.resolve(node.path)
        if node.value.value is None:
            check_null(node.op)
            present = self.present(target)
            return present if node.op == "ne" else f"NOT COALESCE({present}, FALSE)"
        if node.op == "ne":
            return f"NOT COALESCE({self.compare(target, 'eq', node.value)}, FALSE)"
        return self.compare(target, node.op, node.value)

    def value_path(self, node: ValuePath, scope: Scope) -> str:
        target = scope.resolve(node.path)
        if isinstance(target, Absent):
            return "FALSE"
        if isinstance(target, Array) and target.sub is None:
            if scope is self.root:
                indexed = self._typed_value(target, node.filter)
                if indexed is not None:
                    return indexed
            return self.exists(target, lambda inner: self.node(node.filter, inner))
        if isinstance(target, Relation) and target.sub is None:
            return self.exists(target, lambda inner: self.node(node.filter, inner))
        if isinstance(target, Object):
            return self.node(node.filter, NestedScope(target.attribute, target.name, target.ref))
        raise InvalidFilter(
            f"{quote(node.path)} is not a complex attribute; "
            f"'[...]' filters only complex attributes"
        )

    def _typed_value(self, target: Array, node: Node) -> str | None:
        """``attr[type eq "T" and value eq X]`` on the indexed column of ``TYPED_VALUES``."""
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
        sub = target.attribute.sub("value")
        if not isinstance(literal, str) or sub is None:
            return None
        key = (self.resource.name, target.attribute.name.lower(), literal.lower())
        column = TYPED_VALUES.get(key)
        if column is None:
            return None
        exact = sub.case_exact if column.case_exact is None else column.case_exact
        sql = column.sql if exact or column.lowered else f"lower({column.sql})"
        return f"{sql} = {self.slot(value.value, _identity if exact else _lower)}"

    def exists(self, target: Array | Relation, build: Callable[[Scope], str | None]) -> str:
        """One element (or related row) satisfies what ``build`` compiles in its scope."""
        n = self.alias()
        if isinstance(target, Relation):
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
            inner = build(RelationScope(target, r))
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
        inner = build(NestedScope(target.attribute, target.name, JsonRef(element, ())))
        condition = f"{guard} AND ({inner})" if inner else guard
        return f"EXISTS (SELECT 1 FROM {source} WHERE {condition})"

    def present(self, target: Target) -> str:
        if isinstance(target, Absent):
            return "FALSE"
        if isinstance(target, Relation):
            if target.sub is None:
                return self.exists(target, lambda inner: None)
            sub = target.sub.name
            return self.exists(target, lambda inner: self.present(inner.resolve(sub)))
        if isinstance(target, Array):
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
        if isinstance(target, Object):
            scope = NestedScope(target.attribute, target.name, target.ref)
            parts = [
                self.present(scope.resolve(sub.name))
                for sub in target.attribute.sub_attributes
                if sub.returned != "never"
            ]
            return "(" + " OR ".join(parts) + ")"
        typed = target.attribute.type == "boolean" or target.attribute.type in NUMBER_TYPES
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

    def compare(self, target: Target, op: str, value: Value) -> str:
        if isinstance(target, Absent):
            return "FALSE"
        if isinstance(target, Array | Relation):
            sub = target.sub.name if target.sub is not None else self._implied(target)
            return self.exists(target, lambda inner: self.compare(inner.resolve(sub), op, value))
        if isinstance(target, Object):
            scope = NestedScope(target.attribute, target.name, target.ref)
            return self.compare(scope.resolve(self._implied(target)), op, value)
        attribute = target.attribute
        check_operation(attribute, target.name, op, literal_kind(value.value))
        if attribute.type == "boolean":
            return self._compare_boolean(target, value)
        if attribute.type == "dateTime":
            converter = _datetime(op, target.name)
            return f"{self.text(target)} {_SQL_OPERATORS[op]} {self.slot(value, converter)}"
        if attribute.type in NUMBER_TYPES:
            return self._compare_number(target, op, value)
        return self._compare_string(target, op, value)

    @staticmethod
    def _implied(target: Array | Relation | Object) -> str:
        if target.attribute.sub("value") is None:
            raise InvalidFilter(f"{quote(target.name)} is complex; name one of its sub-attributes")
        return "value"

    def _compare_boolean(self, target: Scalar, value: Value) -> str:
        if target.ref is None:
            return f"{self.text(target)} = {self.slot(value, _boolean(target.name, False))}"
        placeholder = self.slot(value, _boolean(target.name, True))
        if self.sqlite:
            return f"json_type({target.ref.base}, {self.json_path(target.ref)}) = {placeholder}"
        return (
            f"(json_typeof({self.json_node(target.ref)}) = 'boolean' AND "
            f"{self.json_text(target.ref)} = {placeholder})"
        )

    def _compare_number(self, target: Scalar, op: str, value: Value) -> str:
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

    def _compare_string(self, target: Scalar, op: str, value: Value) -> str:
        attribute = target.attribute
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

    def sort(self, target: Target, path: str) -> str:
        if isinstance(target, Relation | Absent):
            raise InvalidValue(f"cannot sort by {quote(path)}")
        if isinstance(target, Object):
            scope = NestedScope(target.attribute, target.name, target.ref)
            return self.sort(scope.resolve(self._sortable_value(target, path)), path)
        if isinstance(target, Array):
            sub = target.sub.name if target.sub is not None else self._sortable_value(target, path)
            return self._sort_array(target, sub)
        if target.constant is not None:
            raise InvalidValue(f"cannot sort by {quote(path)}")
        return self._sort_scalar(target)

    @staticmethod
    def _sortable_value(target: Array | Object, path: str) -> str:
        if target.attribute.sub("value") is None:
            raise InvalidValue(
                f"cannot sort by the complex {quote(path)}; name one of its sub-attributes"
            )
        return "value"

    def _sort_scalar(self, target: Scalar) -> str:
        attribute = target.attribute
        expression = self.text(target)
        if attribute.type == "boolean" and target.ref is None:
            self.sort_type = "boolean"
        elif attribute.type in NUMBER_TYPES:
            self.sort_type = "numeric"
        if attribute.type in STRING_TYPES:
            exact = attribute.case_exact if target.case_exact is None else target.case_exact
            if not exact and not target.lowered:
                expression = f"lower({expression})"
            if not self.sqlite:
                expression = f'{expression} COLLATE "C"'
        elif attribute.type in NUMBER_TYPES and target.ref is not None:
            if self.sqlite:
                expression = f"CASE WHEN {self.json_is(target.ref, 'number')} THEN {expression} END"
            else:
                expression = (
                    f"CASE WHEN {self.json_is(target.ref, 'number')} "
                    f"THEN CAST({expression} AS numeric) END"
                )
        return expression

    def _sort_array(self, target: Array, sub: str) -> str:
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
        scope = NestedScope(target.attribute, target.name, JsonRef(element, ()))
        value = scope.resolve(sub)
        if not isinstance(value, Scalar):
            raise InvalidValue(f"cannot sort by {quote(target.name)}")
        expression = self._sort_scalar(value)
        order = position
        if target.attribute.sub("primary") is not None:
            primary = JsonRef(element, ("primary",))
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


_FILTERS: _Lru[tuple[int, str, bool, tuple[str, ...]], _Template] = _Lru(_CACHE_SIZE)
_SORTS: _Lru[tuple[int, str, bool, str], tuple[ResourceType, SortKey]] = _Lru(_CACHE_SIZE)


def compile_filter(
    text: str, resource: ResourceType, dialect: Dialect, *, lenient: bool = False
) -> CompiledFilter:
    """``text`` as a boolean SQL fragment over ``users u`` (or ``groups g``) and its parameters.

    Raises ``InvalidFilter`` for a filter that is malformed, too long or too deep, names an
    unknown or never-returned attribute, or compares a value of the wrong type. With
    ``lenient`` (a search across resource types) an attribute the type does not define has no
    value instead, and ``absent`` names it: the caller refuses a name no type defines.
    """
    found = scan(text, _TYPES)
    values = found.values
    key = (id(resource), dialect, lenient, found.shape)
    template = _FILTERS.get(key)
    if template is None or template.resource is not resource:
        node = parse(text)
        compiler = _Compiler(resource, dialect, lenient=lenient)
        sql = compiler.node(node, compiler.root)
        template = _Template(
            resource,
            sql,
            compiler.constants,
            tuple(compiler.slots),
            frozenset(compiler.root.absent),
        )
        _FILTERS.put(key, template)
    params = dict(template.constants)
    for name, index, convert in template.slots:
        params[name] = convert(values[index])
    return CompiledFilter(template.sql, params, template.absent)


def sort_expression(path: str, resource: ResourceType, dialect: Dialect) -> str:
    """The ORDER BY expression for ``sortBy=path`` (no parameters; the caller adds ASC/DESC).

    Strings sort case-insensitively unless ``caseExact``, by code point on both databases; a
    multi-valued attribute sorts by its primary value, or else its first. Missing values are
    NULL, which SQLite and PostgreSQL place at opposite ends unless the caller adds ``NULLS
    LAST``/``NULLS FIRST``. Raises ``InvalidValue`` for an unknown or unsortable attribute.
    """
    expression = sort_key(path, resource, dialect).expression
    assert expression is not None
    return expression


def sort_key(
    path: str, resource: ResourceType, dialect: Dialect, *, lenient: bool = False
) -> SortKey:
    """``sort_expression`` with the SQL type of its values; with ``lenient`` an attribute the
    type does not define gives no expression (every resource of the type lacks a value)."""
    stripped = path.strip()
    key = (id(resource), dialect, lenient, stripped.lower())
    cached = _SORTS.get(key)
    if cached is not None and cached[0] is resource:
        return cached[1]
    compiler = _Compiler(resource, dialect, inline=True, lenient=lenient)
    try:
        check_path(stripped, 0)
        target = compiler.root.resolve(stripped)
    except InvalidFilter as error:
        raise InvalidValue(f"sortBy: {error.detail}") from None
    if isinstance(target, Absent):
        result = SortKey(None, "text")
    else:
        expression = compiler.sort(target, stripped)
        result = SortKey(expression, compiler.sort_type)
    _SORTS.put(key, (resource, result))
    return result
