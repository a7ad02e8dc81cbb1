"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9; RFC 7643 §7 ``returned``).

- ``schemas`` and every attribute with ``returned: always`` (``id``) are always present;
- ``attributes`` returns only those plus the listed attributes; ``excludedAttributes`` removes the
  listed ones; both accept ``attr``, ``attr.sub``, ``urn:...:attr``, ``urn:...:attr.sub`` and a
  bare schema URN, case-insensitively; an unqualified name that is not a core attribute names the
  extension attribute of that name (as PATCH paths do); unknown names are ignored;
- ``returned: never`` attributes never appear, ``returned: request`` ones only when listed;
- the ``schemas`` list keeps only the extension URNs whose attributes remain.

A parsed pair of lists is compiled once into a plan and cached, so projecting every resource of a
list response costs one walk over each document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.scim.schema import COMMON, GROUP_TYPE, Attribute, ResourceType, Schema, split_urn

# A selection tree: canonical key -> None (the whole value) or a tree of its parts. Core
# attributes are top-level keys; an extension is its URN holding a tree of its attributes.
_Tree = dict[str, "_Tree | None"]

_Keep = Callable[[dict[str, Any], _Tree, frozenset[str]], dict[str, Any]]

_COMMON_BY_KEY: dict[str, Attribute] = {attribute.name.lower(): attribute for attribute in COMMON}
_PLAN_CACHE_SIZE = 512
_NOTHING: frozenset[str] = frozenset()


def parse_attribute_list(raw: str | None) -> tuple[str, ...]:
    """The names in a comma-separated ``attributes``/``excludedAttributes`` value, trimmed."""
    if not raw:
        return ()
    return tuple(name for name in (part.strip() for part in raw.split(",")) if name)


def project(
    resource: ResourceType,
    doc: dict[str, Any],
    attributes: Sequence[str],
    excluded: Sequence[str],
) -> dict[str, Any]:
    """``doc`` as returned for these ``attributes`` and ``excluded`` lists (a new dict)."""
    plan = _plan(resource, attributes, excluded)
    if plan.include is not None:
        out = _select(doc, plan.include, plan.always)
        if plan.never:
            out = _drop(out, plan.never, _NOTHING)
    else:
        out = _drop(doc, plan.hidden, _NOTHING) if plan.hidden else dict(doc)
    if plan.exclude:
        out = _drop(out, plan.exclude, plan.always)
    schemas = out.get("schemas")
    if isinstance(schemas, list) and any(
        isinstance(urn, str) and urn in plan.extensions and urn not in out for urn in schemas
    ):
        out["schemas"] = [urn for urn in schemas if urn not in plan.extensions or urn in out]
    return out


def wants(
    resource: ResourceType, attribute: str, attributes: Sequence[str], excluded: Sequence[str]
) -> bool:
    """Whether a resource projected with these lists shows the top-level core ``attribute``
    (so that an attribute read from other rows, such as ``members``, must be read)."""
    plan = _plan(resource, attributes, excluded)
    if plan.include is not None and attribute not in plan.include:
        return False
    return not (
        plan.exclude is not None and attribute in plan.exclude and plan.exclude[attribute] is None
    )


def names(resource: ResourceType, attribute: str, attributes: Sequence[str]) -> bool:
    """Whether ``attributes`` asks for the top-level core ``attribute`` (or a part of it)."""
    plan = _plan(resource, attributes, ())
    return plan.include is not None and attribute in plan.include


def wants_members(attributes: Sequence[str], excluded: Sequence[str]) -> bool:
    """Whether a group projected with these lists shows ``members`` (so they must be loaded)."""
    return wants(GROUP_TYPE, "members", attributes, excluded)


@dataclass(frozen=True, slots=True)
class _Plan:
    always: frozenset[str]
    include: _Tree | None
    exclude: _Tree | None
    hidden: _Tree
    never: _Tree
    extensions: frozenset[str]


_plans: dict[tuple[str, tuple[str, ...], tuple[str, ...]], tuple[ResourceType, _Plan]] = {}


def _plan(resource: ResourceType, attributes: Sequence[str], excluded: Sequence[str]) -> _Plan:
    key = (resource.name, tuple(attributes), tuple(excluded))
    cached = _plans.get(key)
    if cached is not None and cached[0] is resource:
        return cached[1]
    plan = _compile(resource, key[1], key[2])
    if len(_plans) >= _PLAN_CACHE_SIZE:
        _plans.clear()
    _plans[key] = (resource, plan)
    return plan


