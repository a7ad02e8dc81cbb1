"""The SCIM schemas printsync serves: attribute definitions and their discovery documents.

Everything else that needs to know an attribute's type, case sensitivity, plurality or mutability
(filters, PATCH, projection, validation, ``/Schemas``) reads it from here, so the server describes
exactly what it accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PRINTSYNC_USER = "urn:ietf:params:scim:schemas:extension:printsync:2.0:User"
MICROSOFT_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

AttributeType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]
ResourceName = Literal["User", "Group"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute (or sub-attribute) of a SCIM schema, as RFC 7643 §7 describes it."""

    name: str
    type: AttributeType = "string"
    description: str = ""
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    _by_key: dict[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update(_by_key(self.sub_attributes))

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), if any."""
        return self._by_key.get(name.lower())

    def document(self) -> dict[str, Any]:
        """The attribute as it appears in ``/Schemas``: camelCase keys, no nulls."""
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description or self.name,
            "required": self.required,
            "mutability": self.mutability,
            "returned": self.returned,
        }
        if self.type in ("string", "reference", "binary"):
            doc["caseExact"] = self.case_exact
        if self.type != "complex":
            doc["uniqueness"] = self.uniqueness
        if self.canonical_values:
            doc["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            doc["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            doc["subAttributes"] = [sub.document() for sub in self.sub_attributes]
        return doc


@dataclass(frozen=True, slots=True)
class Schema:
    """A SCIM schema: its URN, name and top-level attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_key: dict[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update(_by_key(self.attributes))

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), if any."""
        return self._by_key.get(name.lower())

    def document(self, location: str | None = None) -> dict[str, Any]:
        """The schema as served by ``/Schemas/{id}``."""
        return _discovery_document(
            SCHEMA,
            "Schema",
            location,
            id=self.id,
            name=self.name,
            description=self.description,
            attributes=[attribute.document() for attribute in self.attributes],
        )


def _by_key(attributes: Iterable[Attribute]) -> dict[str, Attribute]:
    """``attributes`` by lower-cased name, for the case-insensitive lookups (RFC 7643 §2.1)."""
    return {attribute.name.lower(): attribute for attribute in attributes}


def _discovery_document(
    urn: str, resource_type: str, location: str | None, **fields: Any
) -> dict[str, Any]:
    """A discovery document of the schema ``urn``: ``fields``, then ``meta`` with its
    ``resourceType`` and, when given, its ``location``."""
    meta = {"resourceType": resource_type}
    if location is not None:
        meta["location"] = location
    return {"schemas": [urn], **fields, "meta": meta}


def _strings(*described: tuple[str, str]) -> tuple[Attribute, ...]:
    """Plain string attributes, each given by its name and description."""
    return tuple(Attribute(name, description=description) for name, description in described)


def _multi(name: str, description: str, types: tuple[str, ...], *extra: Attribute) -> Attribute:
    """A multi-valued attribute of the common value/display/type/primary shape."""
    return Attribute(
        name,
        "complex",
        description,
        multi_valued=True,
        sub_attributes=(
            Attribute("value", description=f"The {name} value."),
            Attribute("display", description="A human-readable name."),
            Attribute(
                "type", description="A label for the value's function.", canonical_values=types
            ),
            Attribute("primary", "boolean", "Whether this is the primary value."),
            *extra,
        ),
    )


ID = Attribute(
    "id",
    description="Unique identifier assigned by printsync.",
    case_exact=True,
    mutability="readOnly",
    returned="always",
    uniqueness="server",
)
EXTERNAL_ID = Attribute(
    "externalId",
    description="Identifier assigned by the provisioning client.",
    case_exact=True,
)
META = Attribute(
    "meta",
    "complex",
    "Resource metadata.",
    mutability="readOnly",
    sub_attributes=(
        Attribute(
            "resourceType", description="The resource type.", case_exact=True, mutability="readOnly"
        ),
        Attribute("created", "dateTime", "When the resource was created.", mutability="readOnly"),
        Attribute(
            "lastModified", "dateTime", "When the resource last changed.", mutability="readOnly"
        ),
        Attribute(
            "location",
            "reference",
            "The resource's URI.",
            case_exact=True,
            mutability="readOnly",
            reference_types=("uri",),
        ),
        Attribute(
            "version",
            description="The resource's version (weak ETag).",
            case_exact=True,
            mutability="readOnly",
        ),
    ),
)
COMMON = (ID, EXTERNAL_ID, META)

USER_SCHEMA = Schema(
    USER,
    "User",
    "User Account",
    (
        Attribute(
            "userName",
            description="Unique identifier for the user.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            "The components of the user's name.",
            sub_attributes=_strings(
                ("formatted", "The full name."),
                ("familyName", "The family name."),
                ("givenName", "The given name."),
                ("middleName", "The middle name."),
                ("honorificPrefix", "The honorific prefix."),
                ("honorificSuffix", "The honorific suffix."),
            ),
        ),
        Attribute("displayName", description="The name displayed to end users."),
        Attribute("nickName", description="The casual name."),
        Attribute(
            "profileUrl", "reference", "A URL to the user's profile.", reference_types=("external",)
        ),
        Attribute("title", description="The user's title."),
        Attribute("userType", description="The relationship to the organization."),
        Attribute("preferredLanguage", description="Preferred written or spoken language."),
        Attribute("locale", description="Default location for localization."),
        Attribute("timezone", description="Time zone in IANA format."),
        Attribute("active", "boolean", "Whether the user may use the print system."),
        Attribute(
            "password",
            description="Never stored or returned.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi("emails", "E-mail addresses.", ("work", "home", "other")),
        _multi(
            "phoneNumbers", "Phone numbers.", ("work", "home", "mobile", "fax", "pager", "other")
        ),
        _multi(
            "ims",
            "Instant messaging addresses.",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi("photos", "Photo URLs.", ("photo", "thumbnail")),
        Attribute(
            "addresses",
            "complex",
            "Physical mailing addresses.",
            multi_valued=True,
            sub_attributes=(
                *_strings(
                    ("formatted", "The full mailing address."),
                    ("streetAddress", "The street address."),
                    ("locality", "The city or locality."),
                    ("region", "The state or region."),
                    ("postalCode", "The postal code."),
                    ("country", "The country."),
                ),
                Attribute(
                    "type",
                    description="The kind of address.",
                    canonical_values=("work", "home", "other"),
                ),
                Attribute("primary", "boolean", "Whether this is the primary address."),
            ),
        ),
        Attribute(
            "groups",
            "complex",
            "Groups the user belongs to.",
            multi_valued=True,
            mutability="readOnly",
            sub_attributes=(
                Attribute("value", description="The group's id.", mutability="readOnly"),
                Attribute(
                    "$ref",
                    "reference",
                    "The group's URI.",
                    mutability="readOnly",
                    reference_types=("Group",),
                ),
                Attribute("display", description="The group's displayName.", mutability="readOnly"),
                Attribute(
                    "type",
                    description="direct or indirect.",
                    mutability="readOnly",
                    canonical_values=("direct", "indirect"),
                ),
            ),
        ),
        _multi("entitlements", "Entitlements.", ()),
        _multi("roles", "Roles.", ()),
        _multi("x509Certificates", "X.509 certificates.", ()),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise User",
    (
        *_strings(
            ("employeeNumber", "The organization's identifier for the user."),
            ("costCenter", "The cost center."),
            ("organization", "The organization."),
            ("division", "The division."),
            ("department", "The department."),
        ),
        Attribute(
            "manager",
            "complex",
            "The user's manager.",
            sub_attributes=(
                Attribute("value", description="The manager's id.", case_exact=True),
                Attribute("$ref", "reference", "The manager's URI.", reference_types=("User",)),
                Attribute(
                    "displayName", description="The manager's displayName.", mutability="readOnly"
                ),
            ),
        ),
    ),
)

PRINTSYNC_SCHEMA = Schema(
    PRINTSYNC_USER,
    "PrintsyncUser",
    "Print attributes of a user",
    (
        Attribute(
            "cardNumber",
            description="Primary card number used to release print jobs.",
            case_exact=True,
        ),
        Attribute("secondaryCardNumber", description="Secondary card number.", case_exact=True),
        Attribute("office", description="Office or site of the user."),
    ),
)

GROUP_SCHEMA = Schema(
    GROUP,
    "Group",
    "Group",
    (
        Attribute(
            "displayName", description="The group's name.", required=True, uniqueness="server"
        ),
        Attribute(
            "members",
            "complex",
            "Members of the group.",
            multi_valued=True,
            sub_attributes=(
                Attribute(
                    "value", description="The member's id.", case_exact=True, mutability="immutable"
                ),
                Attribute(
                    "$ref",
                    "reference",
                    "The member's URI.",
                    mutability="immutable",
                    reference_types=("User", "Group"),
                ),
                Attribute(
                    "display", description="The member's displayName.", mutability="readOnly"
                ),
                Attribute(
                    "type",
                    description="User or Group.",
                    mutability="immutable",
                    canonical_values=("User", "Group"),
                ),
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type: its endpoint, core schema and extensions."""

    name: ResourceName
    endpoint: str
    description: str
    core: Schema
    extensions: tuple[Schema, ...]
    accepted_schemas: frozenset[str]

    def schema(self, urn: str) -> Schema | None:
        """The core or extension schema with this URN (case-insensitive), if any."""
        lowered = urn.lower()
        if lowered == self.core.id.lower():
            return self.core
        for extension in self.extensions:
            if lowered == extension.id.lower():
                return extension
        return None

    def document(self, location: str | None = None) -> dict[str, Any]:
        """The resource type as served by ``/ResourceTypes``."""
        doc = _discovery_document(
            RESOURCE_TYPE,
            "ResourceType",
            location,
            id=self.name,
            name=self.name,
            endpoint=self.endpoint,
            description=self.description,
            schema=self.core.id,
        )
        if self.extensions:
            doc["schemaExtensions"] = [
                {"schema": extension.id, "required": False} for extension in self.extensions
            ]
        return doc


