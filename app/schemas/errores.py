"""The one shape of every refused request: ``{"detail": [Problema, ...]}``."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
