"""create_app(settings): routers, error handlers, middleware and the process's services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import console, errors
from api.auth import Authenticator
from api.dependencies import Services
from api.gauges import DatabaseGauges, MoreGauges
from api.middleware import RequestMiddleware
from api.routes import admin, bulk, discovery, groups, health, root, users
from api.settings import ApiSettings
from storage import guard, provisioning_log
from storage.database import Database, open_database
from storage.settings import DatabaseSettings

OnStart = Callable[[Database], None]
UNMEASURED_PATHS = ("/metrics", "/healthz", "/readyz")


def create_app(
    settings: ApiSettings,
    database: DatabaseSettings,
    *,
    on_start: OnStart | None = None,
    default_connector: str | None = None,
    database_gauges: bool = False,
    more_gauges: Sequence[MoreGauges] = (),
) -> FastAPI:
    """The ASGI app. ``on_start`` lets the composition root hook the relay to the database
    (the embedded mode wakes the relay after each commit that recorded effects);
    ``default_connector`` is the connector of the tenants the admin console creates, the
    workers' default, which the API cannot know by itself (None: the console creates none);
    ``database_gauges`` puts the database's gauges on this process's ``/metrics``
    (:mod:`api.gauges`: the embedded mode, where this process is the one endpoint), with
    ``more_gauges`` of the packages the API does not know."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await open_database(
            database.database_url,
            pool_size=database.database_pool_size,
            busy_timeout_ms=database.database_busy_timeout_ms,
        )
        services = Services(
            settings, db, Authenticator(db, settings.auth_cache_seconds), default_connector
        )
        app.state.services = services
        guard.configure(db, settings.guard)
        log = provisioning_log.LogBuffer(settings.provisioning_log, settings.cycles)
        log.start(db)
        app.state.provisioning_log = log
        gauges = DatabaseGauges(settings.health, more_gauges) if database_gauges else None
        app.state.gauges = gauges
        if gauges is not None:
            gauges.register()
        if on_start is not None:
            on_start(db)
        try:
            yield
        finally:
            if gauges is not None:
                gauges.unregister()
            app.state.provisioning_log = None
            await log.close(db)
            await services.close()
            await db.close()

    app = FastAPI(
        title="printsync",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry hooks read the environment on every request; printsync's
        # metrics and request ids are its own (api/middleware.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # No redirects: a trailing slash (``/Users/``, an empty id) is a path of its own, and an
    # unknown one is a SCIM 404. A redirect would count as a 307 and send a client elsewhere.
    app.router.redirect_slashes = False
    errors.install(app)
    # Users and Groups carry nearly all the traffic: plain Starlette routes (api.routes.plain).
    app.router.routes.extend([*users.routes, *groups.routes, *root.routes, *bulk.routes])
    for module in (discovery, health, admin):
        app.include_router(module.router)
    app.router.routes.extend(console.routes())
    app.add_middleware(
        RequestMiddleware, max_body_bytes=settings.max_body_bytes, skip_paths=UNMEASURED_PATHS
    )
    return app
