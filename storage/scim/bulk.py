"""Bulk requests (RFC 7644 §3.7): the envelope, each operation checked on its own, the
``bulkId`` references between operations and the order the operations run in.

``envelope`` checks the BulkRequest message itself (a bad one is refused whole); ``plan`` reads
each operation, and an operation that cannot run carries its error, which becomes its result
while the others run. An operation may refer to the resource a POST of the same request creates
by writing ``"bulkId:<id>"`` as a value anywhere in its ``data`` (a group's
``members[].value``, a user's ``manager``) or as the resource id of its ``path``
(``/Groups/bulkId:g1``). Operations run in request order, except that one runs after every POST
it refers to (RFC 7644 §3.7 allows the reordering, which keeps the client's intent); results
are reported in request order. An operation whose references cannot be resolved gets 400
``invalidValue``: a bulkId no POST of the request declares, one that two POSTs declare, one whose
POST failed, or references that form a cycle (RFC 7644 §3.7.1 lets a server stop there).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from storage.scim import messages
from storage.scim.errors import InvalidSyntax, InvalidValue, ScimError
from storage.scim.schema import BULK_REQUEST, RESOURCE_TYPES, ResourceType

#: Most operations one Bulk request may hold (``bulk.maxOperations``).
MAX_OPERATIONS: Final = 1000
#: The longest bulkId accepted.
MAX_BULK_ID_LENGTH: Final = 200

Method = Literal["POST", "PUT", "PATCH", "DELETE"]
METHODS: Final[tuple[Method, ...]] = ("POST", "PUT", "PATCH", "DELETE")
PREFIX: Final = "bulkId:"
_ENDPOINTS: Final = {rt.endpoint.lstrip("/").lower(): rt for rt in RESOURCE_TYPES.values()}


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a Bulk request, as sent and checked.

    ``resource`` and ``resource_id`` come from the path (the id may still be a bulkId
    reference); ``error``, when set, is the operation's result: it does not run.
    """

    index: int
    method: str
    bulk_id: str | None = None
    version: str | None = None
    path: str | None = None
    data: Any = None
    resource: ResourceType | None = None
    resource_id: str | None = None
    references: frozenset[str] = frozenset()
    error: ScimError | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    operations: list[Any]
    fail_on_errors: int | None


def envelope(body: Any) -> Envelope:
    """The operations (unchecked) and ``failOnErrors`` of a BulkRequest; a message that is not
    one is refused whole (400)."""
    lowered = messages.attributes(body, BULK_REQUEST, "BulkRequest")
    operations = lowered.get("operations")
    if not isinstance(operations, list):
        raise InvalidValue("Operations must be a list of operations")
    fail_on_errors = lowered.get("failonerrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool)
        or not isinstance(fail_on_errors, int)
        or fail_on_errors < 1
    ):
        raise InvalidValue("failOnErrors must be a positive integer")
    return Envelope(operations, fail_on_errors)


def plan(operations: list[Any]) -> list[Operation]:
    """Every operation checked, in the order they run (see the module docstring)."""
    checked = [_operation(index, raw) for index, raw in enumerate(operations)]
    declared: dict[str, list[int]] = {}
    for op in checked:
        if op.error is None and op.method == "POST" and op.bulk_id is not None:
            declared.setdefault(op.bulk_id, []).append(op.index)
    needs: dict[int, set[int]] = {}
    for position, op in enumerate(checked):
        if op.error is not None:
            continue
        error: str | None = None
        if op.method == "POST" and op.bulk_id is not None and len(declared[op.bulk_id]) > 1:
            error = f"bulkId {op.bulk_id!r} is declared by more than one operation"
        for reference in sorted(op.references):
            posts = declared.get(reference, [])
            if error is None and len(posts) != 1:
                error = (
                    f"bulkId {reference!r} is declared by more than one operation"
                    if posts
                    else f"bulkId {reference!r} is not the bulkId of a POST in this request"
                )
        if error is not None:
            checked[position] = _failed(op, InvalidValue(error))
        else:
            needs[op.index] = {declared[reference][0] for reference in op.references}
    return _ordered(checked, needs)


