"""Every route of the API, declared once in ``ROUTES``: its method and path, who may call it,
the JSON body and query it takes, the handler that answers it and what the docs say of it.

``app.api.dispatch`` serves them all; ``app.api.docs`` describes them in the OpenAPI
document. A new route is a handler here and its entry in ``ROUTES``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.api.refusal_responses import BODY_ERRORS
from app.bundle.loader import Bundle
from app.config import Settings
from app.i18n import Language
from app.monitoring import Instruments
from app.refusals import InvalidInputError, not_ready
from app.schemas.base import RequestModel
from app.schemas.estado import Estado, Firma, Modelo, Origen
from app.schemas.evaluacion import Evaluacion, PeticionEvaluacion
from app.schemas.formulario import Formulario
from app.schemas.prediccion import (
    Lote,
    ParametrosLote,
    ParametrosPrediccion,
    Prediccion,
    PrediccionLote,
    PrediccionLoteDetalle,
)
from app.service.appraisal import DetailedBatch, Options, appraise, appraise_batch
from app.service.evaluation import evaluate


@dataclass(frozen=True)
class Context:
    """What a handler is served with: the bundle the request was admitted to (None while
    none is loaded, on the routes that do not need one), the settings, the language of
    the answer and the app's Prometheus instruments."""

    bundle: Bundle | None
    settings: Settings
    language: Language
    instruments: Instruments

    @property
    def served(self) -> Bundle:
        """The bundle, on a route that needs one (the dispatcher refused the request
        with 503 when there was none)."""
        if self.bundle is None:
            raise not_ready()
        return self.bundle


# A handler's answer: a model, serialised as JSON, or a response of its own.
Handler = Callable[[Context, Any, Any], BaseModel | Response]


