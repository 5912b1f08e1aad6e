"""Request bodies validated straight from their JSON bytes by the schema.

pydantic parses and validates in one pass (in Rust), which both transports use, so a body
gets the same answer whichever serves it.
"""

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import InvalidInputError

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_json(model: type[ModelT], body: bytes) -> ModelT:
    """``body`` validated as ``model``, or ``InvalidInputError`` locating each problem."""
    if not body:
        raise InvalidInputError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise InvalidInputError(errors) from None
