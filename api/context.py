"""What one request is about, in one typed object the whole request path shares.

``api.middleware.RequestMiddleware`` makes a :class:`RequestContext` for every HTTP request and
keeps it in the ASGI scope under :data:`SCOPE_KEY`; :func:`request_context` finds it again from
a ``Request`` or a scope. Whoever learns a fact about the request writes it there:

- the middleware: the request id;
- authentication (``api.auth``): the tenant, once its token is verified;
- the route, before it authenticates (``api.routes.plain`` for the resource routes, each
  discovery route itself): the SCIM resource, the operation and the target id from the path;
- a write handler: what the write changed (``storage.changes.Changes``), and for a create the
  new resource's id;
- an exception handler (``api.errors``): the error's detail;
- a Bulk request: each operation it ran, as a single request would have been logged.

When the response is sent the middleware reads it back to write the request's provisioning-log
entries: a request with a tenant is a SCIM request of that tenant, logged as ``"{operation}
/{resource}"`` (``POST /Users``) with what the write changed, and a Bulk request as its
operations (and, should the request itself fail, as itself too); a group write that changed
memberships also gets one entry against each user it added or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import Scope

from storage.changes import Changes

#: The scope key the context is kept under.
SCOPE_KEY: Final = "printsync.context"


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a Bulk request, as the provisioning log records it."""

    operation: str
    status: int
    target_id: str | None = None
    target_name: str | None = None
    error: str | None = None
    changes: Changes | None = None


@dataclass(slots=True)
class RequestContext:
    request_id: str
    #: The authenticated tenant's id; ``None`` until (unless) its token is verified.
    tenant_id: int | None = None
    #: Its name (the ``tenant`` label of the request metrics); empty until it is verified.
    tenant_name: str = ""
    #: The SCIM endpoint the route serves: ``Users``, ``Groups``, ``Schemas``, …
    resource: str | None = None
    #: The SCIM operation: the HTTP method the route answers (``POST``, ``GET``, …).
    operation: str | None = None
    #: The resource acted on: the id in the path, or the one a create made.
    target_id: str | None = None
    #: The written resource's ``userName`` or ``displayName``.
    target_name: str | None = None
    #: Why the request failed, for the provisioning log (masked when the entry is written).
    error: str | None = None
    #: What a write changed.
    changes: Changes | None = None
    #: The operations a Bulk request ran, in the order they ran.
    operations: list[Operation] = field(default_factory=list)

    def handles(self, resource: str, operation: str, target_id: str | None = None) -> None:
        """The route says what the request is about."""
        self.resource = resource
        self.operation = operation
        self.target_id = target_id

    def created(self, target_id: str, changes: Changes) -> None:
        """A create names the resource it made."""
        self.target_id = target_id
        self.wrote(changes)

    def wrote(self, changes: Changes) -> None:
        """A write says what it changed (and the resource's name)."""
        self.changes = changes
        if changes.name is not None:
            self.target_name = changes.name

    def failed(self, detail: str) -> None:
        """An error handler leaves the error's detail."""
        self.error = detail


def request_context(source: HTTPConnection | Scope) -> RequestContext:
    """The context of the request ``source`` (a ``Request`` or an ASGI scope) belongs to."""
    scope = source.scope if isinstance(source, HTTPConnection) else source
    context: RequestContext = scope[SCOPE_KEY]
    return context
