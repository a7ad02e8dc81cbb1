"""Storage errors: what went wrong with the record, free of any HTTP notion.

    StorageError
    ├── ResourceNotFound      no such resource in this tenant
    ├── VersionMismatch       If-Match named a version that is no longer current
    ├── TenantNotFound        no tenant by that name
    └── DatabaseUnavailable   the database could not be reached or is locked; retry later

Uniqueness conflicts are raised as ``storage.scim.errors.Uniqueness`` (a SCIM error with its
status) after the database's unique indexes refuse a write.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the errors storage raises on its own account."""


class ResourceNotFound(StorageError):
    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(f"{resource} {resource_id} not found")
        self.resource = resource
        self.resource_id = resource_id


class VersionMismatch(StorageError):
    def __init__(self, current: str) -> None:
        super().__init__(f"version is now {current}")
        self.current = current


class TenantNotFound(StorageError):
    pass


class DatabaseUnavailable(StorageError):
    pass


class SchemaError(StorageError):
    """A schema migration could not run as asked (an unknown revision, say); the message says
    why in Alembic's words."""
