"""The one place exceptions become SCIM error responses (RFC 7644 §3.12).

    Exception
    ├── storage.scim.errors.ScimError      its own status and scimType (400, 409 uniqueness)
    ├── api.errors.Unauthorized            401  missing or wrong token
    ├── api.errors.Forbidden               403  tenant disabled
    ├── api.errors.PayloadTooLarge         413
    ├── api.errors.UnsupportedMediaType    415
    ├── api.errors.TooManyRequests         429 with Retry-After
    ├── storage.errors.ResourceNotFound    404
    ├── storage.errors.VersionMismatch     412
    ├── storage.errors.DatabaseUnavailable 503 with Retry-After
    ├── starlette HTTPException            its status (unknown route 404, wrong method 405)
    └── anything else                      500, traceback logged, nothing revealed
                                           (api.middleware calls internal_error)

Every body is ``application/scim+json`` with ``status`` as a string and a ``detail``.
"""

from __future__ import annotations

import logging
import traceback

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
    status = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class Unauthorized(HttpError):
    status = 401


class Forbidden(HttpError):
    status = 403


class PayloadTooLarge(HttpError):
    status = 413


class UnsupportedMediaType(HttpError):
    status = 415


class TooManyRequests(HttpError):
    status = 429


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, object] = {"schemas": [ERROR], "status": str(status)}
    if scim_type:
        body["scimType"] = scim_type
    body["detail"] = detail
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _note(request: Request, detail: str) -> None:
    """Leave the error's detail for the provisioning log (api.middleware)."""
    request_context(request).error = detail


async def _scim(request: Request, error: Exception) -> Response:
    assert isinstance(error, ScimError)
    _note(request, error.detail)
    return error_response(error.status, error.detail, error.scim_type)


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HttpError)
    _note(request, error.detail)
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="printsync"')
    return error_response(error.status, error.detail, error.scim_type, headers)


async def _not_found(request: Request, error: Exception) -> Response:
    assert isinstance(error, ResourceNotFound)
    _note(request, f"{error.resource} not found")
    return error_response(404, f"{error.resource} {error.resource_id} not found")


async def _version(request: Request, error: Exception) -> Response:
    assert isinstance(error, VersionMismatch)
    _note(request, "version mismatch")
    return error_response(
        412,
        f"the resource has changed; its current version is {error.current}",
        headers={"ETag": error.current},
    )


async def _unavailable(request: Request, error: Exception) -> Response:
    _note(request, "database unavailable")
    log.warning("database unavailable: %s", type(error).__name__)
    return error_response(
        503, "the service is temporarily unavailable; retry later", headers={"Retry-After": "5"}
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
    app.add_exception_handler(ScimError, _scim)
    app.add_exception_handler(HttpError, _http)
    app.add_exception_handler(ResourceNotFound, _not_found)
    app.add_exception_handler(VersionMismatch, _version)
    app.add_exception_handler(DatabaseUnavailable, _unavailable)
    app.add_exception_handler(StarletteHTTPException, _starlette)
    app.add_exception_handler(Exception, _unexpected)  # errors raised outside api.middleware
