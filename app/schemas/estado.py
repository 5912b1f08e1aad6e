"""What the status routes answer: liveness/readiness (``Estado``) and the model served
(``Modelo``)."""

from pydantic import BaseModel, ConfigDict

from app.schemas.manifest import MANIFEST_EXAMPLE, Manifest


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
