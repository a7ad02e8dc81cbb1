"""The indexed attributes: the SCIM attributes that users and groups also keep as columns.

Each resource is stored as its SCIM document (``doc``) plus a handful of columns that uniqueness
rules, Entra's lookups, filters and sorting need. This table names every such column once: the
SCIM attribute it holds, whether its value is folded to lower case, whether it is unique per
tenant (and what a clash is called), and how its value is derived from the canonical document.
Everything that needs those facts reads them from here:

- the writes (``storage.resources``): the derived columns bound by every insert and update,
  and their values (``columns``), which must fit the column's index (``max_bytes``);
- the uniqueness messages of a unique-index violation (``uniqueness_detail``);
- the filter and sortBy compiler (``storage.sql_targets``): which attribute is served by which
  column, lowered or not (``filter_columns``, ``typed_columns``), and the alias of each
  resource's table (``ALIASES``), which list SQL uses too.

``storage.records`` stays the schema of record: a column named here must exist there, and a
unique entry must have its ``(tenant_id, column)`` unique constraint (the tests check both). An
entry without ``derive`` is a column the resource engine writes itself (``id``, ``meta``); it is
here for the filter compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from storage.scim.errors import InvalidValue

#: The most bytes (UTF-8) an indexed text value may take. A B-tree entry on PostgreSQL holds at
#: most 2,704 bytes (a third of a page), past which an insert fails; the same limit applies on
#: SQLite so that the two databases accept the same resources. Entra's own limits are far
#: below it (a userName of 113 characters, an e-mail address of 254, a displayName of 256).
MAX_INDEXED_BYTES: Final = 1024

Derive = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Indexed:
    """One indexed column of a resource's table."""

    resource: str
    """The resource type's name: ``User`` or ``Group``."""
    attribute: str
    """The core-schema attribute the column holds, spelled as in the schema."""
    sub: str | None
    """The sub-attribute, for a complex attribute (``meta.created``)."""
    column: str
    derive: Derive | None
    """The column's value from the canonical stored document; None when the engine writes it."""
    lowered: bool = False
    """The value is folded to lower case (a filter folds its operand likewise)."""
    unique: str | None = None
    """The uniqueness message when the column is unique per tenant."""
    case_exact: bool | None = None
    """For filters: whether comparisons are case-exact; None follows the schema attribute."""
    filtered: bool = True
    """Filters and sortBy on the attribute use this column (else the document)."""
    element_type: str | None = None
    """For a multi-valued attribute: the column holds the ``sub`` of its element of this type,
    which serves filters on that element (``emails[type eq "work"].value``)."""
    max_bytes: int | None = None
    """For a column in an index: the most bytes (UTF-8) its value may take; a longer one is
    refused with 400 invalidValue naming the attribute."""

    @property
    def label(self) -> str:
        """The attribute as a client names it in a path."""
        if self.element_type is not None:
            return f'{self.attribute}[type eq "{self.element_type}"].{self.sub}'
        return self.attribute if self.sub is None else f"{self.attribute}.{self.sub}"


def _text(name: str) -> Derive:
    def derive(doc: dict[str, Any]) -> str:
        return str(doc.get(name, ""))

    return derive


def _folded(name: str) -> Derive:
    def derive(doc: dict[str, Any]) -> str:
        return str(doc.get(name, "")).lower()

    return derive


def _value(name: str) -> Derive:
    def derive(doc: dict[str, Any]) -> Any:
        return doc.get(name)

    return derive


def _active(doc: dict[str, Any]) -> bool:
    active = doc.get("active")
    return active if isinstance(active, bool) else True


def _work_email(doc: dict[str, Any]) -> str | None:
    emails = doc.get("emails")
    if not isinstance(emails, list):
        return None
    for email in emails:
        if not isinstance(email, dict):
            continue
        kind = email.get("type")
        value = email.get("value")
        if isinstance(kind, str) and kind.lower() == "work" and isinstance(value, str):
            return value.lower()
    return None


def _named(resource: str, attribute: str, column: str) -> tuple[Indexed, Indexed]:
    """A name kept as sent (``column``) and folded to lower case (``column_ci``), unique per
    tenant case-insensitively; filters compare the folded one."""
    return (
        Indexed(resource, attribute, None, column, _text(attribute), filtered=False),
        Indexed(
            resource,
            attribute,
            None,
            f"{column}_ci",
            _folded(attribute),
            lowered=True,
            unique=f"{attribute} is already taken",
            max_bytes=MAX_INDEXED_BYTES,
        ),
    )


