"""scim2-server (python-scim) served as an ASGI app, the peer of the benchmark.

The app keeps its resources in memory (``AsyncInMemoryStorage``), serves the default
schemas and resource types of RFC 7643 (User with the enterprise extension, Group) and
accepts one static bearer token, so that it pays for authentication like printsync does.

Run it with ``uvicorn bench.peer:app``; the SCIM base URL is ``http://HOST:PORT/v2``.
The token comes from the ``BENCH_SCIM_TOKEN`` environment variable; without it every
request is accepted.
"""

from __future__ import annotations

import hmac
import os

from scim2_models import UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.utils import load_default_provider

TOKEN_ENV = "BENCH_SCIM_TOKEN"
BASE_PATH = "/v2"


class BearerTokenASGIApplication(ASGIApplication):
    """The scim2-server ASGI application, refusing requests without the bearer token."""

    def __init__(self, token: str | None) -> None:
        super().__init__(AsyncInMemoryStorage(), load_default_provider())
        self._token = token.encode() if token else None

    def check_auth(self, request: ScimRequest) -> None:
        if self._token is None:
            return
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            raise UnauthorizedException


def create_app(token: str | None = None) -> BearerTokenASGIApplication:
    """Build the peer app; ``token`` defaults to the ``BENCH_SCIM_TOKEN`` variable."""
    return BearerTokenASGIApplication(token if token is not None else os.environ.get(TOKEN_ENV))


app = create_app()
