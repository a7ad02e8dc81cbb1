"""/Groups: create, read, list, search, replace, patch and delete.

Members are read from membership rows only when the projection asks for them, so Entra's
``excludedAttributes=members`` reads never touch a large group's membership. A PATCH answers 204
with the group's new ETag and no body.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from api import responses
from api.routes.resources import Endpoints, resource_routes
from api.shaping import Shape
from storage import groups
from storage.resources import Stored


def _patched(stored: Stored) -> Response:
    return responses.empty(204, stored.version)


routes: list[Route] = resource_routes(
    Endpoints(groups.SPEC, shows_members=Shape.wants_members, patched=_patched)
)
