"""What the status routes answer: liveness/readiness (``Estado``) and the model served
(``Modelo``)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

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

    @computed_field(  # type: ignore[prop-decorator]
        description="The same as estado: its former name, kept for the clients that read it.",
        json_schema_extra={"deprecated": True},
    )
    @property
    def status(self) -> str:
        """``estado``, under its former name."""
        return self.estado


class Modelo(Manifest):
    """The bundle's manifest, plus the engine serving it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**MANIFEST_EXAMPLE, "engine": "onnxruntime"}]}
    )

    engine: str
