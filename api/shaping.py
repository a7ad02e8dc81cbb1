"""attributes / excludedAttributes applied to stored documents (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

import orjson

from storage.paging import Page
from storage.resources import Computed
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

    def shows(self, resource: ResourceType, computed: Computed | None, *, listing: bool) -> bool:
        """Whether the response shows the resource's computed attribute (which is then read):
        in a list only when ``attributes`` names it, unless it is ``listed``."""
        if computed is None:
            return False
        if listing and not computed.listed:
            return projection.names(resource, computed.attribute, self.attributes)
        return projection.wants(resource, computed.attribute, self.attributes, self.excluded)

    def apply_page(self, page: Page, resources: tuple[ResourceType, ...]) -> list[str]:
        """A page's documents projected, each as its resource type (by its rank) says."""
        if self.plain:
            return page.docs
        return [
            self.apply(resources[rank], text)
            for rank, text in zip(page.ranks, page.docs, strict=True)
        ]

    def apply(self, resource: ResourceType, text: str) -> str:
        if self.plain:
            return text
        doc = orjson.loads(text)
        return orjson.dumps(
            projection.project(resource, doc, self.attributes, self.excluded)
        ).decode()
