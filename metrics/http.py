"""ASGI middleware: SCIM request metrics and request ids.

A pure ASGI middleware (no ``BaseHTTPMiddleware``, which adds a task and a memory stream per
request). For each HTTP request it

- takes the ``X-Request-ID`` header when it is a sane token, or makes a new id, binds it as
  ``request_id`` in structlog's contextvars and in ``scope["state"]``, and echoes it in the
  response headers;
- counts the request in ``printsync_scim_requests_total{resource,method,status}`` and times it in
  ``printsync_scim_request_duration_seconds{resource,method}``.

``resource`` is the SCIM endpoint named by the path: the segment after the tenant's SCIM base
(``…/Users``, ``…/Users/{id}``, ``…/Schemas/{urn}``) when it is one of the SCIM endpoints, else
``other``. Only the last two path segments are looked at, so any tenant base works. Methods
outside the usual HTTP set count as ``other``, which keeps every label bounded whatever clients
send.

It runs on every request, so the per-request work is a split, a few set and dict look-ups and the
metric updates; labelled metric children are created on first use and cached.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any, Final

from prometheus_client import Counter, Histogram
from structlog.contextvars import bind_contextvars, reset_contextvars

from metrics import catalog
from metrics.ids import random16

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER: Final = b"x-request-id"
#: Longest request id accepted from a client; longer ones are replaced.
MAX_REQUEST_ID_LENGTH: Final = 128

_ALLOWED_ID_BYTES: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:"
_ENDPOINTS: Final = frozenset(r for r in catalog.SCIM_RESOURCES if r != "other")
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_request_id: ContextVar[str | None] = ContextVar("printsync_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _request_id.get()


def new_request_id() -> str:
    """A fresh random request id: 32 hex characters, fork-safe."""
    return random16().hex()


def resource_of(path: str) -> str:
    """The ``resource`` label for a request path."""
    # ".../Users/{id}" names the endpoint second to last, ".../Users" last.
    head, _, last = path.rstrip("/").rpartition("/")
    parent = head.rpartition("/")[2]
    if parent in _ENDPOINTS:
        return parent
    if last in _ENDPOINTS:
        return last
    return "other"


def method_of(method: str) -> str:
    """The ``method`` label: the HTTP method, or ``other`` for unusual ones."""
    return method if method in _METHODS else "other"


def _incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if 0 < len(value) <= MAX_REQUEST_ID_LENGTH and not value.translate(
                None, _ALLOWED_ID_BYTES
            ):
                return value.decode("ascii")
            return None
    return None


class RequestMetricsMiddleware:
    """Count and time SCIM requests; set and propagate ``X-Request-ID``.

    ``skip_paths`` are exact paths (e.g. ``/metrics``) that get a request id but no metrics.
    ``requests`` and ``duration`` default to the catalogue's metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        skip_paths: Iterable[str] = (),
        requests: Counter = catalog.SCIM_REQUESTS,
        duration: Histogram = catalog.SCIM_REQUEST_DURATION,
    ) -> None:
        self.app = app
        self._skip_paths = frozenset(skip_paths)
        self._requests = requests
        self._duration = duration
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope["headers"]) or new_request_id()
        encoded_id = request_id.encode("ascii")
        state = scope.get("state")
        if isinstance(state, dict):
            state["request_id"] = request_id
        else:
            scope["state"] = {"request_id": request_id}
        log_tokens = bind_contextvars(request_id=request_id)
        id_token = _request_id.set(request_id)

        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                for name, _ in headers:
                    if name.lower() == REQUEST_ID_HEADER:
                        break
                else:
                    headers.append((REQUEST_ID_HEADER, encoded_id))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            _request_id.reset(id_token)
            reset_contextvars(**log_tokens)
            path: str = scope["path"]
            if path not in self._skip_paths:
                self._record(path, scope["method"], status, elapsed)

    def _record(self, path: str, method: str, status: int, elapsed: float) -> None:
        resource = resource_of(path)
        method_label = method_of(method)
        key = (resource, method_label, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(resource, method_label, str(status)),
                self._duration.labels(resource, method_label),
            )
            self._children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(elapsed)
