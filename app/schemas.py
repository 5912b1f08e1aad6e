"""Wire formats of the API: what clients send and what they get back.

Names follow the users' domain language (Spanish). Every bound below is a physical or
geographic sanity limit, not the training range: the manifest records the training ranges.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

# Madrid's municipal area (El Pardo to Villaverde, Casa de Campo to Barajas), with a margin.
LATITUD_MIN, LATITUD_MAX = 40.31, 40.65
LONGITUD_MIN, LONGITUD_MAX = -3.89, -3.51
SUPERFICIE_MIN, SUPERFICIE_MAX = 10.0, 5_000.0
HABITACIONES_MAX = 30
BANOS_MAX = 20
ANTIGUEDAD_MAX = 400


class Condicion(StrEnum):
    """State of the home, as the listing portals name it."""

    A_REFORMAR = "A reformar"
    REFORMADO = "Reformado"
    A_ESTRENAR = "A estrenar"
    EN_BUEN_ESTADO = "En buen estado"


def _whole_number(value: Any) -> Any:
    """Accept 3 and 3.0 as a count; refuse 2.5, booleans and strings with a clear message."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError(
                "int_from_float", "Input should be a whole number, got {value}", {"value": value}
            )
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]
# strict: a JSON number only (true/"3" are refused); ints are still accepted as floats.
Number = Annotated[float, Field(strict=True)]

FORMULARIO_EJEMPLO: dict[str, Any] = {
    "latitud": 40.4168,
    "longitud": -3.7038,
    "superficie_construida": 95.0,
    "baños": 2,
    "habitaciones": 3,
    "jardin": False,
    "antiguedad": 45,
    "superficie_util": 82.0,
    "ascensor": True,
    "garaje": False,
    "condicion": "En buen estado",
}


class Formulario(BaseModel):
    """One home to appraise. ``banos`` is accepted for ``baños``."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        frozen=True,
        json_schema_extra={"examples": [FORMULARIO_EJEMPLO]},
    )

    latitud: Number = Field(
        ge=LATITUD_MIN, le=LATITUD_MAX, description="Latitude (WGS84), inside Madrid."
    )
    longitud: Number = Field(
        ge=LONGITUD_MIN, le=LONGITUD_MAX, description="Longitude (WGS84), inside Madrid."
    )
    superficie_construida: Number = Field(
        ge=SUPERFICIE_MIN, le=SUPERFICIE_MAX, description="Built area in m²."
    )
    baños: Count = Field(
        ge=1,
        le=BANOS_MAX,
        validation_alias=AliasChoices("baños", "banos"),
        description="Bathrooms (also accepted as `banos`).",
    )
    habitaciones: Count = Field(ge=0, le=HABITACIONES_MAX, description="Bedrooms; 0 = studio.")
    jardin: bool = Field(description="Has a garden or shared green area.")
    antiguedad: Count = Field(ge=0, le=ANTIGUEDAD_MAX, description="Age of the building, years.")
    superficie_util: Number = Field(
        ge=SUPERFICIE_MIN,
        le=SUPERFICIE_MAX,
        description="Usable area in m²; at most the built area.",
    )
    ascensor: bool = Field(description="Building has a lift.")
    garaje: bool = Field(description="Comes with a garage or parking space.")
    condicion: Condicion = Field(description="State of the home.")

    @field_validator("superficie_util")
    @classmethod
    def _util_within_construida(cls, value: float, info: ValidationInfo) -> float:
        construida = info.data.get("superficie_construida")
        if construida is not None and value > construida:
            raise PydanticCustomError(
                "superficie_util_too_large",
                "superficie_util ({util}) cannot exceed superficie_construida ({construida})",
                {"util": value, "construida": construida},
            )
        return value


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


class Muestra(Formulario):
    """A home with its true asking price, for evaluation."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**FORMULARIO_EJEMPLO, "precio": 398_000.0}]}
    )

    precio: Number = Field(gt=0, description="True asking price in EUR.")


class PeticionEvaluacion(BaseModel):
    """Labelled homes to score the model on."""

    model_config = ConfigDict(
        extra="forbid",
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

    muestras: list[Muestra] = Field(min_length=2)


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
                    "n": 2,
                    "holdout": METRICAS_EJEMPLO,
                    "modelo": EJEMPLO_MODELO,
                }
            ]
        }
    )

    n: int = Field(description="Rows scored.")
    holdout: Metricas = Field(description="The model's hold-out metrics from training.")
    modelo: str


class Problema(BaseModel):
    """One thing wrong with a request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "loc": ["body", "superficie_util"],
                    "msg": "superficie_util (120.0) cannot exceed superficie_construida (95.0)",
                    "type": "superficie_util_too_large",
                    "input": 120.0,
                    "ctx": {"util": 120.0, "construida": 95.0},
                }
            ]
        }
    )

    loc: list[str | int] = Field(
        description="Where: body, then field names and row indexes.",
        examples=[["body", "superficie_util"]],
    )
    msg: str = Field(
        description="What is wrong.",
        examples=["superficie_util (120.0) cannot exceed superficie_construida (95.0)"],
    )
    type: str = Field(description="Machine-readable kind.", examples=["superficie_util_too_large"])
    input: Any = Field(
        default=None, description="The offending value, when it is a scalar.", examples=[120.0]
    )
    ctx: dict[str, Any] | None = Field(
        default=None,
        description="Values the message uses.",
        examples=[{"util": 120.0, "construida": 95.0}],
    )


class Errores(BaseModel):
    """The body of every 4xx/5xx answer: one entry per problem found."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": [
                        {
                            "loc": ["body", "condicion"],
                            "msg": "Input should be 'A reformar', 'Reformado', 'A estrenar' "
                            "or 'En buen estado'",
                            "type": "enum",
                            "input": "Nuevo",
                        }
                    ]
                }
            ]
        }
    )

    detail: list[Problema]
