"""What ``/evaluar`` takes and answers, and the accuracy figures (``Metricas``) it shares
with the manifest."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.base import RequestModel
from app.schemas.formulario import FORMULARIO_EJEMPLO, Formulario, Number
from app.schemas.prediccion import EJEMPLO_MODELO

# Any true price a home in Madrid could have; the metrics of such prices are always finite.
PRECIO_MIN, PRECIO_MAX = 1_000.0, 1_000_000_000.0


class Muestra(Formulario):
    """A home with its true asking price, for evaluation."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**FORMULARIO_EJEMPLO, "precio": 398_000.0}]}
    )

    precio: Number = Field(
        ge=PRECIO_MIN, le=PRECIO_MAX, description="True asking price in EUR (1,000 to 10⁹)."
    )


class PeticionEvaluacion(RequestModel):
    """Labelled homes to score the model on."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "muestras": [
                        {**FORMULARIO_EJEMPLO, "precio": 398_000.0},
                        {
                            **FORMULARIO_EJEMPLO,
                            "superficie_construida": 60.0,
                            "superficie_util": 52.0,
                            "precio": 255_000.0,
                        },
                    ]
                }
            ]
        },
    )

    rows_field = "muestras"

    # fail_fast: refused at the first bad row, as a Lote is.
    muestras: list[Muestra] = Field(min_length=2, fail_fast=True)


METRICAS_EJEMPLO: dict[str, Any] = {"rmse": 136_893.8, "mae": 83_768.4, "r2": 0.879, "mape": 0.213}


class Metricas(BaseModel):
    """Regression metrics; ``mape`` is a fraction (0.19 = 19 %)."""

    model_config = ConfigDict(json_schema_extra={"examples": [METRICAS_EJEMPLO]})

    rmse: float
    mae: float
    r2: float | None = Field(description="None when the true prices are all equal.")
    mape: float


class Evaluacion(Metricas):
    """Metrics on the rows sent, beside the hold-out metrics recorded at training time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rmse": 52_410.0,
                    "mae": 38_990.0,
                    "r2": 0.91,
                    "mape": 0.12,
                    "filas": 2,
                    "cobertura": 1.0,
                    "anchura_relativa": 0.58,
                    "validacion": METRICAS_EJEMPLO,
                    "modelo": EJEMPLO_MODELO,
                }
            ]
        }
    )

    filas: int = Field(description="Rows scored.")
    cobertura: float | None = Field(
        default=None,
        description="Share of true prices inside their interval (null: the model has none).",
    )
    anchura_relativa: float | None = Field(
        default=None, description="Mean of (upper - lower) / true price, over the rows sent."
    )
    validacion: Metricas = Field(description="The model's hold-out metrics from training.")
    modelo: str
