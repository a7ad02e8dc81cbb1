"""SCIM protocol errors (RFC 7644 §3.12): one class per error type, each with its status.

    ScimError                  400 (no scimType)
    ├── InvalidFilter          400 invalidFilter
    ├── TooMany                400 tooMany
    ├── Uniqueness             409 uniqueness
    ├── Mutability             400 mutability
    ├── InvalidSyntax          400 invalidSyntax
    ├── InvalidPath            400 invalidPath
    ├── NoTarget               400 noTarget
    ├── InvalidValue           400 invalidValue
    ├── InvalidVersion         400 invalidVers
    ├── Sensitive              400 sensitive
    ├── InvalidCursor          400 invalidCursor  (RFC 9865 §2.1)
    └── ExpiredCursor          400 expiredCursor  (RFC 9865 §2.1)

They carry no HTTP machinery: ``api.errors`` renders them. ``detail`` is shown to the client, so it
must never contain a secret (token, PIN, card number).
"""

from __future__ import annotations


class ScimError(Exception):
    """A request that breaks the SCIM protocol; ``detail`` explains it to the client.

    A subclass names its ``scimType`` (and its status, when not 400) in its class line."""

    status: int = 400
    scim_type: str | None = None

    def __init_subclass__(cls, *, scim_type: str, status: int = 400) -> None:
        super().__init_subclass__()
        cls.scim_type = scim_type
        cls.status = status

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidFilter(ScimError, scim_type="invalidFilter"): ...


class TooMany(ScimError, scim_type="tooMany"): ...


class Uniqueness(ScimError, scim_type="uniqueness", status=409): ...


class Mutability(ScimError, scim_type="mutability"): ...


class InvalidSyntax(ScimError, scim_type="invalidSyntax"): ...


class InvalidPath(ScimError, scim_type="invalidPath"): ...


class NoTarget(ScimError, scim_type="noTarget"): ...


class InvalidValue(ScimError, scim_type="invalidValue"): ...


class InvalidVersion(ScimError, scim_type="invalidVers"): ...


class Sensitive(ScimError, scim_type="sensitive"): ...


class InvalidCursor(ScimError, scim_type="invalidCursor"): ...


class ExpiredCursor(ScimError, scim_type="expiredCursor"): ...
