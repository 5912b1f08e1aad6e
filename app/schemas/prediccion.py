"""What ``/predecir`` and ``/predecir/lote`` take and answer."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.formulario import FORMULARIO_EJEMPLO, Formulario

EJEMPLO_TIMESTAMP = "2026-11-23T09:30:00.123456Z"
EJEMPLO_MODELO = "rf-2b5fe44d0743"


class Prediccion(BaseModel):
    """The appraisal of one home."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"precio": 470_526.32, "timestamp": EJEMPLO_TIMESTAMP, "modelo": EJEMPLO_MODELO}
            ]
        }
    )

    precio: float = Field(description="Estimated asking price in EUR.", examples=[412_500.0])
    timestamp: datetime = Field(description="When the prediction was made (UTC).")
    modelo: str = Field(description="Version of the model bundle that answered.")


class Lote(BaseModel):
    """Many homes in one call; the answer keeps their order."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"formularios": [FORMULARIO_EJEMPLO]}]}
    )

    formularios: list[Formulario] = Field(min_length=1)


class PrediccionLote(BaseModel):
    """One price per home of the batch, in the order they were sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "precios": [470_526.32, 312_004.5],
                    "timestamp": EJEMPLO_TIMESTAMP,
                    "modelo": EJEMPLO_MODELO,
                }
            ]
        }
    )

    precios: list[float]
    timestamp: datetime
    modelo: str
