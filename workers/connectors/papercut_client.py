"""The PaperCut connector's XML-RPC client: one call to PaperCut's Web Services API.

Every call goes to ``api.<method>`` with the auth token as its first parameter, over a
connection of the calling thread's own (a ``ServerProxy`` shared by several threads corrupts its
connection) with a socket timeout (``papercut_transport``). Idempotent calls are tried again a
few times within a few seconds for transient failures. Every failure leaves as one class of
:mod:`workers.errors`:

- a fault is classified by its code (:mod:`workers.connectors.papercut_faults`); a general one
  that a harmless second call (``isUserExists``) repeats is an ``AuthenticationError``, since
  only the token or the caller's address can make that call fail. The text is never parsed.
- ``ProtocolError`` with a 5xx (or 408/425/429) status, refused, reset or timed-out connections
  are a ``TransientError``; 401/403 an ``AuthenticationError``; other statuses permanent.

The token stays in a ``SecretStr`` and is scrubbed from every text that goes into an error.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import xmlrpc.client
from collections.abc import Callable
from typing import TypeAlias, cast
from xml.parsers.expat import ExpatError

import structlog
import tenacity
from pydantic import SecretStr

from workers.connectors.papercut_faults import is_general, refusal
from workers.connectors.papercut_transport import timeout_transport
from workers.errors import (
    AuthenticationError,
    DownstreamError,
    PermanentError,
    TransientError,
)

__all__ = ["PaperCutClient", "Param", "as_bool", "string_list"]

#: What an XML-RPC parameter may be here: strings, integers for paging, booleans where the API
#: asks for one, and lists of string pairs for properties.
Param: TypeAlias = str | int | bool | list[str] | list[list[str]]

_log = structlog.get_logger(__name__)

#: The harmless call that tells a refused token or address from a refused call.
_PROBE_USER = "printsync-connection-probe"
_AUTH_REFUSED = (
    "PaperCut refused the auth token (or this host's address): check"
    " auth.webservices.auth-token and auth.webservices.allowed-addresses"
)
_TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429})
_AUTH_HTTP_STATUSES = frozenset({401, 403})
_SERVER_ERROR = 500
_MAX_DETAIL = 300


class PaperCutClient:
    """Calls to one PaperCut server's XML-RPC ``endpoint``; safe to use from many threads."""

    def __init__(
        self,
        endpoint: str,
        token: SecretStr,
        timeout: float,
        *,
        retry_attempts: int,
        retry_budget: float,
        retry_initial_wait: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._url = endpoint
        self._token = token
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._local = threading.local()
        self._retrying = tenacity.Retrying(
            stop=(
                tenacity.stop_after_attempt(retry_attempts)
                | tenacity.stop_before_delay(retry_budget)
            ),
            wait=(
                tenacity.wait_exponential(
                    multiplier=retry_initial_wait, max=max(retry_initial_wait, retry_budget / 2)
                )
                + tenacity.wait_random(0, retry_initial_wait)
            ),
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=self._log_retry,
            reraise=True,
        )

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        """Close the calling thread's connection, if it has one."""
        proxy = cast("xmlrpc.client.ServerProxy | None", getattr(self._local, "proxy", None))
        if proxy is not None:
            proxy("close")()
            del self._local.proxy

    def call(self, method: str, *args: Param, idempotent: bool, token: bool = True) -> object:
        """Call ``api.<method>`` with the token first (``token=False``: without it, as
        ``getTaskStatus`` takes no parameters)."""
        if idempotent:
            return self._retrying.copy()(self._call_once, method, args, token)
        return self._call_once(method, args, token)

    def _call_once(self, method: str, args: tuple[Param, ...], token: bool = True) -> object:
        proxy = self._proxy()
        try:
            remote: Callable[..., object] = getattr(proxy, f"api.{method}")
            if not token:
                return remote(*args)
            return remote(self._token.get_secret_value(), *args)
        except xmlrpc.client.Fault as fault:
            error = self._classify_fault(method, fault)
        except xmlrpc.client.ProtocolError as exc:
            error = self._classify_status(method, exc.errcode, exc.errmsg)
        except ssl.SSLCertVerificationError as exc:
            error = PermanentError(
                f"TLS certificate rejected ({self.detail(exc)})", operation=method
            )
        except ConnectionRefusedError:
            error = TransientError(f"connection refused at {self._url}", operation=method)
        except TimeoutError:
            error = TransientError(
                f"PaperCut at {self._url} timed out after {self._timeout:g} s", operation=method
            )
        except (OSError, http.client.HTTPException, ExpatError) as exc:
            # Reset connections, name resolution, broken or non-XML responses from a proxy
            # in front of PaperCut.
            error = TransientError(
                f"PaperCut unreachable ({type(exc).__name__}: {self.detail(exc)})",
                operation=method,
            )
        # Raised outside the handlers so that the client exception, whose frames
        # hold the request parameters, is not chained to the error.
        raise error

    def _classify_fault(self, method: str, fault: xmlrpc.client.Fault) -> DownstreamError:
        code = fault.faultCode if isinstance(fault.faultCode, int) else 0
        detail = self.detail(fault.faultString)
        if is_general(code) and self._credentials_refused():
            error: DownstreamError = AuthenticationError(
                f"{_AUTH_REFUSED} (fault {code}: {detail})", operation=method
            )
        else:
            error = refusal(method, code, detail)
        error.code = code
        return error

    def _credentials_refused(self) -> bool:
        """Whether a harmless call is refused too: then the token or the address is."""
        try:
            remote: Callable[..., object] = getattr(self._proxy(), "api.isUserExists")
            remote(self._token.get_secret_value(), _PROBE_USER)
        except xmlrpc.client.Fault:
            return True
        except (OSError, http.client.HTTPException, ExpatError, xmlrpc.client.ProtocolError):
            return False
        return False

    def _classify_status(self, method: str, status: int, reason: str) -> DownstreamError:
        detail = f"HTTP {status} {self.detail(reason)}".rstrip()
        if status >= _SERVER_ERROR or status in _TRANSIENT_HTTP_STATUSES:
            return TransientError(detail, operation=method)
        if status in _AUTH_HTTP_STATUSES:
            return AuthenticationError(detail, operation=method)
        return PermanentError(detail, operation=method)

    def detail(self, value: object) -> str:
        """Text for an error message: single line, bounded, without the token."""
        text = " ".join(str(value).split())
        secret = self._token.get_secret_value()
        text = text.replace(secret, "[redacted]")
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 3] + "..."
        return text

    def _proxy(self) -> xmlrpc.client.ServerProxy:
        proxy = cast("xmlrpc.client.ServerProxy | None", getattr(self._local, "proxy", None))
        if proxy is None:
            transport = timeout_transport(self._url, self._timeout, self._ssl_context)
            proxy = xmlrpc.client.ServerProxy(self._url, transport=transport, allow_none=False)
            self._local.proxy = proxy
        return proxy

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        _log.warning(
            "papercut_call_retry",
            operation=state.args[0] if state.args else None,
            attempt=state.attempt_number,
            error=str(error) if isinstance(error, DownstreamError) else type(error).__name__,
        )


def as_bool(method: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise PermanentError("unexpected response type, expected a boolean", operation=method)
    return value


def string_list(method: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PermanentError(
            "unexpected response type, expected a list of strings", operation=method
        )
    return cast("list[str]", value)
