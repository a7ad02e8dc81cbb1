"""Who may use the admin console: sign-in with the admin token, the session cookie, CSRF tokens.

- The console is on only when ``PRINTSYNC_ADMIN_TOKEN`` is set; otherwise every ``/console``
  path answers 404.
- Signing in posts the admin token (the same check as the JSON admin API,
  :func:`api.auth.admin_token_matches`). A session is a row of ``storage.console_sessions``; the
  browser keeps its secret in the ``printsync_console`` cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Path=/console``, ``Secure`` when the public URL is https) for
  :data:`SESSION_SECONDS`. A new admin token ends every session.
- Every form that changes something carries a CSRF token derived from the session's secret; the
  sign-in form carries one matched against a cookie of its own. A form posted without it, or
  with another, is refused (403) and changes nothing.
- Wrong tokens are counted per client address: after :data:`MAX_FAILURES` within
  :data:`FAILURE_WINDOW_SECONDS` the sign-in refuses further attempts for a while (429).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from api.dependencies import Services
from storage import console_sessions

SESSION_COOKIE: Final = "printsync_console"
SIGN_IN_COOKIE: Final = "printsync_console_signin"
COOKIE_PATH: Final = "/console"
#: How long a session lasts after sign-in.
SESSION_SECONDS: Final = 8 * 3600
#: Wrong admin tokens allowed from one address within the window.
MAX_FAILURES: Final = 10
FAILURE_WINDOW_SECONDS: Final = 300.0
#: The largest form the console reads.
MAX_FORM_BYTES: Final = 64 * 1024

#: Every console response: nothing is loaded from another host, nothing is framed.
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
#: Pages (not the static files) are never cached: one may hold a Secret Token shown once.
NO_STORE: Final = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: the process's services, the session, its CSRF token and the form
    it posted (empty for a GET)."""

    services: Services
    session: console_sessions.Session
    csrf: str
    form: dict[str, str]


def enabled(services: Services) -> str | None:
    """The admin token when the console is on, else None."""
    token = services.settings.admin_token
    return token.get_secret_value() if token is not None else None


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret`` (it reveals nothing of it)."""
    return hmac.new(secret.encode(), b"printsync console csrf", hashlib.sha256).hexdigest()


def not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404, headers=SECURITY_HEADERS)


async def read_form(request: Request) -> dict[str, str]:
    """A posted ``application/x-www-form-urlencoded`` form (the console's only kind); the last
    value of each field. Anything else, or a larger body, reads as an empty form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _session_cookie(response: Response, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def sign_in_csrf(request: Request) -> tuple[str, bool]:
    """The sign-in form's CSRF token: the one its cookie already holds, or a new one (True:
    the cookie must be set)."""
    current = request.cookies.get(SIGN_IN_COOKIE, "")
    if len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(24), True


def set_sign_in_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def sign_in_form_valid(request: Request, form: dict[str, str]) -> bool:
    cookie = request.cookies.get(SIGN_IN_COOKIE, "")
    field = form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), field.encode())


async def open_session(services: Services, response: Response, admin_token: str) -> None:
    """Start a session and give the browser its cookie."""
    session = await console_sessions.start(services.db, admin_token, seconds=SESSION_SECONDS)
    _session_cookie(response, session.secret, SESSION_SECONDS, services.settings.secure_cookies)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


async def close_session(services: Services, response: Response, secret: str) -> None:
    """End the session (sign-out) and clear its cookie."""
    await console_sessions.end(services.db, secret)
    _session_cookie(response, "", 0, services.settings.secure_cookies)


class Throttle:
    """Wrong admin tokens per client address, over a sliding window (one process's view)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        cutoff = time.monotonic() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return times

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= self.limit

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()
        self._recent(client).append(time.monotonic())


Page = Callable[[Request, Visit], Awaitable[Response]]


def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint for signed-in visits only: 404 while the console is off; without a
    live session a GET goes to the sign-in page and anything else is refused; a POST must carry
    the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        admin_token = enabled(services)
        if admin_token is None:
            return not_found()
        secret = request.cookies.get(SESSION_COOKIE, "")
        session = await console_sessions.find(services.db, secret, admin_token) if secret else None
        if session is None:
            if request.method == "GET":
                return RedirectResponse(
                    "/console/sign-in", status_code=303, headers=SECURITY_HEADERS
                )
            return PlainTextResponse(
                "Your console session has ended. Sign in again.",
                status_code=403,
                headers=SECURITY_HEADERS,
            )
        csrf = csrf_token(session.secret)
        form: dict[str, str] = {}
        if request.method == "POST":
            form = await read_form(request)
            if not hmac.compare_digest(form.get("csrf", "").encode(), csrf.encode()):
                return PlainTextResponse(
                    "This form was not sent from the console page (its CSRF token is missing "
                    "or wrong). Nothing was changed. Reload the page and try again.",
                    status_code=403,
                    headers=SECURITY_HEADERS,
                )
        response = await page(request, Visit(services, session, csrf, form))
        response.headers.update(SECURITY_HEADERS)
        return response

    return endpoint


__all__ = [
    "NO_STORE",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "SIGN_IN_COOKIE",
    "Throttle",
    "Visit",
    "close_session",
    "csrf_token",
    "enabled",
    "not_found",
    "open_session",
    "read_form",
    "set_sign_in_cookie",
    "sign_in_csrf",
    "sign_in_form_valid",
    "signed_in",
]
