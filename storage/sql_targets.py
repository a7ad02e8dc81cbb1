"""Where each SCIM attribute of a filter or ``sortBy`` lives in SQL.

An attribute path resolves to a target: an indexed column of ``users u`` or ``groups g`` (the
column map below, read from ``storage.indexed``), a value inside the stored JSON document, a
JSON array or object, or a relation (group ``members``, user ``groups``) held as
``memberships`` rows. ``storage.sql_filters`` compiles comparisons on these targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from storage import indexed
from storage.scim.errors import InvalidFilter
from storage.scim.filters import quote
from storage.scim.schema import Attribute, ResourceType, resolve, split_urn
from storage.sql import Dialect

# The column map ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """An SQL column holding an attribute's value: as sent, or lower-cased by Python
    (``lowered``), with ``case_exact`` overriding the schema when set."""

    sql: str
    lowered: bool = False
    case_exact: bool | None = None


def _column(entry: indexed.Indexed) -> Column:
    alias = indexed.ALIASES[entry.resource]
    return Column(f"{alias}.{entry.column}", lowered=entry.lowered, case_exact=entry.case_exact)


COLUMNS: Final[dict[str, dict[tuple[str, str | None], Column]]] = {
    resource: {key: _column(entry) for key, entry in indexed.filter_columns(resource).items()}
    for resource in indexed.ALIASES
}
"""Indexed columns (``storage.indexed``), by resource and (attribute, sub-attribute) of the core
schema, lower-case. Every other attribute is read from the JSON document."""

TYPED_VALUES: Final[dict[tuple[str, str, str], Column]] = {
    key: _column(entry) for key, entry in indexed.typed_columns().items()
}
"""Indexed columns holding the ``value`` of a multi-valued attribute's element of one ``type``,
by resource, attribute (lower-case) and type (lower-case): ``emails[type eq "work" and value eq
X]`` reads ``work_email_ci``."""

RELATIONS: Final[dict[tuple[str, str], Literal["members", "groups"]]] = {
    ("Group", "members"): "members",
    ("User", "groups"): "groups",
}
"""Attributes held as ``memberships`` rows, not in the document."""

RELATION_COLUMNS: Final[dict[str, dict[str, Column | str]]] = {
    "members": {
        "value": Column("id", case_exact=True),
        "display": Column("display_name"),
        "type": "User",
    },
    "groups": {
        "value": Column("id", case_exact=True),
        "display": Column("display_name_ci", lowered=True),
        "type": "direct",
    },
}
"""Sub-attributes of a relation: a column of the joined table, or a constant."""

ALIASES: Final[dict[str, str]] = indexed.ALIASES
"""The alias of each resource's table in a compiled filter."""


# Targets -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonRef:
    """A place in a JSON document: ``keys`` below the SQL expression ``base``."""

    base: str
    keys: tuple[str, ...]

    def child(self, key: str) -> JsonRef:
        return JsonRef(self.base, (*self.keys, key))


@dataclass(frozen=True, slots=True)
class Defined:
    """A path to an attribute the resource type defines: the attribute, and the path's name."""

    attribute: Attribute
    name: str


@dataclass(frozen=True, slots=True)
class Scalar(Defined):
    """A single value: a column (``sql``), a constant, or a JSON value (``ref``)."""

    sql: str | None = None
    ref: JsonRef | None = None
    constant: str | None = None
    lowered: bool = False  # the column holds the value lower-cased by Python
    case_exact: bool | None = None  # overrides the schema when set


@dataclass(frozen=True, slots=True)
class Array(Defined):
    """A multi-valued attribute stored as a JSON array; ``sub`` when the path names one."""

    ref: JsonRef
    sub: Attribute | None = None


@dataclass(frozen=True, slots=True)
class Object(Defined):
    """A single-valued complex attribute stored as a JSON object."""

    ref: JsonRef


@dataclass(frozen=True, slots=True)
class Relation(Defined):
    """Group ``members`` or user ``groups``: rows of ``memberships``, not part of the document."""

    kind: Literal["members", "groups"]
    sub: Attribute | None = None


@dataclass(frozen=True, slots=True)
class Absent:
    """An attribute the resource type does not define, in a search across resource types: it
    has no value there (RFC 7644 §3.4.2.1), so comparisons are false and it sorts as missing."""

    name: str


Target: TypeAlias = Scalar | Array | Object | Relation | Absent


