"""SCIM API request messages (SearchRequest, BulkRequest, PatchOp): their attributes by
case-insensitive name, once the body is one."""

from __future__ import annotations

from typing import Any

from storage.scim.errors import InvalidSyntax, InvalidValue


def by_name(body: dict[Any, Any]) -> dict[str, Any]:
    """A JSON object's members by lower-cased name (SCIM names are case-insensitive); of two
    spellings of one name the later wins."""
    return {key.lower(): value for key, value in body.items() if isinstance(key, str)}


def attributes(body: Any, urn: str, name: str) -> dict[str, Any]:
    """The message's attributes by lower-cased name (SCIM names are case-insensitive):
    InvalidSyntax when ``body`` is no JSON object, InvalidValue when its ``schemas`` does not
    name the message's ``urn``."""
    if not isinstance(body, dict):
        raise InvalidSyntax(f"a {name} must be a JSON object")
    lowered = by_name(body)
    schemas = lowered.get("schemas")
    if not isinstance(schemas, list) or urn not in schemas:
        raise InvalidValue(f"schemas must contain {urn}")
    return lowered
