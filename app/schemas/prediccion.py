"""What ``/predecir`` and ``/predecir/lote`` take and answer."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.base import RequestModel
from app.schemas.formulario import FORMULARIO_EJEMPLO, Formulario

EJEMPLO_FECHA = "2026-11-23T09:30:00.123456Z"
EJEMPLO_MODELO = "rf-2b5fe44d0743"


class Intervalo(BaseModel):
    """A calibrated prediction interval: for homes like the training data, the true price
    falls inside it ``nivel`` of the time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"inferior": 353_300.0, "superior": 598_100.0, "nivel": 0.8}]
        }
    )

    inferior: float = Field(description="Lower bound, EUR.")
    superior: float = Field(description="Upper bound, EUR.")
    nivel: float = Field(description="Share of true prices inside the interval (0.8 = 80 %).")


class Zona(BaseModel):
    """The area: the median €/m² of the training homes near this one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "precio_m2_mediano": 5_312.0,
                    "viviendas": 41,
                    "radio_km": 0.52,
                    "diferencia": -0.07,
                }
            ]
        }
    )

    precio_m2_mediano: float = Field(description="Median asking price per built m², EUR.")
    viviendas: int = Field(description="Training homes it is the median of (at least 5).")
    radio_km: float = Field(description="Every one of those homes lies within this distance.")
    diferencia: float = Field(
        description="This valuation's €/m² against the median, as a fraction (-0.07 = 7 % less)."
    )


class Advertencia(BaseModel):
    """Something unlike the training data, which makes the price less reliable."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "campo": "superficie_construida",
                    "valor": 1_500.0,
                    "minimo": 25.0,
                    "maximo": 600.0,
                    "mensaje": "superficie_construida = 1500.0 is outside what the model was "
                    "trained on (25.0 to 600.0): the price is less reliable.",
                }
            ]
        }
    )

    campo: str = Field(
        description="A Formulario field, a ratio of two (m2_por_habitacion...), ubicacion, "
        "or desconocidos (fields left unknown)."
    )
    valor: float | None = Field(description="The value sent (null for ubicacion and desconocidos).")
    minimo: float | None = Field(description="Smallest value in training (null for ubicacion).")
    maximo: float | None = Field(description="Largest value in training (null for ubicacion).")
    mensaje: str = Field(description="In plain words (Spanish with Accept-Language: es).")


