"""Liveness, readiness and what model is being served."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.deps import BundleDep
from app.schemas.estado import Estado, Modelo, Origen

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


@router.get("/modelo")
async def get_modelo(bundle: BundleDep) -> Modelo:
    """The manifest of the bundle being served: version, features, metrics, data."""
    origin = bundle.origin
    origen = (
        Origen(uri=origin.uri, run_id=origin.run_id, nombre=origin.name, version=origin.version)
        if origin
        else None
    )
    return Modelo(**bundle.manifest.model_dump(), engine=bundle.engine.name, origen=origen)