# Scopes ------------------------------------------------------------------------------------------


class Scope:
    """Where attribute names are looked up: the resource, an element, an object, a relation."""

    def resolve(self, path: str) -> Target:
        raise NotImplementedError

    @staticmethod
    def check_readable(attribute: Attribute, name: str) -> None:
        if attribute.returned == "never":
            raise InvalidFilter(f"{quote(name)} is never returned and cannot be filtered on")


class RootScope(Scope):
    """The attributes of a resource: its indexed columns, relations and JSON document.

    With ``lenient`` (a search across resource types) an attribute the type does not define is
    ``Absent`` and its path is kept in ``absent``; otherwise it is an invalidFilter.
    """

    def __init__(self, resource: ResourceType, dialect: Dialect, *, lenient: bool = False) -> None:
        self._resource = resource
        self._columns = COLUMNS.get(resource.name, {})
        alias = ALIASES[resource.name]
        self.document = f"{alias}.doc" if dialect == "sqlite" else f"CAST({alias}.doc AS json)"
        self.lenient = lenient
        self.absent: set[str] = set()

    def resolve(self, path: str) -> Target:
        resource = self._resource
        resolved = resolve(resource, path)
        if resolved is None and split_urn(resource, path)[0] is resource.core:
            for extension in resource.extensions:
                resolved = resolve(resource, f"{extension.id}:{path}")
                if resolved is not None:
                    break
        if resolved is None:
            if self.lenient:
                self.absent.add(path.lower())
                return Absent(path)
            raise InvalidFilter(f"unknown attribute {quote(path)}")
        attribute, sub = resolved.attribute, resolved.sub
        name = attribute.name if sub is None else f"{attribute.name}.{sub.name}"
        self.check_readable(attribute, name)
        if sub is not None:
            self.check_readable(sub, name)
        if resolved.schema is resource.core:
            relation = RELATIONS.get((resource.name, attribute.name))
            if relation is not None:
                return Relation(attribute, name, relation, sub)
            key = (attribute.name.lower(), None if sub is None else sub.name.lower())
            column = self._columns.get(key)
            if column is not None:
                return Scalar(
                    resolved.target,
                    name,
                    sql=column.sql,
                    lowered=column.lowered,
                    case_exact=column.case_exact,
                )
            ref = JsonRef(self.document, (attribute.name,))
        else:
            ref = JsonRef(self.document, (resolved.schema.id, attribute.name))
        return _json_target(attribute, name, ref, sub)


class NestedScope(Scope):
    """The sub-attributes of one JSON object: an array element, or a complex attribute."""

    def __init__(self, owner: Attribute, owner_name: str, ref: JsonRef) -> None:
        self._owner = owner
        self._owner_name = owner_name
        self._ref = ref

    def resolve(self, path: str) -> Target:
        sub = self._owner.sub(path)
        if sub is None:
            raise InvalidFilter(
                f"{quote(path)} is not a sub-attribute of {quote(self._owner_name)}"
            )
        name = f"{self._owner_name}.{sub.name}"
        self.check_readable(sub, name)
        return _json_target(sub, name, self._ref.child(sub.name), None)


class RelationScope(Scope):
    """The sub-attributes of one related row, joined as ``alias``."""

    def __init__(self, relation: Relation, alias: str) -> None:
        self._relation = relation
        self._alias = alias

    def resolve(self, path: str) -> Target:
        owner = self._relation.attribute
        sub = owner.sub(path)
        if sub is None:
            raise InvalidFilter(f"{quote(path)} is not a sub-attribute of {quote(owner.name)}")
        name = f"{owner.name}.{sub.name}"
        column = RELATION_COLUMNS[self._relation.kind].get(sub.name)
        if column is None:
            raise InvalidFilter(f"{quote(name)} cannot be used in a filter")
        if isinstance(column, str):
            return Scalar(sub, name, constant=column)
        sql = f"{self._alias}.{column.sql}"
        return Scalar(sub, name, sql=sql, lowered=column.lowered, case_exact=column.case_exact)


def _json_target(attribute: Attribute, name: str, ref: JsonRef, sub: Attribute | None) -> Target:
    if attribute.multi_valued:
        return Array(attribute, name, ref, sub)
    if attribute.type == "complex":
        if sub is None:
            return Object(attribute, name, ref)
        return Scalar(sub, name, ref=ref.child(sub.name))
    return Scalar(attribute, name, ref=ref)
