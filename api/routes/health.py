"""Liveness and readiness probes and the Prometheus scrape (unauthenticated, no tenant data)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from metrics import exposition
from storage import tenants
from storage.errors import StorageError

router = APIRouter()


@router.get("/healthz")
async def live() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def ready(request: Request) -> Response:
    try:
        await tenants.list_all(request.app.state.services.db)
    except (StorageError, OSError) as error:
        return JSONResponse(
            {"status": "unavailable", "reason": type(error).__name__},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    gauges = getattr(request.app.state, "gauges", None)
    if gauges is not None:
        await gauges.refresh(request.app.state.services.db)
    body, content_type = exposition.render(accept=request.headers.get("accept"))
    return Response(body, media_type=content_type)