class Contribucion(BaseModel):
    """How much one feature moved the price from the forest's average, in EUR."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"variable": "ubicacion", "valor": [40.4168, -3.7038], "efecto": 91_250.4}]
        }
    )

    variable: str = Field(description="A Formulario field, or ubicacion (latitud and longitud).")
    valor: Any = Field(
        description="Its value as sent ([latitud, longitud] for ubicacion; null when "
        "unknown, and then efecto is what not knowing it did to the price)."
    )
    efecto: float = Field(description="EUR added to (or taken from) the average price.")


TESTIGO_EJEMPLO: dict[str, Any] = {
    "distancia_m": 140,
    "latitud": 40.41771,
    "longitud": -3.70254,
    "superficie_construida": 90.0,
    "habitaciones": 3,
    "condicion": "En buen estado",
    "precio": 452_000.0,
    "precio_m2": 5_022.22,
}


class Testigo(BaseModel):
    """A comparable home: a training home coarsened (price moved by up to ±2.5 % and
    rounded to €1,000, location moved 30-60 m), never a training row as it was."""

    model_config = ConfigDict(json_schema_extra={"examples": [TESTIGO_EJEMPLO]})

    distancia_m: int = Field(description="Metres from the home appraised, in a straight line.")
    latitud: float
    longitud: float
    superficie_construida: float = Field(description="Built area, m².")
    habitaciones: int
    condicion: str
    precio: float = Field(description="Asking price, EUR (coarsened).")
    precio_m2: float = Field(description="precio per built m², EUR.")


TESTIGOS_EJEMPLO: dict[str, Any] = {
    "viviendas": [TESTIGO_EJEMPLO],
    "mediana_precio_m2": 5_022.22,
    "aviso": None,
}


class Testigos(BaseModel):
    """The training homes most comparable to this one: near, and alike in built area,
    rooms and condition (most comparable first)."""

    model_config = ConfigDict(json_schema_extra={"examples": [TESTIGOS_EJEMPLO]})

    viviendas: list[Testigo] = Field(
        description="Up to 6; empty for a model trained without testigos."
    )
    mediana_precio_m2: float | None = Field(
        default=None, description="Their median €/m², EUR (null when there are none)."
    )
    aviso: str | None = Field(
        default=None,
        description="Why there are fewer than 6, or none (Spanish with Accept-Language: es); "
        "null when there are 6.",
    )


Confianza = Literal["alta", "media", "baja"]

PREDICCION_EJEMPLO: dict[str, Any] = {
    "precio": 470_526.32,
    "fecha": EJEMPLO_FECHA,
    "modelo": EJEMPLO_MODELO,
    "intervalo": {"inferior": 353_300.0, "superior": 598_100.0, "nivel": 0.8},
    "precio_m2": 4_952.91,
    "zona": {"precio_m2_mediano": 5_312.0, "viviendas": 41, "radio_km": 0.52, "diferencia": -0.07},
    "advertencias": [],
    "desconocidos": [],
    "testigos": TESTIGOS_EJEMPLO,
    "confianza": "alta",
}


class Prediccion(BaseModel):
    """The appraisal of one home: the price, its range, the area, and any warnings; with
    ``?explicar=true`` also what drives it (``base`` + ``contribuciones`` = ``precio``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                PREDICCION_EJEMPLO,
                {
                    **PREDICCION_EJEMPLO,
                    "base": 392_181.6,
                    "contribuciones": [
                        {"variable": "ubicacion", "valor": [40.4168, -3.7038], "efecto": 91_250.4},
                        {"variable": "superficie_construida", "valor": 95.0, "efecto": -12_905.68},
                    ],
                },
            ]
        }
    )

    precio: float = Field(description="Estimated asking price in EUR.", examples=[412_500.0])
    fecha: datetime = Field(description="When the prediction was made (UTC).")
    modelo: str = Field(description="Version of the model bundle that answered.")
    intervalo: Intervalo | None = Field(
        default=None, description="Calibrated range; null for a bundle trained without one."
    )
    precio_m2: float = Field(default=0.0, description="precio per built m², EUR.")
    zona: Zona | None = Field(
        default=None, description="The area's median €/m²; null where no training home is near."
    )
    advertencias: list[Advertencia] = Field(
        default_factory=list, description="Empty when the home is like the training data."
    )
    desconocidos: list[str] = Field(
        default_factory=list,
        description="The fields sent as unknown (left out or null): baños, antiguedad, "
        "superficie_util. The interval is calibrated for homes with these unknown, so it is "
        "wider; an advertencia says so.",
    )
    testigos: Testigos | None = Field(
        default=None,
        description="Comparable homes that support the price; viviendas is empty, and aviso "
        "says why, for a model trained without them.",
    )
    confianza: Confianza | None = Field(
        default=None,
        description="alta, media or baja: from the interval's width relative to the price, "
        "and baja when an advertencia says the home is unlike the training data; "
        "GET /modelo states each grade's measured error (confianza). Null for a model "
        "trained without grades.",
    )
    base: float | None = Field(
        default=None,
        description="With ?explicar=true: the forest's average price, EUR.",
        exclude_if=lambda value: value is None,
    )
    contribuciones: list[Contribucion] | None = Field(
        default=None,
        description="With ?explicar=true: each feature's effect, largest first; "
        "base + the effects = precio, to the cent.",
        exclude_if=lambda value: value is None,
    )


class ParametrosPrediccion(BaseModel):
    """Query parameters of ``/predecir``."""

    model_config = ConfigDict(extra="forbid")

    explicar: bool = Field(
        default=False, description="Also answer base and contribuciones (what drives the price)."
    )


class Lote(RequestModel):
    """Many homes in one call; the answer keeps their order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"formularios": [FORMULARIO_EJEMPLO]}]}
    )
    rows_field = "formularios"

    # fail_fast: a batch is refused at its first bad home, whose every problem is named;
    # validating the rest would cost time and memory for nothing.
    formularios: list[Formulario] = Field(min_length=1, fail_fast=True)


class ParametrosLote(BaseModel):
    """Query parameters of ``/predecir/lote``."""

    model_config = ConfigDict(extra="forbid")

    detalle: bool = Field(
        default=False, description="Answer resultados, the full Prediccion of each home."
    )
    explicar: bool = Field(
        default=False, description="With detalle: also base and contribuciones for each home."
    )


class PrediccionLote(BaseModel):
    """One price per home of the batch, in the order they were sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "precios": [470_526.32, 312_004.5],
                    "fecha": EJEMPLO_FECHA,
                    "modelo": EJEMPLO_MODELO,
                }
            ]
        }
    )

    precios: list[float]
    fecha: datetime
    modelo: str


class PrediccionLoteDetalle(BaseModel):
    """With ``?detalle=true``: the full appraisal of each home, in the order sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resultados": [PREDICCION_EJEMPLO],
                    "fecha": EJEMPLO_FECHA,
                    "modelo": EJEMPLO_MODELO,
                }
            ]
        }
    )

    resultados: list[Prediccion]
    fecha: datetime
    modelo: str
