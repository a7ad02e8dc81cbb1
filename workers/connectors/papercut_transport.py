"""XML-RPC transports with a socket timeout, for the PaperCut connector.

``xmlrpc.client.ServerProxy`` has no timeout of its own, and a blocked call cannot be interrupted
by Dramatiq's time limit, so every connection the connector opens gets one here.
"""

from __future__ import annotations

import http.client
import ssl
import xmlrpc.client

__all__ = ["timeout_transport"]


def timeout_transport(
    url: str, timeout: float, context: ssl.SSLContext | None
) -> xmlrpc.client.Transport:
    """The transport for ``url`` (HTTP or HTTPS) whose connections time out after ``timeout``
    seconds."""
    if url.startswith("https:"):
        return _TimeoutSafeTransport(timeout, context)
    return _TimeoutTransport(timeout)


class _TimeoutTransport(xmlrpc.client.Transport):
    """HTTP transport whose connections time out after ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: tuple[str, dict[str, str]] | str) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


class _TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS transport whose connections time out after ``timeout`` seconds."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None) -> None:
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(
        self, host: tuple[str, dict[str, str]] | str
    ) -> http.client.HTTPSConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection
