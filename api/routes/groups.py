"""/Groups: create, read, list, search, replace, patch and delete.

Members are read from membership rows only when the projection asks for them, so Entra's
``excludedAttributes=members`` reads never touch a large group's membership. A PATCH answers 204
with the group's new ETag and no body.
"""

from __future__ import annotations

from starlette.routing import Route

from api.routes.resources import Endpoints, resource_routes
from storage import groups

ENDPOINTS = Endpoints(groups.SPEC, patch_status=204)
routes: list[Route] = resource_routes(ENDPOINTS)
