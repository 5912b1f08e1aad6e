"""Liveness and readiness."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas.estado import Estado

router = APIRouter(tags=["estado"])


@router.get("/health", summary="Liveness")
async def get_health(request: Request) -> Estado:
    """Alive: the process answers (and which model it serves, once it serves one)."""
    bundle = request.app.state.bundle
    return Estado(estado="ok", modelo=bundle.version if bundle else None)


@router.get(
    "/ready",
    summary="Readiness",
    responses={503: {"model": Estado, "description": "The model is not loaded yet."}},
)
async def get_ready(request: Request) -> Any:
    """Ready: the bundle is loaded, verified and warmed; 503 until then."""
    bundle = request.app.state.bundle
    if bundle is None:
        loading = Estado(estado="loading")
        return JSONResponse(loading.model_dump(mode="json"), status_code=503)
    return Estado(estado="ready", modelo=bundle.version)