USER_TYPE = ResourceType(
    "User",
    "/Users",
    "A person who prints.",
    USER_SCHEMA,
    (ENTERPRISE_SCHEMA, PRINTSYNC_SCHEMA),
    frozenset({USER.lower(), ENTERPRISE_USER.lower(), PRINTSYNC_USER.lower()}),
)
GROUP_TYPE = ResourceType(
    "Group",
    "/Groups",
    "A group of users.",
    GROUP_SCHEMA,
    (),
    frozenset({GROUP.lower(), MICROSOFT_GROUP.lower()}),
)
RESOURCE_TYPES: dict[ResourceName, ResourceType] = {"User": USER_TYPE, "Group": GROUP_TYPE}
SCHEMAS: tuple[Schema, ...] = (USER_SCHEMA, ENTERPRISE_SCHEMA, PRINTSYNC_SCHEMA, GROUP_SCHEMA)


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """An attribute path resolved against a resource type.

    ``schema`` is the URN of the schema owning the attribute; ``attribute`` the top-level
    attribute; ``sub`` the sub-attribute when the path names one.
    """

    schema: Schema
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def target(self) -> Attribute:
        """The attribute the path ends on."""
        return self.sub if self.sub is not None else self.attribute

    @property
    def is_core(self) -> bool:
        return self.schema.id in (USER, GROUP)