def _ordered(checked: list[Operation], needs: dict[int, set[int]]) -> list[Operation]:
    """Request order, each operation after the POSTs it refers to; the operations caught in a
    cycle of references (or waiting on one) last, failed."""
    waiting = {index: set(wanted) for index, wanted in needs.items()}
    followers: dict[int, list[int]] = {}
    for index, wanted in waiting.items():
        for other in wanted:
            followers.setdefault(other, []).append(index)
    ready = [op.index for op in checked if op.index not in waiting or not waiting[op.index]]
    heapq.heapify(ready)
    order: list[Operation] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(checked[index])
        for follower in followers.get(index, ()):
            pending = waiting[follower]
            pending.discard(index)
            if not pending:
                heapq.heappush(ready, follower)
    done = {op.index for op in order}
    for op in checked:
        if op.index not in done:
            error = InvalidValue(
                "the operation's bulkId references form a cycle (or wait on one) and cannot be "
                "resolved; create the resources first and refer to them by id"
            )
            order.append(_failed(op, error))
    return order


def _failed(op: Operation, error: ScimError) -> Operation:
    return replace(op, error=error)


def _operation(index: int, raw: Any) -> Operation:
    """One operation read and checked; an invalid one carries its error."""
    if not isinstance(raw, dict):
        return Operation(index, "", error=InvalidSyntax("an operation must be a JSON object"))
    fields = {str(key).lower(): value for key, value in raw.items()}
    method = fields.get("method")
    method = method.upper() if isinstance(method, str) else ""
    bulk_id = fields.get("bulkid")
    version = fields.get("version")
    path = fields.get("path")
    data = fields.get("data")
    op = Operation(
        index,
        method,
        bulk_id if isinstance(bulk_id, str) else None,
        version if isinstance(version, str) else None,
        path if isinstance(path, str) else None,
        data,
    )
    try:
        return _checked(op, bulk_id, version, path, data)
    except ScimError as error:
        return _failed(op, error)


def _checked(op: Operation, bulk_id: Any, version: Any, path: Any, data: Any) -> Operation:
    if op.method not in METHODS:
        raise InvalidValue("method must be POST, PUT, PATCH or DELETE")
    if bulk_id is not None and (
        not isinstance(bulk_id, str) or not bulk_id or len(bulk_id) > MAX_BULK_ID_LENGTH
    ):
        raise InvalidValue(f"bulkId must be a string of 1 to {MAX_BULK_ID_LENGTH} characters")
    if op.method == "POST" and bulk_id is None:
        raise InvalidValue("bulkId is required for POST")
    if version is not None and not isinstance(version, str):
        raise InvalidValue("version must be a string (an ETag)")
    if not isinstance(path, str):
        raise InvalidValue("path is required: /Users or /Groups, or /Users/{id} or /Groups/{id}")
    resource, resource_id = _target(op.method, path)
    if op.method != "DELETE" and not isinstance(data, dict):
        raise InvalidValue(f"data is required for {op.method} and must be a JSON object")
    references = set(_references(data)) if op.method != "DELETE" else set()
    if resource_id is not None and resource_id.startswith(PREFIX):
        references.add(resource_id[len(PREFIX) :])
    if op.bulk_id is not None and op.bulk_id in references:
        raise InvalidValue(f"the operation refers to its own bulkId {op.bulk_id!r}")
    return replace(op, resource=resource, resource_id=resource_id, references=frozenset(references))


def _target(method: str, path: str) -> tuple[ResourceType, str | None]:
    """The resource type and id a path names: ``/Users`` for a POST, ``/Users/{id}`` else."""
    parts = path.strip("/").split("/")
    resource = _ENDPOINTS.get(parts[0].lower())
    if resource is None or len(parts) > 2:
        raise InvalidValue("path must name /Users or /Groups, or one of their resources")
    if method == "POST":
        if len(parts) != 1:
            raise InvalidValue(
                f"a POST's path is the resource type's endpoint: {resource.endpoint}"
            )
        return resource, None
    if len(parts) != 2 or not parts[1]:
        raise InvalidValue(f"a {method}'s path names one resource: {resource.endpoint}/{{id}}")
    return resource, parts[1]


def _references(value: Any) -> Iterator[str]:
    """The bulkIds ``value`` refers to (strings ``"bulkId:<id>"`` anywhere in it)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if item.startswith(PREFIX) and len(item) > len(PREFIX):
                yield item[len(PREFIX) :]
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


@dataclass(slots=True)
class Created:
    """The ids of the resources the request's POSTs created, by bulkId."""

    ids: dict[str, str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """``value`` with each ``"bulkId:<id>"`` replaced by the id its POST created;
        InvalidValue when that POST created nothing."""
        if isinstance(value, str):
            if not value.startswith(PREFIX) or len(value) == len(PREFIX):
                return value
            bulk_id = value[len(PREFIX) :]
            found = self.ids.get(bulk_id)
            if found is None:
                raise InvalidValue(f"bulkId {bulk_id!r}: its operation created no resource")
            return found
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value
