"""``Formulario``: one home to appraise, as clients send it, and the model's feature columns.

Every bound below is a physical or geographic sanity limit, not the training range: the
manifest records the training ranges. Each field carries its example value (``Ejemplo``),
so the schema's example is built from the fields and a new field brings its own.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from app.schemas.base import RequestModel

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


@dataclass(frozen=True)
class Ejemplo:
    """A field's example value; pydantic ignores it, the schema's example is built from it."""

    value: Any


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


@dataclass(frozen=True)
class Count:
    """Marks a whole number, within the bounds given before it:
    ``Annotated[int, Field(ge=0, le=30), Count()]``, or ``int | None`` for an optional one.

    Validated strictly (``app.service.parsing`` tries a body so first), a JSON integer is
    checked by pydantic-core alone, so a batch of valid homes costs no Python call per
    count. Otherwise ``_whole_number`` also takes 3.0 as 3 and words every refusal; strict
    validation accepts a subset of that, with the same values, so a body refused strictly
    is validated again to say why. The bounds stay the field's own (``Ge``/``Le`` in its
    metadata, as ``app.home_files`` reads them); written before this mark, pydantic puts
    them in the integer's schema, inside any ``None``, and not in Python calls around it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        bounded = handler(source)
        if bounded["type"] == "nullable":  # None stays None, in either mode
            return {**bounded, "schema": _whole(bounded["schema"])}
        return _whole(bounded)


def _whole(bounded: CoreSchema) -> CoreSchema:
    """``bounded`` (an integer's schema) in strict mode; ``_whole_number`` first in lax."""
    if bounded["type"] != "int":
        raise TypeError(f"Count marks an int, not a {bounded['type']} schema")
    return core_schema.lax_or_strict_schema(
        lax_schema=core_schema.no_info_before_validator_function(_whole_number, bounded),
        strict_schema={**bounded, "strict": True},
    )


# strict: JSON true or false only (1, "yes" and "true" are refused), like the numbers.
Flag = Annotated[bool, Field(strict=True)]
# strict: a JSON number only (true/"3" are refused); ints are still accepted as floats.
Number = Annotated[float, Field(strict=True)]


class Formulario(RequestModel):
    """One home to appraise. ``banos`` is accepted for ``baños`` (the attribute's name).

    What people often do not know (``baños``, ``antiguedad``, ``superficie_util``) may be
    left out or sent as null: unknown is a value the model handles and the answer names.
    """

    model_config = ConfigDict(
        allow_inf_nan=False,
        frozen=True,
        validate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra=lambda schema, model: schema.update(examples=[ejemplo(model)]),
    )

    latitud: Annotated[Number, Ejemplo(40.4168)] = Field(
        ge=LATITUD_MIN, le=LATITUD_MAX, description="Latitude (WGS84), inside Madrid."
    )
    longitud: Annotated[Number, Ejemplo(-3.7038)] = Field(
        ge=LONGITUD_MIN, le=LONGITUD_MAX, description="Longitude (WGS84), inside Madrid."
    )
    superficie_construida: Annotated[Number, Ejemplo(95.0)] = Field(
        ge=SUPERFICIE_MIN, le=SUPERFICIE_MAX, description="Built area in m²."
    )
    banos: Annotated[int | None, Field(ge=1, le=BANOS_MAX), Count(), Ejemplo(2)] = Field(
        default=None,
        alias="baños",
        validation_alias=AliasChoices("baños", "banos"),
        description="Bathrooms (also accepted as `banos`); left out or null when unknown.",
    )
    habitaciones: Annotated[int, Field(ge=0, le=HABITACIONES_MAX), Count(), Ejemplo(3)] = Field(
        description="Bedrooms; 0 = studio."
    )
    jardin: Annotated[Flag, Ejemplo(False)] = Field(
        description="Has a garden or shared green area."
    )
    antiguedad: Annotated[int | None, Field(ge=0, le=ANTIGUEDAD_MAX), Count(), Ejemplo(45)] = Field(
        default=None,
        description="Age of the building, years; left out or null when unknown.",
    )
    superficie_util: Annotated[Number | None, Ejemplo(82.0)] = Field(
        default=None,
        ge=SUPERFICIE_MIN,
        le=SUPERFICIE_MAX,
        description="Usable area in m², at most the built area; left out or null when unknown.",
    )
    ascensor: Annotated[Flag, Ejemplo(True)] = Field(description="Building has a lift.")
    garaje: Annotated[Flag, Ejemplo(False)] = Field(
        description="Comes with a garage or parking space."
    )
    condicion: Annotated[Condicion, Ejemplo(Condicion.EN_BUEN_ESTADO.value)] = Field(
        description="State of the home."
    )

    @field_validator("superficie_util")
    @classmethod
    def _util_within_construida(cls, value: float | None, info: ValidationInfo) -> float | None:
        construida = info.data.get("superficie_construida")
        if value is not None and construida is not None and value > construida:
            raise PydanticCustomError(
                "superficie_util_too_large",
                "superficie_util ({util}) cannot exceed superficie_construida ({construida})",
                {"util": value, "construida": construida},
            )
        return value


def ejemplo(model: Any) -> dict[str, Any]:
    """A model's example, from the ``Ejemplo`` of each of its fields, by wire name."""
    example = {}
    for name, field in model.model_fields.items():
        marks = [m for m in field.metadata if isinstance(m, Ejemplo)]
        if marks:
            example[field.alias or name] = marks[0].value
    return example


FORMULARIO_EJEMPLO: dict[str, Any] = ejemplo(Formulario)