def _external_id(resource: str) -> Indexed:
    """The client's own id, unique per tenant as sent."""
    unique = "externalId is already taken"
    return Indexed(
        resource,
        "externalId",
        None,
        "external_id",
        _value("externalId"),
        unique=unique,
        max_bytes=MAX_INDEXED_BYTES,
    )


def _kept_by_engine(resource: str) -> tuple[Indexed, ...]:
    return (
        Indexed(resource, "id", None, "id", None),
        Indexed(resource, "meta", "created", "created_at", None),
        Indexed(resource, "meta", "lastModified", "last_modified", None),
    )


INDEXED: Final[tuple[Indexed, ...]] = (
    *_named("User", "userName", "user_name"),
    _external_id("User"),
    Indexed("User", "displayName", None, "display_name", _value("displayName")),
    # The first work address, for Entra's match on emails[type eq "work"].value.
    Indexed(
        "User",
        "emails",
        "value",
        "work_email_ci",
        _work_email,
        lowered=True,
        filtered=False,
        element_type="work",
        max_bytes=MAX_INDEXED_BYTES,
    ),
    Indexed("User", "active", None, "active", _active),
    *_kept_by_engine("User"),
    *_named("Group", "displayName", "display_name"),
    _external_id("Group"),
    *_kept_by_engine("Group"),
)

ALIASES: Final[dict[str, str]] = {"User": "u", "Group": "g"}
"""The alias of each resource's table in list, filter and sort SQL."""


def _derived(resource: str) -> tuple[tuple[str, Derive], ...]:
    return tuple(
        (entry.column, entry.derive)
        for entry in INDEXED
        if entry.resource == resource and entry.derive is not None
    )


_DERIVED: Final[dict[str, tuple[tuple[str, Derive], ...]]] = {
    resource: _derived(resource) for resource in ("User", "Group")
}


_BOUNDED: Final[dict[str, tuple[Indexed, ...]]] = {
    resource: tuple(
        entry
        for entry in INDEXED
        if entry.resource == resource and entry.derive is not None and entry.max_bytes is not None
    )
    for resource in ("User", "Group")
}


@cache
def kept_as_sent(resource: str, attribute: str) -> str:
    """The column that holds the top-level ``attribute`` as sent (not folded), e.g. the
    ``user_name`` of ``userName``."""
    for entry in INDEXED:
        if (
            entry.resource == resource
            and entry.attribute == attribute
            and entry.sub is None
            and not entry.lowered
        ):
            return entry.column
    raise KeyError(f"{resource}.{attribute} has no column")


def derived_columns(resource: str) -> tuple[str, ...]:
    """The columns every insert and update of ``resource`` binds from its document."""
    return tuple(column for column, _ in _DERIVED[resource])


def columns(resource: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The derived column values of a canonical stored document of ``resource``; 400
    invalidValue (naming the attribute) for a value longer than its index takes."""
    values = {column: derive(doc) for column, derive in _DERIVED[resource]}
    for entry in _BOUNDED[resource]:
        value = values[entry.column]
        limit = entry.max_bytes
        assert limit is not None
        # A character is at most 4 bytes in UTF-8: short values are never encoded.
        if isinstance(value, str) and len(value) * 4 > limit and len(value.encode()) > limit:
            raise InvalidValue(f"{entry.label} is longer than {limit} bytes (UTF-8)")
    return values


def typed_columns() -> dict[tuple[str, str, str], Indexed]:
    """The columns that hold one typed element's value, by resource, attribute and type (the
    last two in lower case)."""
    return {
        (entry.resource, entry.attribute.lower(), entry.element_type.lower()): entry
        for entry in INDEXED
        if entry.element_type is not None
    }


def filter_columns(resource: str) -> dict[tuple[str, str | None], Indexed]:
    """The columns that serve filters and sortBy on ``resource``, by (attribute, sub-attribute)
    in lower case."""
    return {
        (entry.attribute.lower(), None if entry.sub is None else entry.sub.lower()): entry
        for entry in INDEXED
        if entry.resource == resource and entry.filtered
    }


_UNIQUE: Final[dict[str, str]] = {
    entry.column: entry.unique for entry in INDEXED if entry.unique is not None
}


def uniqueness_detail(message: str) -> str:
    """The SCIM detail for a unique-index violation, from the database's message (which names
    the column on SQLite and the constraint on PostgreSQL)."""
    lowered = message.lower()
    for column, detail in _UNIQUE.items():
        if column in lowered:
            return detail
    return "a resource with the same unique attribute already exists"
