"""The PATCH engine (RFC 7644 §3.5.2), tolerant of both request styles Entra ID sends.

``apply`` runs the operations of one PATCH request, in order, on a copy of a resource's canonical
document and returns the new document (re-validated by ``resources.validate``) and, for groups, the
ordered membership changes: a group's member list is never loaded, so every ``members`` operation
becomes a ``MemberChange`` for storage to apply to the membership rows.

Supported, besides RFC 7644 proper:

- ``op`` values and attribute names in any case; string booleans (``"True"``);
- paths ``attr``, ``attr.sub``, ``urn:...:attr``, ``urn:...:attr.sub``, ``attr[filter]``,
  ``attr[filter].sub``, and a bare schema URN (``urn:...:enterprise:2.0:User``); an unqualified
  name that is not a core attribute resolves to the extension attribute of that name (Entra sends
  ``manager`` unqualified);
- path-less ``add``/``replace`` whose value holds plain, dotted (``name.givenName``) and
  URN-qualified keys, or a URN key holding an object of extension attributes;
- value filters follow the filter grammar of ``storage.scim.filters`` (its typing rules,
  semantics and leniencies, such as ``not`` without parentheses) over the sub-attributes of the
  filtered attribute, and are evaluated in memory;
- ``add`` and ``replace`` on a filtered path that matches nothing create the element when the
  filter is ``sub eq value`` (or an ``and`` of such), e.g. ``emails[type eq "work"].value``;
  ``replace`` on a filtered path merges into the matching items only, siblings stay;
- a ``""`` or null value on ``add``/``replace`` clears the target;
- ``remove`` of a multi-valued attribute with a value list removes only the listed values (legacy
  Entra member removal), never everything;
- the enterprise manager as an id string, ``{"value": id}`` or ``[{"value": id, "$ref": uri}]``.

Errors: a malformed request envelope (body, ``schemas``, ``Operations``, ``op``) raises
``InvalidSyntax``; more than ``MAX_OPERATIONS`` operations, a value of the wrong type and a missing
value raise ``InvalidValue``; an unknown or malformed path raises ``InvalidPath``; a malformed value
filter ``InvalidFilter``; a readOnly target (``id``, ``meta``, ``groups``) ``Mutability``; a
``remove`` without path, or a filtered ``replace`` that matches nothing and cannot create,
``NoTarget``. Any error leaves the caller's document untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from storage.scim.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from storage.scim.filters import And, Comparison, Or, ValueFilter, coerce, parse
from storage.scim.messages import by_name
from storage.scim.resources import MANAGER, MAX_STRING_LENGTH, member_ids, normalize, validate
from storage.scim.schema import COMMON, PATCH_OP, Attribute, ResourceType, Schema, split_urn

MAX_OPERATIONS = 1000
"""Most operations one PATCH request may carry."""

_PATCH_OP = PATCH_OP.lower()
_OPS = ("add", "remove", "replace")
_COMMON_BY_KEY: dict[str, Attribute] = {attribute.name.lower(): attribute for attribute in COMMON}
_STRINGS = ("string", "reference", "binary", "dateTime")
_PATH_CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class MemberChange:
    """One change to a group's membership rows, in request order.

    ``replace`` sets the membership to exactly ``ids`` (``()`` removes every member).
    """

    op: Literal["add", "remove", "replace"]
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatchResult:
    """The patched document and, for groups, the membership changes to apply in order."""

    doc: dict[str, Any]
    members: tuple[MemberChange, ...]


def apply(
    resource: ResourceType, doc: dict[str, Any], body: object, *, owned: bool = False
) -> PatchResult:
    """Apply the PATCH request ``body`` to ``doc``, which is not modified unless ``owned`` (the
    caller's own copy, e.g. just parsed: then it is changed in place rather than copied)."""
    operations = _operations(body)
    patcher = _Patcher(resource, doc, owned=owned)
    for index, operation in enumerate(operations):
        try:
            patcher.run(operation)
        except ScimError as error:
            raise type(error)(f"Operations[{index}]: {error.detail}") from None
    return patcher.result()


# Value filters ------------------------------------------------------------------------------


def _seed(value_filter: ValueFilter) -> dict[str, Any] | None:
    """The element a creating filter describes: ``a eq x`` or ``a eq x and b eq y``; else None."""
    node = value_filter.node
    compares = node.operands if isinstance(node, And) else (node,)
    seed: dict[str, Any] = {}
    for compare in compares:
        if not isinstance(compare, Comparison) or compare.op != "eq":
            return None
        value = compare.value.value
        if value is None:
            return None
        sub = value_filter.sub(compare.path)
        if sub.name in seed:
            return None
        seed[sub.name] = coerce(sub, value)
    return seed


def _member_filter_ids(value_filter: ValueFilter) -> tuple[str, ...] | None:
    """The ids of ``value eq "a"`` or ``value eq "a" or value eq "b"``; else None."""
    node = value_filter.node
    compares = node.operands if isinstance(node, Or) else (node,)
    ids: dict[str, None] = {}
    for compare in compares:
        if (
            not isinstance(compare, Comparison)
            or compare.op != "eq"
            or value_filter.sub(compare.path).name != "value"
            or not isinstance(compare.value.value, str)
        ):
            return None
        ids[compare.value.value] = None
    return tuple(ids)


# Paths --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Path:
    """A resolved PATCH path; ``attribute`` is None when the path is a schema URN alone."""

    text: str
    schema: Schema
    attribute: Attribute | None
    filter: ValueFilter | None = None
    sub: Attribute | None = None

    @property
    def label(self) -> str:
        return _quote(self.text)


_paths: dict[tuple[str, str], tuple[ResourceType, _Path]] = {}


def _path(resource: ResourceType, text: str) -> _Path:
    key = (resource.name, text)
    cached = _paths.get(key)
    if cached is not None and cached[0] is resource:
        return cached[1]
    path = _parse_path(resource, text)
    if len(_paths) >= _PATH_CACHE_SIZE:
        _paths.clear()
    _paths[key] = (resource, path)
    return path


def _parse_path(resource: ResourceType, text: str) -> _Path:
    path = text.strip()
    if not path:
        raise InvalidPath("path is empty")
    if len(path) > MAX_STRING_LENGTH:
        raise InvalidPath("path is too long")
    filter_text: str | None = None
    sub_name: str | None = None
    bracket = path.find("[")
    if bracket >= 0:
        close = _closing_bracket(path, bracket)
        filter_text = path[bracket + 1 : close]
        rest = path[close + 1 :]
        if rest:
            if rest[0] != "." or not _is_name(rest[1:]):
                raise InvalidPath(f"{_quote(path)} has text after its filter")
            sub_name = rest[1:]
        attribute_text = path[:bracket]
    else:
        attribute_text = path
    schema, name = split_urn(resource, attribute_text)
    explicit = name != attribute_text
    if not name:
        if filter_text is not None or sub_name is not None:
            raise InvalidPath(f"{_quote(path)} filters a schema")
        return _Path(path, schema, None)
    head, dot, tail = name.partition(".")
    if dot:
        if filter_text is not None or not _is_name(tail):
            raise InvalidPath(f"{_quote(path)} is not a valid attribute path")
        sub_name = tail
    schema, attribute = _attribute(resource, schema, head, explicit)
    if attribute is None:
        raise InvalidPath(f"unknown attribute {_quote(path)}")
    sub: Attribute | None = None
    if sub_name is not None:
        sub = attribute.sub(sub_name)
        if sub is None:
            raise InvalidPath(f"unknown attribute {_quote(path)}")
    value_filter: ValueFilter | None = None
    if filter_text is not None:
        if not (attribute.multi_valued and attribute.type == "complex"):
            raise InvalidPath(f"{_quote(path)} filters an attribute that is not multi-valued")
        node = parse(filter_text, max_length=MAX_STRING_LENGTH)
        value_filter = ValueFilter(attribute, node)
    return _Path(path, schema, attribute, value_filter, sub)


def _attribute(
    resource: ResourceType, schema: Schema, name: str, explicit: bool
) -> tuple[Schema, Attribute | None]:
    attribute = schema.attribute(name)
    if attribute is None and schema is resource.core:
        attribute = _COMMON_BY_KEY.get(name.lower())
        if attribute is None and not explicit:
            for extension in resource.extensions:
                found = extension.attribute(name)
                if found is not None:
                    return extension, found
    return schema, attribute


def _is_name(text: str) -> bool:
    return bool(text) and not any(char in text for char in '.[]"() \t\r\n')


def _closing_bracket(path: str, start: int) -> int:
    in_string = False
    escaped = False
    for index in range(start + 1, len(path)):
        char = path[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "]":
            return index
        elif char == "[":
            raise InvalidPath(f"{_quote(path)} nests filters")
    raise InvalidPath(f"{_quote(path)} has an unclosed filter")


# Operations ---------------------------------------------------------------------------------


def _operations(body: object) -> list[Any]:
    if not isinstance(body, dict):
        raise InvalidSyntax("the PATCH body must be a JSON object")
    fields = by_name(body)
    schemas, operations = fields.get("schemas"), fields.get("operations")
    if not isinstance(schemas, list) or not any(
        isinstance(urn, str) and urn.lower() == _PATCH_OP for urn in schemas
    ):
        raise InvalidSyntax(f"schemas must contain {PATCH_OP}")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("Operations must be a non-empty list")
    if len(operations) > MAX_OPERATIONS:
        raise InvalidValue(f"a PATCH request may carry at most {MAX_OPERATIONS} operations")
    return operations


def _clears(value: object) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _same(value: Any) -> Any:
    return value


def _copy(value: Any) -> Any:
    """A copy of a JSON value (faster than ``copy.deepcopy`` on plain JSON)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _primaries(items: list[Any]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict) and item.get("primary") is True]


def _settle_primary(items: list[Any], before: list[dict[str, Any]]) -> None:
    """RFC 7644 §3.5.2: a value newly made primary makes the previous primary value non-primary."""
    primaries = _primaries(items)
    if len(primaries) < 2:
        return
    if all(any(item is old for old in before) for item in primaries):
        return
    for old in before:
        if any(old is item for item in primaries):
            old["primary"] = False


def _without_empty(items: list[Any]) -> list[Any]:
    return [item for item in items if item != {}]


class _Patcher:
    def __init__(self, resource: ResourceType, doc: dict[str, Any], *, owned: bool) -> None:
        self.resource = resource
        self.core = resource.core
        self.is_group = resource.name == "Group"
        self.doc = doc
        self.kept = {"schemas"} | {
            attribute.name
            for attribute in (*COMMON, *resource.core.attributes)
            if attribute.mutability == "readOnly"
        }
        if self.is_group:
            self.kept.add("members")
        copy = _same if owned else _copy
        self.copy = copy
        self.work: dict[str, Any] = {
            key: copy(value) for key, value in doc.items() if key not in self.kept
        }
        self.changes: list[MemberChange] = []

    def run(self, operation: object) -> None:
        if not isinstance(operation, dict):
            raise InvalidSyntax("an operation must be a JSON object")
        fields = by_name(operation)
        op, path, value = fields.get("op"), fields.get("path"), fields.get("value")
        has_value = "value" in fields
        if not isinstance(op, str) or op.lower() not in _OPS:
            raise InvalidSyntax("op must be add, remove or replace")
        op = op.lower()
        if path is not None and not isinstance(path, str):
            raise InvalidPath("path must be a string")
        if op != "remove" and not has_value:
            raise InvalidValue(f"{op} needs a value")
        if path is None:
            if op == "remove":
                raise NoTarget("remove needs a path")
            self._pathless(op, self.core, value, nested=False)
            return
        self._at(op, _path(self.resource, path), value, nested=False)

    def result(self) -> PatchResult:
        body: dict[str, Any] = {"schemas": [self.core.id]}
        for extension in self.resource.extensions:
            values = self.work.get(extension.id)
            if isinstance(values, dict) and values:
                body["schemas"].append(extension.id)
        body.update(self.work)
        new = validate(self.resource, body)
        doc: dict[str, Any] = {"schemas": new.pop("schemas")}
        if "id" in self.doc:
            doc["id"] = self.doc["id"]
        doc.update(new)
        for key, value in self.doc.items():
            if key in self.kept and key not in ("schemas", "id", "members"):
                doc[key] = self.copy(value)
        return PatchResult(doc, tuple(self.changes))

    # Dispatch ---------------------------------------------------------------------------

    def _pathless(self, op: str, schema: Schema, value: object, nested: bool) -> None:
        if _clears(value) and schema is not self.core:
            self.work.pop(schema.id, None)
            return
        if not isinstance(value, dict):
            raise InvalidValue(f"{op} without a path needs an object value")
        for key, raw in value.items():
            if not isinstance(key, str):
                continue
            if schema is self.core:
                lowered = key.lower()
                if lowered in ("schemas", "meta"):
                    continue
                if lowered == "id" and raw is not None and raw == self.doc.get("id"):
                    continue
                if lowered in self.resource.accepted_schemas and self.resource.schema(key) is None:
                    continue
                path = _path(self.resource, key)
            else:
                if key.lower() in ("schemas", "meta"):
                    continue
                path = _path(self.resource, f"{schema.id}:{key}")
            self._at(op, path, raw, nested=nested)

    def _at(self, op: str, path: _Path, value: object, nested: bool) -> None:
        attribute = path.attribute
        if attribute is None:
            if nested:
                raise InvalidPath(f"{path.label} is nested in a schema")
            if op != "remove":
                self._pathless(op, path.schema, value, nested=True)
            elif path.schema is self.core:
                raise InvalidPath("the core schema cannot be removed")
            else:
                self.work.pop(path.schema.id, None)
            return
        if attribute.mutability == "readOnly" or (
            path.sub is not None and path.sub.mutability == "readOnly"
        ):
            raise Mutability(f"{path.label} is readOnly")
        if self.is_group and attribute.name == "members" and path.schema is self.core:
            self._members(op, path, value)
        elif path.filter is not None:
            self._filtered(op, path, attribute, path.filter, value)
        elif path.sub is not None:
            self._sub(op, path, attribute, path.sub, value)
        else:
            self._whole(op, path, attribute, value)

    def _container(self, op: str, path: _Path) -> dict[str, Any] | None:
        """The object that holds what ``path`` names: the document, or its extension's object,
        made when missing unless ``op`` removes (None: nothing to remove from)."""
        schema = path.schema
        if schema is self.core:
            return self.work
        values = self.work.get(schema.id)
        if not isinstance(values, dict):
            if op == "remove":
                return None
            values = {}
            self.work[schema.id] = values
        return values

    # Targets ----------------------------------------------------------------------------

    def _whole(self, op: str, path: _Path, attribute: Attribute, value: object) -> None:
        name = attribute.name
        container = self._container(op, path)
        if container is None:
            return
        if attribute.mutability == "immutable" and container.get(name) is not None:
            raise Mutability(f"{path.label} is immutable")
        if op == "remove":
            if value is None or not attribute.multi_valued:
                container.pop(name, None)
            else:
                self._remove_values(path, attribute, container, value)
            return
        if _clears(value):
            container.pop(name, None)
            return
        if attribute.multi_valued:
            values = (
                normalize(attribute, value if isinstance(value, list) else [value], path.label)
                or []
            )
            current = container.get(name)
            if op == "replace" or not isinstance(current, list):
                current = []
            before = _primaries(current)
            for item in values:
                if item not in current:
                    current.append(item)
            _settle_primary(current, before)
            self._store(container, name, current)
        elif attribute.type == "complex" and attribute is not MANAGER:
            merged = self._merged(path, attribute, container.get(name), value)
            self._store(container, name, merged)
        else:
            self._store(container, name, normalize(attribute, value, path.label))

    def _sub(
        self, op: str, path: _Path, attribute: Attribute, sub: Attribute, value: object
    ) -> None:
        name = attribute.name
        container = self._container(op, path)
        if container is None:
            return
        current = container.get(name)
        clear = op == "remove" or _clears(value)
        new = None if clear else normalize(sub, value, path.label)
        if attribute.multi_valued:
            items = current if isinstance(current, list) else []
            if new is None:
                for item in items:
                    if isinstance(item, dict):
                        item.pop(sub.name, None)
                self._store(container, name, _without_empty(items))
                return
            before = _primaries(items)
            if items:
                for item in items:
                    if isinstance(item, dict):
                        item[sub.name] = new
            else:
                items = [{sub.name: new}]
            _settle_primary(items, before)
            self._store(container, name, items)
            return
        target = current if isinstance(current, dict) else {}
        if new is None:
            target.pop(sub.name, None)
        else:
            if attribute is MANAGER and sub.name == "value" and target.get("value") != new:
                target.pop("$ref", None)
            target[sub.name] = new
        self._store(container, name, target)

    def _filtered(
        self,
        op: str,
        path: _Path,
        attribute: Attribute,
        value_filter: ValueFilter,
        value: object,
    ) -> None:
        name = attribute.name
        sub = path.sub
        container = self._container(op, path)
        if container is None:
            return
        current = container.get(name)
        items: list[Any] = current if isinstance(current, list) else []
        matches = value_filter.matches
        matched = [item for item in items if isinstance(item, dict) and matches(item)]
        before = _primaries(items)
        if op == "remove" or _clears(value):
            if sub is None:
                items = [item for item in items if not any(item is m for m in matched)]
            else:
                for item in matched:
                    item.pop(sub.name, None)
                items = _without_empty(items)
            self._store(container, name, items)
            return
        if not matched:
            seed = _seed(value_filter)
            if seed is None:
                raise NoTarget(f"no value matches {path.label}")
            items.append(seed)
            matched = [seed]
        if sub is not None:
            new = normalize(sub, value, path.label)
            for item in matched:
                item[sub.name] = new
        else:
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            for item in matched:
                merged = self._merged(path, attribute, item, value)
                item.clear()
                item.update(merged)
        _settle_primary(items, before)
        self._store(container, name, items)

    def _members(self, op: str, path: _Path, value: object) -> None:
        if path.sub is not None:
            raise InvalidPath(f"{path.label}: patch members as a whole, not a sub-attribute")
        if path.filter is not None:
            if op != "remove":
                raise InvalidPath(f"{path.label}: only remove takes a filtered members path")
            ids = _member_filter_ids(path.filter)
            if ids is None:
                raise InvalidFilter("members can only be filtered by value eq (or an or of them)")
            self.changes.append(MemberChange("remove", ids))
            return
        if op == "remove":
            if value is None:
                self.changes.append(MemberChange("replace", ()))
                return
            removed = member_ids(value)
            if removed:
                self.changes.append(MemberChange("remove", tuple(removed)))
            return
        if op == "replace":
            replaced = () if _clears(value) else tuple(member_ids(value))
            self.changes.append(MemberChange("replace", replaced))
            return
        if _clears(value):
            raise InvalidValue("add to members needs a list of members")
        added = member_ids(value)
        if added:
            self.changes.append(MemberChange("add", tuple(added)))

    # Helpers ----------------------------------------------------------------------------

    def _remove_values(
        self, path: _Path, attribute: Attribute, container: dict[str, Any], value: object
    ) -> None:
        """Remove from a multi-valued attribute only the values listed in ``value``."""
        current = container.get(attribute.name)
        if not isinstance(current, list):
            return
        targets = (
            normalize(attribute, value if isinstance(value, list) else [value], path.label) or []
        )
        kept = [
            item
            for item in current
            if not any(_includes(attribute, item, target) for target in targets)
        ]
        self._store(container, attribute.name, kept)

    def _merged(
        self, path: _Path, attribute: Attribute, existing: object, value: object
    ) -> dict[str, Any]:
        """``existing`` with the sub-attributes in ``value`` set; null or ``""`` clears one."""
        if not isinstance(value, dict):
            raise InvalidValue(f"{path.label} needs an object value")
        merged: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        for key, raw in value.items():
            sub = attribute.sub(key) if isinstance(key, str) else None
            if sub is None or sub.mutability in ("readOnly", "writeOnly"):
                continue
            new = None if _clears(raw) else normalize(sub, raw, f"{path.label}.{sub.name}")
            if new is None:
                merged.pop(sub.name, None)
            else:
                merged[sub.name] = new
        return merged

    @staticmethod
    def _store(container: dict[str, Any], name: str, value: Any) -> None:
        if value is None or value == [] or value == {}:
            container.pop(name, None)
        else:
            container[name] = value


def _includes(attribute: Attribute, item: object, target: object) -> bool:
    """Whether ``item`` has every sub-attribute value of ``target`` (case rules of the schema)."""
    if not isinstance(target, dict) or not isinstance(item, dict):
        return _equal(attribute, item, target)
    for key, expected in target.items():
        sub = attribute.sub(key)
        if sub is None or not _equal(sub, item.get(key), expected):
            return False
    return True


def _equal(attribute: Attribute, actual: object, expected: object) -> bool:
    if (
        isinstance(actual, str)
        and isinstance(expected, str)
        and not attribute.case_exact
        and attribute.type in _STRINGS
    ):
        return actual.lower() == expected.lower()
    return actual == expected


_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"?')


def _quote(text: str) -> str:
    """``text`` quoted for an error detail, cut short so a detail stays readable. String
    literals inside a path's filter are masked: they may hold a card number."""
    masked = _LITERAL.sub('"…"', text)
    return repr(masked if len(masked) <= 100 else masked[:100] + "...")
