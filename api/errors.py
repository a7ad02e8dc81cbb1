"""The one place exceptions become SCIM error responses (RFC 7644 §3.12).

    Exception
    ├── storage.scim.errors.ScimError      its own status and scimType (400, 409 uniqueness)
    ├── api.errors.Unauthorized            401  missing or wrong token
    ├── api.errors.Forbidden               403  tenant disabled
    ├── api.errors.PayloadTooLarge         413
    ├── api.errors.UnsupportedMediaType    415
    ├── api.errors.TooManyRequests         429 with Retry-After
    ├── api.errors.NotImplementedHere      501  (/Me)
    ├── storage.errors.ResourceNotFound    404
    ├── storage.errors.VersionMismatch     412
    ├── storage.errors.DatabaseUnavailable 503 with Retry-After
    ├── starlette HTTPException            its status (unknown route 404, wrong method 405)
    └── anything else                      500, traceback logged, nothing revealed
                                           (api.middleware calls internal_error)

Every body is ``application/scim+json`` with ``status`` as a string and a ``detail``.
``describe`` says how each of these is answered; a Bulk request's operations report theirs
(``error_document``) in its response.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.context import RequestContext, request_context
from metrics.redaction import clean_error
from storage.errors import DatabaseUnavailable, ResourceNotFound, VersionMismatch
from storage.scim.errors import ScimError
from storage.scim.schema import ERROR

log = logging.getLogger("printsync.api")
MEDIA_TYPE = "application/scim+json"


class HttpError(Exception):
    """An error of the HTTP exchange rather than of SCIM; a subclass names its status in its
    class line."""

    status = 400
    scim_type: str | None = None

    def __init_subclass__(cls, *, status: int) -> None:
        super().__init_subclass__()
        cls.status = status

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class Unauthorized(HttpError, status=401): ...


class Forbidden(HttpError, status=403): ...


class PayloadTooLarge(HttpError, status=413): ...


class UnsupportedMediaType(HttpError, status=415): ...


class TooManyRequests(HttpError, status=429): ...


class NotImplementedHere(HttpError, status=501):
    """An endpoint RFC 7644 defines that this server does not offer (RFC 7644 §3.11: /Me)."""


def error_document(status: int, detail: str, scim_type: str | None = None) -> dict[str, object]:
    """The SCIM Error body (RFC 7644 §3.12)."""
    body: dict[str, object] = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return body


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(error_document(status, detail, scim_type))
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


@dataclass(frozen=True, slots=True)
class Described:
    """How an error is answered, and what the provisioning log says of it (``note``)."""

    status: int
    detail: str
    note: str
    scim_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def describe(error: Exception) -> Described | None:
    """How a SCIM, HTTP or storage error is answered; None for any other exception."""
    if isinstance(error, ScimError):
        return Described(error.status, error.detail, error.detail, error.scim_type)
    if isinstance(error, HttpError):
        headers = dict(error.headers)
        if error.status == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="printsync"')
        return Described(error.status, error.detail, error.detail, error.scim_type, headers)
    if isinstance(error, ResourceNotFound):
        detail = f"{error.resource} {error.resource_id} not found"
        return Described(404, detail, f"{error.resource} not found")
    if isinstance(error, VersionMismatch):
        detail = f"the resource has changed; its current version is {error.current}"
        return Described(412, detail, "version mismatch", headers={"ETag": error.current})
    if isinstance(error, DatabaseUnavailable):
        log.warning("database unavailable: %s", type(error).__name__)
        detail = "the service is temporarily unavailable; retry later"
        return Described(503, detail, "database unavailable", headers={"Retry-After": "5"})
    return None


async def _described(request: Request, error: Exception) -> Response:
    described = describe(error)
    assert described is not None
    request_context(request).error = described.note  # for the provisioning log (api.middleware)
    return error_response(
        described.status,
        described.detail,
        described.scim_type,
        described.headers or None,
    )


async def _starlette(_: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    detail = {404: "no such endpoint", 405: "method not allowed"}.get(
        error.status_code, str(error.detail)
    )
    headers = dict(error.headers) if error.headers else None
    return error_response(error.status_code, detail, headers=headers)


def internal_error(error: Exception, context: RequestContext | None) -> Response:
    """The bare 500 for an exception no handler took: its traceback logged with every message
    masked, nothing revealed, its type left for the provisioning log."""
    if context is not None:
        context.error = f"internal error: {type(error).__name__}"
    log.error("unhandled error\n%s", _masked_traceback(error))
    return error_response(500, "internal server error")


async def _unexpected(_: Request, error: Exception) -> Response:
    """Starlette's ServerErrorMiddleware calls this for an error raised outside api.middleware's
    guard (by the middleware itself): the request's log entry is already written."""
    return internal_error(error, None)


def _masked_traceback(error: BaseException) -> str:
    """The traceback with every exception message masked (``clean_error``): a message may quote
    request data, a token or a card number."""
    lines = traceback.format_tb(error.__traceback__)
    cause = error.__cause__ or error.__context__
    for _ in range(5):
        if cause is None:
            break
        lines.append(f"raised from {type(cause).__qualname__}: {clean_error(str(cause))}\n")
        cause = cause.__cause__ or cause.__context__
    lines.append(f"{type(error).__qualname__}: {clean_error(str(error))}")
    return "".join(lines)


def install(app: FastAPI) -> None:
    for kind in (ScimError, HttpError, ResourceNotFound, VersionMismatch, DatabaseUnavailable):
        app.add_exception_handler(kind, _described)
    app.add_exception_handler(StarletteHTTPException, _starlette)
    app.add_exception_handler(Exception, _unexpected)  # errors raised outside api.middleware
