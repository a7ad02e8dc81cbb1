"""The one ASGI middleware every HTTP request passes: request id, body limit, last-resort error,
metrics and the provisioning-log entry.

A pure ASGI middleware (no ``BaseHTTPMiddleware``, which adds a task and a memory stream per
request), between Starlette's ``ServerErrorMiddleware`` and its ``ExceptionMiddleware``. For each
HTTP request it

- takes the ``X-Request-ID`` header when it is a sane token, or makes a new id (32 hex
  characters), keeps it in the request's :class:`~api.context.RequestContext` (which it puts in
  the scope), binds it as ``request_id`` in structlog's contextvars and echoes it in the response
  headers;
- limits the body to ``max_body_bytes``: with a ``Content-Length`` over the limit the first
  receive, and without one the receive that brings the total over it, raises ``PayloadTooLarge``,
  which the exception handlers answer with the 413 SCIM error. No handler ever holds an over-size
  body, and a handler checks authentication (401, 403, 429) and the media type (415) before it
  reads the body, so those answers come first;
- records a request whose client went away before its body arrived whole (Starlette's
  ``ClientDisconnect``) as 499, as nginx does: no answer is sent, nothing is logged as an error,
  and the health model does not count it;
- turns an exception no handler took into the bare SCIM 500 (``api.errors.internal_error``: the
  traceback logged with every message masked). Left to ``ServerErrorMiddleware`` it would be
  re-raised to the server, which logs it again, unmasked;
- counts and times the request (``metrics.http``), except on ``skip_paths`` (the scrape and the
  probes), and
- appends one entry to the process's provisioning log (``app.state.provisioning_log``) for a
  request whose tenant was authenticated, from what the context says the request was about and
  changed (plus one entry per user a group write added or removed).

Request ids come from a pool of random bytes (``storage.ids``), not one system call each.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from prometheus_client import Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from api.context import SCOPE_KEY, RequestContext
from api.errors import PayloadTooLarge, internal_error
from metrics import catalog
from metrics.http import RequestMetrics
from storage.changes import Changes
from storage.ids import random16
from storage.provisioning_log import GROUP, LogBuffer

REQUEST_ID_HEADER: Final = b"x-request-id"
#: The status recorded (in the metrics and the provisioning log) for a request whose client
#: closed the connection before sending it whole: nginx's 499, never sent to anyone.
CLIENT_CLOSED: Final = 499
#: Longest request id accepted from a client; longer ones are replaced.
MAX_REQUEST_ID_LENGTH: Final = 128

_CONTENT_LENGTH: Final = b"content-length"
_ALLOWED_ID_BYTES: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:"


def new_request_id() -> str:
    """A fresh random request id: 32 hex characters, fork-safe."""
    return random16().hex()


def accepted_request_id(value: bytes) -> str | None:
    """A client's ``X-Request-ID`` when it is a sane token (letters, digits, ``-_.:``, at most
    128 bytes), else ``None``."""
    if 0 < len(value) <= MAX_REQUEST_ID_LENGTH and not value.translate(None, _ALLOWED_ID_BYTES):
        return value.decode("ascii")
    return None


class RequestMiddleware:
    """See the module docstring. ``requests`` and ``duration`` default to the catalogue's
    metrics; ``skip_paths`` are exact paths that get a request id but no metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        skip_paths: Iterable[str] = (),
        requests: Counter = catalog.SCIM_REQUESTS,
        duration: Histogram = catalog.SCIM_REQUEST_DURATION,
    ) -> None:
        self.app = app
        self._max_body = max_body_bytes
        self._too_large = f"the body exceeds maxPayloadSize ({max_body_bytes} bytes)"
        self._skip_paths = frozenset(skip_paths)
        self._metrics = RequestMetrics(requests, duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming: bytes | None = None
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                if incoming is None:
                    incoming = value
            elif name == _CONTENT_LENGTH:
                length = value
        request_id = accepted_request_id(incoming) if incoming is not None else None
        if request_id is None:
            request_id = new_request_id()
        context = RequestContext(request_id)
        scope[SCOPE_KEY] = context
        log_tokens = bind_contextvars(request_id=request_id)

        if length is None or not length.isdigit():
            receive = self._counting(receive)
        elif int(length) > self._max_body:
            receive = self._refusing()

        status: int | None = None  # set when the response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                for name, _ in headers:
                    if name.lower() == REQUEST_ID_HEADER:
                        break
                else:
                    headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        gone = False
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            gone = True  # nobody to answer: not an error of ours
            context.failed("the client closed the connection before its request arrived whole")
        except Exception as error:
            response = internal_error(error, context)
            if status is None:
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            reset_contextvars(**log_tokens)
            answered = (
                CLIENT_CLOSED if gone and status is None else 500 if status is None else status
            )
            path: str = scope["path"]
            if path not in self._skip_paths:
                self._metrics.record(path, scope["method"], answered, elapsed, context.tenant_name)
            if context.tenant_id is not None:
                _audit(scope, context, context.tenant_id, answered)

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that raises PayloadTooLarge once the bodies received exceed the limit."""
        limit = self._max_body
        detail = self._too_large
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(detail)
            return message

        return counting

    def _refusing(self) -> Receive:
        """``receive`` for a body whose declared length exceeds the limit: nothing is read."""
        detail = self._too_large

        async def refusing() -> Message:
            raise PayloadTooLarge(detail)

        return refusing


def _audit(scope: Scope, context: RequestContext, tenant_id: int, status: int) -> None:
    """The provisioning-log entries of a tenant's SCIM request (no I/O): its own, or one per
    operation a Bulk request ran, each with what the write changed; a group write that changed
    memberships also gets one entry against each user it added or removed."""
    log = getattr(scope["app"].state, "provisioning_log", None)
    if log is None:
        return
    for operation in context.operations:
        _append(
            log,
            tenant_id,
            operation.operation,
            operation.status,
            operation.target_id,
            operation.target_name,
            operation.error,
            operation.changes,
        )
    if context.operations and status < 400:
        return
    _append(
        log,
        tenant_id,
        f"{context.operation or scope['method']} /{context.resource or ''}",
        status,
        context.target_id,
        context.target_name,
        context.error,
        context.changes,
    )


def _append(
    log: LogBuffer,
    tenant_id: int,
    operation: str,
    status: int,
    target_id: str | None,
    target_name: str | None,
    error: str | None,
    changes: Changes | None,
) -> None:
    log.append(
        tenant_id,
        operation,
        status,
        target_id=target_id,
        target_name=target_name,
        error=error,
        changes=changes.detail() if changes is not None else None,
    )
    if changes is None or status >= 400:
        return
    for member, detail in changes.member_details(target_id):
        log.append(
            tenant_id,
            operation,
            status,
            target_id=member.id,
            target_name=member.user_name,
            changes=detail,
            source=GROUP,
        )
