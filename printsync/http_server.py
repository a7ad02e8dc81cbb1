"""How an API process listens: uvicorn, with limits on connections and on how long they may idle
or dawdle.

uvicorn on its own closes a connection only when it has been idle for the keep-alive timeout
*after a response*: a connection that never sends a request, or sends its head or body a byte at
a time, stays open for ever, and enough of them exhaust the process's file descriptors. The
protocol here (:func:`guarded_protocol`, over uvicorn's httptools protocol) therefore also

- closes a new connection that sends nothing for the keep-alive timeout
  (``PRINTSYNC_KEEPALIVE_TIMEOUT_SECONDS``), as uvicorn does between requests, and
- closes a connection whose request (head and body) has not arrived whole within
  ``PRINTSYNC_REQUEST_TIMEOUT_SECONDS`` of the connection opening or of the previous response.

``PRINTSYNC_LIMIT_CONCURRENCY`` caps the connections and requests a process holds at once;
past it uvicorn answers 503 at once. In a deployment open to the Internet a reverse proxy in
front (``compose.yaml``: Caddy, terminating TLS) enforces the same kinds of limits first.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from printsync.settings import Settings


def guarded_protocol(request_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the deadlines of the module docstring."""

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_complete(self) -> None:
            self._disarm()  # the request has arrived whole
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Armed again only while waiting for the next request (none pipelined).
            if self.timeout_keep_alive_task is not None:
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol


def options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for an API process."""
    return {
        "http": guarded_protocol(settings.request_timeout_seconds),
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.keepalive_timeout_seconds,
        # uvicorn's own lines go through printsync's logging (metrics.logs), in its format.
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
    }


def serve(app: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until the process is told to stop."""
    uvicorn.run(app, host=host, port=port, **options(settings))