def _compile(
    resource: ResourceType, attributes: tuple[str, ...], excluded: tuple[str, ...]
) -> _Plan:
    core = resource.core
    always = {"schemas"}
    never: _Tree = {}
    hidden: _Tree = {}
    for schema in (core, *resource.extensions):
        owned = (*COMMON, *schema.attributes) if schema is core else schema.attributes
        for attribute in owned:
            if attribute.returned == "always" and schema is core:
                always.add(attribute.name)
            for keys in _returned(schema, core, attribute, "never"):
                _insert(never, keys)
                _insert(hidden, keys)
            for keys in _returned(schema, core, attribute, "request"):
                _insert(hidden, keys)
    include: _Tree | None = None
    if attributes:
        include = {}
        for name in attributes:
            for keys in _resolve(resource, name):
                _insert(include, keys)
    exclude: _Tree | None = None
    if excluded:
        exclude = {}
        for name in excluded:
            for keys in _resolve(resource, name):
                _insert(exclude, keys)
    return _Plan(
        always=frozenset(always),
        include=include,
        exclude=exclude or None,
        hidden=hidden,
        never=never,
        extensions=frozenset(extension.id for extension in resource.extensions),
    )


def _returned(
    schema: Schema, core: Schema, attribute: Attribute, returned: str
) -> list[tuple[str, ...]]:
    """Key paths of ``attribute`` and its sub-attributes whose ``returned`` is ``returned``."""
    prefix: tuple[str, ...] = (attribute.name,) if schema is core else (schema.id, attribute.name)
    if attribute.returned == returned:
        return [prefix]
    return [(*prefix, sub.name) for sub in attribute.sub_attributes if sub.returned == returned]


def _resolve(resource: ResourceType, name: str) -> list[tuple[str, ...]]:
    """The key paths ``name`` selects; empty when it names nothing known."""
    core = resource.core
    schema, rest = split_urn(resource, name)
    if not rest:
        if schema.id.lower() != name.lower():
            return []
        if schema is not core:
            return [(schema.id,)]
        return [(attribute.name,) for attribute in (*COMMON, *core.attributes)]
    head, dot, tail = rest.partition(".")
    attribute = schema.attribute(head)
    if attribute is None and schema is core:
        attribute = _COMMON_BY_KEY.get(head.lower())
        if attribute is None and rest == name:
            for extension in resource.extensions:
                attribute = extension.attribute(head)
                if attribute is not None:
                    schema = extension
                    break
    if attribute is None:
        return []
    keys: tuple[str, ...] = (attribute.name,) if schema is core else (schema.id, attribute.name)
    if dot:
        sub = attribute.sub(tail)
        if sub is None:
            return []
        keys = (*keys, sub.name)
    return [keys]


def _insert(tree: _Tree, keys: tuple[str, ...]) -> None:
    node = tree
    last = len(keys) - 1
    for index, key in enumerate(keys):
        if key in node and node[key] is None:
            return
        if index == last:
            node[key] = None
            return
        child = node.get(key)
        if child is None:
            child = {}
            node[key] = child
        node = child


def _select(doc: dict[str, Any], tree: _Tree, always: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in always:
            out[key] = value
        elif key in tree:
            part = tree[key]
            if part is None:
                out[key] = value
            else:
                projected = _part(value, part, _select)
                if projected is not None:
                    out[key] = projected
    return out


def _drop(doc: dict[str, Any], tree: _Tree, always: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in always or key not in tree:
            out[key] = value
            continue
        part = tree[key]
        if part is not None:
            projected = _part(value, part, _drop)
            if projected is not None:
                out[key] = projected
    return out


def _part(value: Any, tree: _Tree, keep: _Keep) -> Any:
    """``value`` (an object or a list of objects) reduced by ``keep``; None when nothing is left."""
    if isinstance(value, dict):
        return keep(value, tree, _NOTHING) or None
    if isinstance(value, list):
        items = [keep(item, tree, _NOTHING) if isinstance(item, dict) else item for item in value]
        items = [item for item in items if item != {}]
        return items or None
    return value
