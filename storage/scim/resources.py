"""Validation and normalization of SCIM resource documents (RFC 7643), as Entra ID sends them.

``validate`` turns the JSON body of a POST or PUT (or a document after PATCH) into the canonical
client-settable document that storage keeps:

- attribute names are matched case-insensitively and stored in the schema's spelling;
- extension attributes sit under their schema URN; ``schemas`` lists the core URN and the URNs of
  the extensions present;
- null, ``""``, ``{}`` and ``[]`` mean "absent" and are dropped;
- booleans may arrive as ``"True"``/``"false"`` (any case) and are stored as real booleans;
- readOnly attributes (``id``, ``meta``, ``groups``, ``manager.displayName``) are ignored, the
  writeOnly ``password`` is dropped, unknown attribute names are dropped;
- the enterprise ``manager`` is accepted as an id string, an object or a one-item list and always
  stored as ``{"value": id}`` (plus ``$ref`` when given);
- every other value is kept exactly as sent.

Error types: a body that is not a JSON object, or a ``schemas`` list that is missing, malformed,
lacks the core URN or names an unknown schema, raises ``InvalidSyntax`` (the message does not
conform to the request schema). A value of the wrong type or shape, a missing required attribute
and an exceeded size bound raise ``InvalidValue``, naming the attribute but never echoing its value.

The columns storage derives from a canonical document are named in ``storage.indexed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from storage.scim.errors import InvalidSyntax, InvalidValue
from storage.scim.messages import by_name
from storage.scim.schema import (
    COMMON,
    ENTERPRISE_SCHEMA,
    GROUP_TYPE,
    Attribute,
    ResourceType,
    Schema,
)

MAX_STRING_LENGTH = 4096
"""Longest string value accepted anywhere in a resource."""

MAX_VALUES = 100
"""Most items a multi-valued attribute may hold (group members are not bounded by this)."""

_manager = ENTERPRISE_SCHEMA.attribute("manager")
assert _manager is not None
MANAGER: Attribute = _manager
"""The enterprise ``manager`` attribute, which has its own input shapes."""

_COMMON_BY_KEY: dict[str, Attribute] = {attribute.name.lower(): attribute for attribute in COMMON}
_IGNORED = ("readOnly", "writeOnly")


def validate(resource: ResourceType, body: object) -> dict[str, Any]:
    """The canonical client-settable document for ``body`` (see the module docstring).

    For groups, ``members`` is validated but not part of the result: use ``validate_group`` to get
    the member ids as well.
    """
    doc, _ = _validate(resource, body)
    return doc


def validate_group(body: object) -> tuple[dict[str, Any], list[str] | None]:
    """The canonical group document and its member ids.

    The ids are in the order sent, without duplicates; None when the body has no ``members`` (or
    ``members`` is null), an empty list when it sends ``members: []``.
    """
    return _validate(GROUP_TYPE, body)


def normalize(attribute: Attribute, value: object, label: str) -> Any:
    """The canonical form of a client value for ``attribute``, or None when it means "absent".

    ``label`` names the attribute in error details.
    """
    if value is None:
        return None
    if attribute is MANAGER:
        return _normalize_manager(value, label)
    if not attribute.multi_valued:
        return _normalize_single(attribute, value, label)
    if not isinstance(value, list):
        raise InvalidValue(f"{label} must be a list")
    if len(value) > MAX_VALUES:
        raise InvalidValue(f"{label} holds more than {MAX_VALUES} values")
    items: list[Any] = []
    primaries = 0
    for index, raw in enumerate(value):
        item = _normalize_single(attribute, raw, f"{label}[{index}]")
        if item is None:
            continue
        if isinstance(item, dict) and item.get("primary") is True:
            primaries += 1
        items.append(item)
    if primaries > 1:
        raise InvalidValue(f"{label}: at most one value may be primary")
    return items or None


def member_ids(value: object, label: str = "members") -> list[str]:
    """The member ids in a ``members`` value: a list of ``{"value": id}`` objects (``$ref``,
    ``display`` and ``type`` are accepted and ignored) or a single such object.

    Order is kept and duplicates are dropped; null gives an empty list.
    """
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue(f"{label} must be a list of objects with a value")
    ids: dict[str, None] = {}
    for index, item in enumerate(value):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise InvalidValue(f"{label}[{index}] must be an object with a value")
        member: object = None
        for key, raw in item.items():
            if isinstance(key, str) and key.lower() == "value":
                member = raw
        if not isinstance(member, str) or not member.strip():
            raise InvalidValue(f"{label}[{index}].value must be a non-empty string")
        if len(member) > MAX_STRING_LENGTH:
            raise InvalidValue(f"{label}[{index}].value is longer than {MAX_STRING_LENGTH}")
        ids[member] = None
    return list(ids)


def _validate(resource: ResourceType, body: object) -> tuple[dict[str, Any], list[str] | None]:
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    core = resource.core
    _check_schemas(resource, body)
    attributes: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    members: list[str] | None = None
    is_group = resource.name == "Group"
    for key, raw in body.items():
        if raw is None or not isinstance(key, str):
            continue
        lowered = key.lower()
        if lowered == "schemas":
            continue
        attribute = core.attribute(key) or _COMMON_BY_KEY.get(lowered)
        schema = core
        if attribute is None:
            if ":" not in key:
                continue
            extension = resource.schema(key)
            if extension is not None and extension is not core:
                _validate_extension(extension, raw, extensions.setdefault(extension.id, {}))
                continue
            found = _qualified(resource, key)
            if found is None:
                continue
            schema, attribute = found
        if attribute.mutability in _IGNORED:
            continue
        if is_group and attribute.name == "members":
            members = member_ids(raw)
            continue
        target = attributes if schema is core else extensions.setdefault(schema.id, {})
        _put(target, attribute, raw, _label(schema, core, attribute))
    for attribute in core.attributes:
        if attribute.required and not _present(attributes.get(attribute.name)):
            raise InvalidValue(f"{attribute.name} is required")
    doc: dict[str, Any] = {"schemas": [core.id]}
    doc.update(attributes)
    for extension in resource.extensions:
        values = extensions.get(extension.id)
        if values:
            doc["schemas"].append(extension.id)
            doc[extension.id] = values
    return doc, members


def _check_schemas(resource: ResourceType, body: dict[Any, Any]) -> None:
    schemas: object = None
    for key, raw in body.items():
        if isinstance(key, str) and key.lower() == "schemas":
            schemas = raw
    if schemas is None:
        raise InvalidSyntax("schemas is required")
    if not isinstance(schemas, list) or not all(isinstance(urn, str) for urn in schemas):
        raise InvalidSyntax("schemas must be a list of schema URNs")
    core = resource.core.id.lower()
    if not any(urn.lower() == core for urn in schemas):
        raise InvalidSyntax(f"schemas must contain {resource.core.id}")
    for urn in schemas:
        if urn.lower() not in resource.accepted_schemas:
            raise InvalidSyntax(f"unknown schema {_quote(urn)} for {resource.name}")


def _validate_extension(schema: Schema, raw: object, target: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise InvalidValue(f"{schema.id} must be an object")
    _put_members(target, raw, schema.attribute, f"{schema.id}:")


def _qualified(resource: ResourceType, key: str) -> tuple[Schema, Attribute] | None:
    """The attribute named by a URN-qualified key such as ``urn:...:User:department``."""
    lowered = key.lower()
    for schema in (resource.core, *resource.extensions):
        prefix = schema.id.lower()
        if lowered.startswith(prefix) and len(key) > len(prefix) + 1 and key[len(prefix)] == ":":
            name = key[len(prefix) + 1 :]
            attribute = schema.attribute(name)
            if attribute is None and schema is resource.core:
                attribute = _COMMON_BY_KEY.get(name.lower())
            return (schema, attribute) if attribute is not None else None
    return None


def _put_members(
    target: dict[str, Any],
    raw: dict[Any, Any],
    attribute_of: Callable[[str], Attribute | None],
    prefix: str,
) -> None:
    """Each member of ``raw`` that names a writable attribute (``attribute_of`` its key),
    normalised into ``target``; errors name it ``prefix`` + its name."""
    for key, value in raw.items():
        if value is None or not isinstance(key, str):
            continue
        attribute = attribute_of(key)
        if attribute is None or attribute.mutability in _IGNORED:
            continue
        _put(target, attribute, value, f"{prefix}{attribute.name}")


def _put(target: dict[str, Any], attribute: Attribute, raw: object, label: str) -> None:
    value = normalize(attribute, raw, label)
    if value is None:
        return
    if attribute.name in target:
        raise InvalidValue(f"{label} is given more than once")
    target[attribute.name] = value


def _label(schema: Schema, core: Schema, attribute: Attribute) -> str:
    return attribute.name if schema is core else f"{schema.id}:{attribute.name}"


def _present(value: object) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _normalize_single(attribute: Attribute, value: object, label: str) -> Any:
    if value is None:
        return None
    kind = attribute.type
    if kind == "complex":
        if not isinstance(value, dict):
            raise InvalidValue(f"{label} must be an object")
        out: dict[str, Any] = {}
        _put_members(out, value, attribute.sub, f"{label}.")
        return out or None
    if kind == "boolean":
        return _boolean(value, label)
    if kind in ("integer", "decimal"):
        return _number(kind, value, label)
    if not isinstance(value, str):
        raise InvalidValue(f"{label} must be a string")
    if not value:
        return None
    if len(value) > MAX_STRING_LENGTH:
        raise InvalidValue(f"{label} is longer than {MAX_STRING_LENGTH} characters")
    if kind == "dateTime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValue(f"{label} must be an ISO 8601 date and time") from None
    return value


def _boolean(value: object, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise InvalidValue(f"{label} must be a boolean")


def _number(kind: str, value: object, label: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(f"{label} must be a number")
    if kind == "integer" and not isinstance(value, int):
        raise InvalidValue(f"{label} must be an integer")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{label} must be a finite number")
    return value


def _normalize_manager(value: object, label: str) -> dict[str, str] | None:
    """``"id"``, ``{"value": id, "$ref": uri}`` or ``[{...}]`` -> ``{"value": id[, "$ref"]}``.

    An empty or blank id, ``{"value": ""}``, an empty list or null clears the manager.
    """
    if isinstance(value, list):
        if len(value) > 1:
            raise InvalidValue(f"{label} takes a single value")
        if not value:
            return None
        value = value[0]
    if value is None:
        return None
    if isinstance(value, str):
        return _manager_value(value, None, label)
    if not isinstance(value, dict):
        raise InvalidValue(f"{label} must be an id or an object with a value")
    fields = by_name({key: raw for key, raw in value.items() if raw is not None})
    manager_id, ref = fields.get("value"), fields.get("$ref")
    if manager_id is None:
        return None
    if not isinstance(manager_id, str):
        raise InvalidValue(f"{label}.value must be a string")
    if ref is not None and not isinstance(ref, str):
        raise InvalidValue(f"{label}.$ref must be a string")
    return _manager_value(manager_id, ref, label)


def _manager_value(manager_id: str, ref: str | None, label: str) -> dict[str, str] | None:
    if not manager_id.strip():
        return None
    if len(manager_id) > MAX_STRING_LENGTH or (ref is not None and len(ref) > MAX_STRING_LENGTH):
        raise InvalidValue(f"{label} is longer than {MAX_STRING_LENGTH} characters")
    manager = {"value": manager_id}
    if ref:
        manager["$ref"] = ref
    return manager


def _quote(text: str) -> str:
    """``text`` quoted for an error detail, cut short so a detail stays readable."""
    return repr(text if len(text) <= 100 else text[:100] + "...")
