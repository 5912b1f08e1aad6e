"""Request bodies validated straight from their JSON bytes by the schema, at a cost bounded
by their size.

pydantic parses and validates in one pass (in Rust), which the dispatcher uses, so a body
gets the same answer whichever serves it. Before that, a batch with more objects than the
row limit allows is refused by counting them (a batch's rows are JSON objects; none of
them contains another). The body is validated by its model's lenient twin
(``app.schemas.base``), which stops a batch at its first bad row (``fail_fast``) and
skips unknown fields; missing fields are then named here, and unknown ones found by
comparing the keys the body holds (its colons, outside any string a valid body can
have) with those the schema took. Up to ``MAX_LOCATED`` unknown fields are located, by a
second pass that keeps them; more get one summary problem. No answer lists more than
``MAX_PROBLEMS`` problems; the last says how many more there were.
"""

from functools import cache
from typing import Any, TypeVar, get_args

import numpy as np
from pydantic import BaseModel, ValidationError

from app.refusals import InvalidInputError, too_many_rows
from app.schemas.base import RequestModel, lenient
from app.tracing import span

ModelT = TypeVar("ModelT", bound=RequestModel)
MAX_PROBLEMS = 20
MAX_LOCATED = 200  # unknown fields located one by one; past this, one summary problem
NUMPY_COUNT_FROM_BYTES = 8 * 1024  # bodies counted by numpy (``_occurrences``)
Problem = dict[str, Any]


def parse_json(model: type[ModelT], body: bytes, max_rows: int | None = None) -> ModelT:
    """``body`` validated as ``model``, or ``InvalidInputError`` locating each problem.
    A batch model (``rows_field``) takes at most ``max_rows`` rows."""
    with span("tasador.validation"):
        return _parse_json(model, body, max_rows)


def _parse_json(model: type[ModelT], body: bytes, max_rows: int | None) -> ModelT:
    if not body:
        raise InvalidInputError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if model.rows_field is not None and max_rows is not None:
        objects = _occurrences(body, b"{") - 1  # the batch itself is one
        if objects > max_rows:
            raise too_many_rows(objects, max_rows, model.rows_field)
    parsed = _validate(lenient(model, "ignore"), body)
    unknown = _occurrences(body, b":") - _keys(parsed)
    if unknown > MAX_LOCATED:
        raise InvalidInputError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("body",),
                    "msg": f"the body holds about {unknown} fields the schema does not have; "
                    "send only its fields",
                    "input": None,
                    "ctx": {"unknown": unknown},
                }
            ]
        )
    if unknown > 0:  # a colon in a string of an unknown field counts too: look closer
        parsed = _validate(lenient(model, "allow"), body)
    problems = _first_incomplete(parsed, ("body",))
    if problems:
        raise InvalidInputError(_capped(problems, len(problems)))
    return parsed  # type: ignore[return-value]  # the lenient twin is a subclass


def _occurrences(body: bytes, byte: bytes) -> int:
    """How many times ``byte`` occurs in ``body``: numpy compares a large body's bytes
    several times faster than ``bytes.count`` counts them, but its fixed cost per call
    is more than counting a small body."""
    if len(body) < NUMPY_COUNT_FROM_BYTES:
        return body.count(byte)
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == ord(byte)))


def _validate(model: type[ModelT], body: bytes) -> ModelT:
    try:
        # Strict validation accepts a subset of what lax validation does, with the same
        # values, and skips the Python that only lax needs (``Count``): tried first, and a
        # body it refuses is validated again, in lax mode, which words the errors.
        return model.model_validate_json(body, strict=True)
    except ValidationError:
        pass
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        # The count first: the list is built only for the problems shown.
        total = exc.error_count()
        errors: list[Problem] = [dict(e) for e in exc.errors(include_url=False)[:MAX_PROBLEMS]]
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise InvalidInputError(_capped(errors, total)) from None


def _capped(problems: list[Problem], total: int) -> list[Problem]:
    shown = problems[:MAX_PROBLEMS]
    if total > len(shown):
        more = total - len(shown)
        shown.append(
            {
                "type": "too_many_errors",
                "loc": ("body",),
                "msg": f"{more} more problem(s) not shown; fix these first",
                "input": None,
                "ctx": {"not_shown": more},
            }
        )
    return shown


def _keys(model: BaseModel) -> int:
    """How many keys of the body the schema took (each field sent, at any depth)."""
    count = len(model.model_fields_set)
    for name in _nested(type(model)):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            count += _keys(value)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            count += sum(len(item.model_fields_set) for item in value)
    return count


@cache
def _nested(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that may hold models, alone or in a list, in order.

    Only these are looked into: walking every field of every row made counting the
    problems of a large batch cost more than validating it (docs/benchmarks.md)."""
    return tuple(
        name for name, field in model.model_fields.items() if _holds_models(field.annotation)
    )


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(argument) for argument in get_args(annotation))


def _first_incomplete(model: BaseModel, loc: tuple[str | int, ...]) -> list[Problem]:
    """The missing and unknown fields of the first object (in order) that has any."""
    fields = type(model).model_fields
    problems: list[Problem] = []
    if len(model.model_fields_set) < len(fields) or model.__pydantic_extra__:
        problems = [
            {"type": "missing", "loc": (*loc, field.alias or name), "msg": "Field required"}
            for name, field in fields.items()
            if name not in model.model_fields_set and _required(type(model), name)
        ]
        extra = model.__pydantic_extra__ or {}
        problems += [
            _unknown(model, key, value, loc) for key, value in list(extra.items())[:MAX_PROBLEMS]
        ]
        if problems:
            return problems
    for name in _nested(type(model)):
        value = getattr(model, name)
        key = fields[name].alias or name
        if isinstance(value, BaseModel):
            problems = _first_incomplete(value, (*loc, key))
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            complete, deeper = len(type(value[0]).model_fields), _nested(type(value[0]))
            for index, item in enumerate(value):
                # The same test as above, inline: a batch has thousands of rows.
                if len(item.model_fields_set) < complete or item.__pydantic_extra__ or deeper:
                    problems = _first_incomplete(item, (*loc, key, index))
                    if problems:
                        break
        if problems:
            return problems
    return []


def _required(model: type[BaseModel], name: str) -> bool:
    """Whether the strict model (the lenient twin's parent) requires field ``name``."""
    strict = model.__mro__[1]
    return issubclass(strict, BaseModel) and strict.model_fields[name].is_required()


def _unknown(model: BaseModel, name: str, value: Any, loc: tuple[str | int, ...]) -> Problem:
    for field_name, field in type(model).model_fields.items():
        spellings = getattr(field.validation_alias, "choices", [])
        if name in spellings:  # e.g. banos beside baños
            return {
                "type": "extra_forbidden",
                "loc": (*loc, name),
                "msg": f"send either {' or '.join(map(str, spellings))}, not both",
                "input": value,
                "ctx": {"field": field.alias or field_name},
            }
    return {
        "type": "extra_forbidden",
        "loc": (*loc, name),
        "msg": "Extra inputs are not permitted",
        "input": value,
    }