def split_urn(resource: ResourceType, path: str) -> tuple[Schema, str]:
    """Split an optional schema URN prefix off ``path``.

    ``urn:...:enterprise:2.0:User:department`` gives the enterprise schema and ``department``;
    a bare ``department`` gives the core schema. The URN match is case-insensitive.
    """
    lowered = path.lower()
    for schema in (resource.core, *resource.extensions):
        prefix = schema.id.lower()
        if lowered.startswith(prefix) and len(path) > len(prefix) and path[len(prefix)] == ":":
            return schema, path[len(prefix) + 1 :]
        if lowered == prefix:
            return schema, ""
    return resource.core, path


def resolve(resource: ResourceType, path: str) -> ResolvedPath | None:
    """Resolve ``attr``, ``attr.sub`` or ``urn:attr.sub`` (case-insensitive), or None."""
    schema, rest = split_urn(resource, path)
    if not rest:
        return None
    head, _, tail = rest.partition(".")
    attribute = schema.attribute(head)
    if attribute is None and schema is resource.core:
        attribute = next((a for a in COMMON if a.name.lower() == head.lower()), None)
    if attribute is None:
        return None
    if not tail:
        return ResolvedPath(schema, attribute)
    if "." in tail:
        return None
    sub = attribute.sub(tail)
    if sub is None:
        return None
    return ResolvedPath(schema, attribute, sub)


def walk(attributes: Iterable[Attribute]) -> Iterator[Attribute]:
    """Every attribute and sub-attribute, depth first."""
    for attribute in attributes:
        yield attribute
        yield from walk(attribute.sub_attributes)
