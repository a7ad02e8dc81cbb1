"""attributes / excludedAttributes applied to stored documents (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

import orjson

from storage.scim import projection
from storage.scim.schema import ResourceType


class Shape:
    """The requested projection; ``plain`` when the stored bytes can be sent as they are."""

    __slots__ = ("attributes", "excluded", "plain")

    def __init__(self, attributes: str | None, excluded: str | None) -> None:
        self.attributes = projection.parse_attribute_list(attributes)
        self.excluded = projection.parse_attribute_list(excluded)
        self.plain = not self.attributes and not self.excluded

    @classmethod
    def of(cls, params: dict[str, str]) -> Shape:
        attributes = excluded = None
        for key, value in params.items():
            lowered = key.lower()
            if lowered == "attributes":
                attributes = value
            elif lowered == "excludedattributes":
                excluded = value
        return cls(attributes, excluded)

    def wants_members(self) -> bool:
        return projection.wants_members(self.attributes, self.excluded)

    def apply_all(self, resource: ResourceType, texts: list[str]) -> list[str]:
        return texts if self.plain else [self.apply(resource, text) for text in texts]

    def apply(self, resource: ResourceType, text: str) -> str:
        if self.plain:
            return text
        doc = orjson.loads(text)
        return orjson.dumps(
            projection.project(resource, doc, self.attributes, self.excluded)
        ).decode()
