"""What users and groups share: stored documents, versions and ETags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from storage.database import Row
from storage.errors import VersionMismatch


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_version(if_match: str | None, version: int) -> None:
    """Raise VersionMismatch when ``If-Match`` names no current version (``*`` matches all)."""
    if if_match is None:
        return
    current = etag(version)
    for candidate in if_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate == current or candidate == current[2:]:
            return
    raise VersionMismatch(current)


def assemble(
    attrs: dict[str, Any],
    *,
    resource_type: str,
    resource_id: str,
    created: str,
    modified: str,
    version: int,
    location: str,
) -> dict[str, Any]:
    """The stored SCIM document: schemas, id, the client's attributes, then meta."""
    doc: dict[str, Any] = {"schemas": attrs.get("schemas", []), "id": resource_id}
    for key, value in attrs.items():
        if key not in ("schemas", "id", "meta"):
            doc[key] = value
    doc["meta"] = {
        "resourceType": resource_type,
        "created": created,
        "lastModified": modified,
        "location": location,
        "version": etag(version),
    }
    return doc


def client_attributes(doc: dict[str, Any]) -> dict[str, Any]:
    """The stored document without the server-assigned parts."""
    return {key: value for key, value in doc.items() if key not in ("id", "meta")}


def dump(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc).decode()


def with_references(
    text: str, attribute: str, endpoint: str, rows: Sequence[Row], kind: str
) -> str:
    """The stored document ``text`` with ``attribute`` (before ``meta``) listing the resources
    ``rows`` (id and display name of each) of ``endpoint`` (``/Users``) as ``value``, ``$ref``,
    ``type`` and ``display``; ``text`` itself when there are none."""
    if not rows:
        return text
    doc = orjson.loads(text)
    location: str = doc["meta"]["location"]
    base = location[: location.rfind("/", 0, location.rfind("/"))]
    listed = []
    for resource_id, display in rows:
        item = {"value": resource_id, "$ref": f"{base}{endpoint}/{resource_id}", "type": kind}
        if display:
            item["display"] = display
        listed.append(item)
    meta = doc.pop("meta")
    doc[attribute] = listed
    doc["meta"] = meta
    return dump(doc)
