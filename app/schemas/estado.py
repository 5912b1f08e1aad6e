"""What the status routes answer: liveness/readiness (``Estado``) and the model served
(``Modelo``)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.manifest import MANIFEST_EXAMPLE, Manifest


class Estado(BaseModel):
    """Liveness or readiness, and the model served once there is one."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"estado": "ready", "modelo": "rf-2b5fe44d0743"}]}
    )

    estado: Literal["ok", "ready", "loading"]
    modelo: str | None = Field(
        default=None,
        description="Version of the model served; absent while none is loaded.",
        exclude_if=lambda value: value is None,
    )


ORIGEN_EJEMPLO: dict[str, Any] = {
    "uri": "models:/tasador@champion",
    "run_id": "80c8d1f2a3b44c5d9e0f1a2b3c4d5e6f",
    "nombre": "tasador",
    "version": "3",
}


class Origen(BaseModel):
    """Where the served bundle came from in MLflow (absent for a plain folder)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ORIGEN_EJEMPLO]})

    uri: str = Field(description="The model URI as configured (TASADOR_MODEL_URI).")
    run_id: str | None = Field(default=None, description="The MLflow run that logged it.")
    nombre: str | None = Field(default=None, description="The registered model's name.")
    version: str | None = Field(
        default=None, description="The registered version the URI resolved to."
    )


FIRMA_EJEMPLO: dict[str, Any] = {"clave": "3f0c19e2a4b7d815", "comprobada": True}


class Firma(BaseModel):
    """Who signed the served bundle's manifest (absent for an unsigned bundle)."""

    model_config = ConfigDict(json_schema_extra={"examples": [FIRMA_EJEMPLO]})

    clave: str = Field(description="Id of the Ed25519 key that signed it (16 hex digits).")
    comprobada: bool = Field(
        description="true: checked against TASADOR_TRUSTED_KEYS; false: none are configured, "
        "so the signature was not checked."
    )


class Modelo(Manifest):
    """The bundle's manifest, plus the engine serving it and, from MLflow, its origin."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **MANIFEST_EXAMPLE,
                    "engine": "onnxruntime",
                    "origen": ORIGEN_EJEMPLO,
                    "firma": FIRMA_EJEMPLO,
                }
            ]
        }
    )

    engine: str
    origen: Origen | None = None
    firma: Firma | None = None
