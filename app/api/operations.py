"""The routes that take a JSON body, each with the service call that answers it.

Both transports serve these through ``answer``: FastAPI's routes (``app.api.routes``) after
FastAPI has parsed the body and the query, and the ``FastTransport`` straight from ASGI.
A new body route is an entry here plus its documented FastAPI route, which calls
``answer``.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response

from app.bundle.loader import Bundle
from app.config import Settings
from app.errors import InvalidInputError
from app.i18n import Language
from app.monitoring import Instruments
from app.schemas.evaluacion import PeticionEvaluacion
from app.schemas.formulario import Formulario
from app.schemas.prediccion import (
    Lote,
    ParametrosLote,
    ParametrosPrediccion,
    Prediccion,
    PrediccionLote,
    PrediccionLoteDetalle,
)
from app.service.evaluation import evaluate
from app.service.valuation import Options, appraise, appraise_batch

BodyT = TypeVar("BodyT", bound=BaseModel)
ParamsT = TypeVar("ParamsT", bound=BaseModel)


class NoParametros(BaseModel):
    """A route that takes no query parameters (any sent are ignored, as FastAPI does)."""


@dataclass(frozen=True)
class Context:
    """What a request is served with: the bundle the gate admitted it to, the settings,
    the language of the answer and the app's Prometheus instruments."""

    bundle: Bundle
    settings: Settings
    language: Language
    instruments: Instruments


@dataclass(frozen=True)
class BodyOperation(Generic[BodyT, ParamsT]):
    """A ``POST`` route: its path, the body and query it takes, and the service call."""

    path: str
    body: type[BodyT]
    params: type[ParamsT]
    call: Callable[[Context, BodyT, ParamsT], BaseModel]

    @cached_property
    def _defaults(self) -> ParamsT:
        """The query model with every default, built once: most requests send no query."""
        return self.params()

    def parse_params(self, query: bytes) -> ParamsT:
        """The query string's parameters, validated as FastAPI validates a query model
        (which keeps the last value of each name, as Starlette's ``QueryParams`` does)."""
        if not query:
            return self._defaults
        try:
            return self.params.model_validate(dict(parse_qsl(query.decode("latin-1"), True)))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            for error in errors:
                error["loc"] = ("query", *error["loc"])
            raise InvalidInputError(errors) from None


def answer(
    operation: BodyOperation[Any, Any], context: Context, body: Any, params: Any
) -> Response:
    """The operation's answer to a validated body, as a response."""
    return Response(answer_json(operation, context, body, params), media_type="application/json")


def answer_json(
    operation: BodyOperation[Any, Any], context: Context, body: Any, params: Any
) -> bytes:
    """The operation's answer to a validated body, serialised once by pydantic."""
    result = operation.call(context, body, params)
    _measure(operation, context.instruments, body, result)
    if isinstance(result, PrediccionLoteDetalle):
        return _detail_json(result)
    # model_dump_json() without its str round trip: the same bytes.
    return result.__pydantic_serializer__.to_json(result)


# Appraisals serialised at once in a detailed batch's answer.
CHUNK_ROWS = 500
_APPRAISALS: TypeAdapter[list[Prediccion]] = TypeAdapter(list[Prediccion])
_DETAIL_HEAD = b'{"resultados":['


def _detail_json(result: PrediccionLoteDetalle) -> bytes:
    """The same bytes as serialising ``result`` at once, written ``CHUNK_ROWS`` appraisals
    at a time and each chunk dropped once written (``result`` is left without them).

    Serialising 10,000 explained appraisals in one pydantic call, then freeing them at
    once, held the GIL ~50 ms each, time the event loop's thread (``/health``) waited;
    by chunks, ~12 ms at most (``app.api.offload``)."""
    rows = result.resultados
    parts = []
    while rows:
        parts.append(_APPRAISALS.dump_json(rows[:CHUNK_ROWS])[1:-1])
        del rows[:CHUNK_ROWS]
    rest = result.__pydantic_serializer__.to_json(result)  # {"resultados":[],"fecha":…}
    if not rest.startswith(_DETAIL_HEAD + b"]"):
        raise AssertionError(f"unexpected shape of a detailed batch: {rest[:40]!r}")
    return _DETAIL_HEAD + b",".join(parts) + rest[len(_DETAIL_HEAD) :]


def _measure(
    operation: BodyOperation[Any, Any], instruments: Instruments, body: Any, result: BaseModel
) -> None:
    """What ``/metrics`` tells of an answer: a batch's rows, the prices, the warnings."""
    rows_field = type(body).rows_field
    if rows_field is not None:
        instruments.batch(operation.path, len(getattr(body, rows_field)))
    if isinstance(result, Prediccion):
        instruments.priced(result.precio)
    elif isinstance(result, PrediccionLote):
        instruments.priced(result.precios)
    elif isinstance(result, PrediccionLoteDetalle):
        instruments.priced(appraisal.precio for appraisal in result.resultados)
    for campo in _warned_fields(result):
        instruments.warned(campo)


def _warned_fields(result: BaseModel) -> Iterator[str]:
    appraisals = (
        [result]
        if isinstance(result, Prediccion)
        else result.resultados
        if isinstance(result, PrediccionLoteDetalle)
        else []
    )
    for appraisal in appraisals:
        for advertencia in appraisal.advertencias:
            yield advertencia.campo


def _predecir(context: Context, formulario: Formulario, params: ParametrosPrediccion) -> BaseModel:
    options = Options(context.language, params.explicar)
    return appraise(context.bundle, formulario, options)


def _predecir_lote(context: Context, lote: Lote, params: ParametrosLote) -> BaseModel:
    options = Options(context.language, params.explicar)
    rows = context.settings.max_batch_rows
    return appraise_batch(context.bundle, lote, rows, params.detalle, options)


def _evaluar(context: Context, peticion: PeticionEvaluacion, _: NoParametros) -> BaseModel:
    return evaluate(context.bundle, peticion, context.settings.max_batch_rows)


PREDECIR = BodyOperation("/predecir", Formulario, ParametrosPrediccion, _predecir)
PREDECIR_LOTE = BodyOperation("/predecir/lote", Lote, ParametrosLote, _predecir_lote)
EVALUAR = BodyOperation("/evaluar", PeticionEvaluacion, NoParametros, _evaluar)
OPERATIONS: tuple[BodyOperation[Any, Any], ...] = (PREDECIR, PREDECIR_LOTE, EVALUAR)
