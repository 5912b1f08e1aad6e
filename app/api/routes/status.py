"""Liveness and readiness."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas.estado import Estado

router = APIRouter(tags=["estado"])


@router.get("/health")
async def get_health() -> Estado:
    """Alive: the process answers. Says nothing about the model."""
    return Estado(status="ok")


@router.get(
    "/ready",
    responses={503: {"model": Estado, "description": "The model is not loaded yet."}},
)
async def get_ready(request: Request) -> Any:
    """Ready: the bundle is loaded, verified and warmed; 503 until then."""
    bundle = request.app.state.bundle
    if bundle is None:
        return JSONResponse({"status": "loading", "modelo": None}, status_code=503)
    return Estado(status="ready", modelo=bundle.version)
