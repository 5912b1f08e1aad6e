"""Liveness, readiness and what model is being served."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app.deps import BundleDep
from app.manifest import MANIFEST_EXAMPLE, Manifest

router = APIRouter(tags=["estado"])


class Estado(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "modelo": "rf-2b5fe44d0743"}]}
    )

    status: str
    modelo: str | None = None


class Modelo(Manifest):
    """The bundle's manifest, plus the engine serving it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**MANIFEST_EXAMPLE, "engine": "onnxruntime"}]}
    )

    engine: str


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
    return Modelo(**bundle.manifest.model_dump(), engine=bundle.engine.name)