@dataclass(frozen=True)
class Route:
    """One route of the API."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    key: bool = False  # needs an API key, when keys are configured
    model: bool = False  # needs the model loaded (503 with Retry-After before)
    body: type[RequestModel] | None = None  # the JSON body it takes
    params: type[BaseModel] | None = None  # its query parameters
    docs: dict[str, Any] = field(default_factory=dict)  # what else FastAPI documents

    @cached_property
    def _defaults(self) -> BaseModel | None:
        """The query model with every default, built once: most requests send no query."""
        return self.params() if self.params else None

    def parse_params(self, query: bytes) -> BaseModel | None:
        """The query string's parameters, validated as FastAPI validates a query model
        (the last value of each name wins, as in Starlette's ``QueryParams``)."""
        if not query or self.params is None:
            return self._defaults
        try:
            return self.params.model_validate(dict(parse_qsl(query.decode("latin-1"), True)))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            for error in errors:
                error["loc"] = ("query", *error["loc"])
            raise InvalidInputError(errors) from None


def predecir(context: Context, formulario: Formulario, params: ParametrosPrediccion) -> Prediccion:
    """Appraise one home: its estimated asking price in EUR, a calibrated range, the area's
    €/m² and any warnings; with ``?explicar=true`` also what drives the price."""
    appraisal = appraise(context.served, formulario, Options(context.language, params.explicar))
    _count_answered(context.instruments, [appraisal])
    return appraisal


def predecir_lote(
    context: Context, lote: Lote, params: ParametrosLote
) -> PrediccionLote | Response:
    """Appraise many homes in one call, in the order sent: their prices, or with
    ``?detalle=true`` each home's whole appraisal."""
    rows = context.settings.max_batch_rows
    options = Options(context.language, params.explicar)
    result = appraise_batch(context.served, lote, rows, params.detalle, options)
    context.instruments.batch("/predecir/lote", len(lote.formularios))
    if isinstance(result, PrediccionLote):
        context.instruments.priced(result.precios)
        return result
    body = detail_json(result, lambda chunk: _count_answered(context.instruments, chunk))
    return Response(body, media_type="application/json")


def evaluar(context: Context, peticion: PeticionEvaluacion, _: None) -> Evaluacion:
    """RMSE, MAE, R², MAPE and the interval's coverage on the rows sent, beside the
    model's hold-out metrics."""
    result = evaluate(context.served, peticion, context.settings.max_batch_rows)
    context.instruments.batch("/evaluar", len(peticion.muestras))
    return result


def _count_answered(instruments: Instruments, appraisals: Iterable[Prediccion]) -> None:
    """What ``/metrics`` tells of appraisals answered: their prices and their warnings."""
    for appraisal in appraisals:
        instruments.priced(appraisal.precio)
        for advertencia in appraisal.advertencias:
            instruments.warned(advertencia.campo)


def get_modelo(context: Context, _: None, __: None) -> Modelo:
    """The manifest of the bundle being served (version, features, metrics, data), the
    engine serving it, where it came from (MLflow) and who signed it."""
    bundle = context.served
    origin = bundle.origin
    origen = (
        Origen(uri=origin.uri, run_id=origin.run_id, nombre=origin.name, version=origin.version)
        if origin
        else None
    )
    seal = bundle.seal
    firma = Firma(clave=seal.key_id, comprobada=seal.checked) if seal else None
    return Modelo(
        **bundle.manifest.model_dump(), engine=bundle.engine.name, origen=origen, firma=firma
    )


def get_metrics(context: Context, _: None, __: None) -> Response:
    """Prometheus metrics of the service, all its workers' added up."""
    return Response(context.instruments.exposition(), media_type=CONTENT_TYPE_LATEST)


def get_health(context: Context, _: None, __: None) -> Estado:
    """Alive: the process answers (and which model it serves, once it serves one)."""
    bundle = context.bundle
    return Estado(estado="ok", modelo=bundle.version if bundle else None)


def get_ready(context: Context, _: None, __: None) -> Estado | Response:
    """Ready: the bundle is loaded, verified and warmed; 503 until then."""
    if context.bundle is None:
        return JSONResponse(Estado(estado="loading").model_dump(mode="json"), status_code=503)
    return Estado(estado="ready", modelo=context.bundle.version)


_BODY_ROUTE: dict[str, Any] = {"key": True, "model": True}
ROUTES: tuple[Route, ...] = (
    Route("POST", "/predecir", predecir, "Appraise one home", "predicción", **_BODY_ROUTE,
          body=Formulario, params=ParametrosPrediccion,
          docs={"response_model": Prediccion, "responses": BODY_ERRORS}),
    Route("POST", "/predecir/lote", predecir_lote, "Appraise many homes", "predicción",
          **_BODY_ROUTE, body=Lote, params=ParametrosLote,
          docs={"response_model": PrediccionLote | PrediccionLoteDetalle,
                "responses": BODY_ERRORS}),
    Route("POST", "/evaluar", evaluar, "Score the model on homes whose price is known",
          "evaluación", **_BODY_ROUTE, body=PeticionEvaluacion,
          docs={"response_model": Evaluacion, "responses": BODY_ERRORS}),
    Route("GET", "/modelo", get_modelo, "The model served", "estado", key=True, model=True,
          docs={"response_model": Modelo}),
    Route("GET", "/metrics", get_metrics, "Prometheus metrics", "estado", key=True,
          docs={"response_class": Response}),
    Route("GET", "/health", get_health, "Liveness", "estado", docs={"response_model": Estado}),
    Route("GET", "/ready", get_ready, "Readiness", "estado",
          docs={"response_model": Estado, "responses": {
              503: {"model": Estado, "description": "The model is not loaded yet."}}}),
)  # fmt: skip


# Appraisals made and serialised at once in a detailed batch's answer.
CHUNK_ROWS = 500
_APPRAISALS: TypeAdapter[list[Prediccion]] = TypeAdapter(list[Prediccion])
_DETAIL_HEAD = b'{"resultados":['


def to_json(result: BaseModel) -> bytes:
    """A handler's answer, serialised once by pydantic."""
    # model_dump_json() without its str round trip: the same bytes.
    return result.__pydantic_serializer__.to_json(result)


def detail_json(
    batch: DetailedBatch, answered: Callable[[list[Prediccion]], None] = lambda _: None
) -> bytes:
    """The bytes of the whole ``PrediccionLoteDetalle``, its appraisals made and written
    ``CHUNK_ROWS`` at a time (each chunk ``answered``, then dropped): one pydantic call
    over a whole large batch held the GIL long enough to stall the event loop's other
    requests (``app.api.offload``), and all its objects at once pinned memory."""
    parts = []
    for chunk in batch.chunks(CHUNK_ROWS):
        answered(chunk)
        parts.append(_APPRAISALS.dump_json(chunk)[1:-1])
        del chunk
    rest = to_json(batch.head())  # {"resultados":[],"fecha":…}
    if not rest.startswith(_DETAIL_HEAD + b"]"):
        raise AssertionError(f"unexpected shape of a detailed batch: {rest[:40]!r}")
    return _DETAIL_HEAD + b",".join(parts) + rest[len(_DETAIL_HEAD) :]
