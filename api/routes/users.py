"""/Users: create, read, list, search, replace, patch and delete."""

from __future__ import annotations

from starlette.routing import Route

from api.routes.resources import Endpoints, resource_routes
from storage import users

ENDPOINTS = Endpoints(users.SPEC)
routes: list[Route] = resource_routes(ENDPOINTS)
