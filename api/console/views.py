"""Rendering the console's pages: the Jinja2 templates shipped with the package, and what every
page shares (the UTC times, the state words, the security headers)."""

from __future__ import annotations

from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from api.console.access import NO_STORE, SECURITY_HEADERS

#: Health states as the console names them (a state it does not know is shown as it is).
HEALTH_WORDS: Final = {
    "healthy": "Healthy",
    "degraded": "Degraded",
    "failing": "Failing",
    "idle": "Idle",
}


def utc(stamp: str | None) -> str:
    """A stored time as the console shows it: ``2026-01-02 03:04:05 UTC``."""
    if not stamp:
        return "never"
    return stamp[:19].replace("T", " ") + " UTC"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("api.console", "templates"),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = utc
    env.globals["health_words"] = HEALTH_WORDS
    return env


_templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    """A console page: never cached, with the console's security headers. Pages are for
    signed-in visits (with the navigation and the sign-out button) unless ``context`` says
    ``signed_in: False``."""
    headers = {**SECURITY_HEADERS, **NO_STORE}
    return _templates.TemplateResponse(
        request, template, {"signed_in": True, **context}, status_code=status, headers=headers
    )


__all__ = ["HEALTH_WORDS", "render", "utc"]
