"""The routes that take a JSON body, each with the service call that answers it.

Both transports serve these through ``answer``: FastAPI's routes (``app.api.routes``) after
FastAPI has parsed the body, and the ``FastTransport`` straight from ASGI. A new body route
is an entry here plus its documented FastAPI route, which calls ``answer``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.responses import Response

from app.bundle.loader import Bundle
from app.config import Settings
from app.schemas.evaluacion import PeticionEvaluacion
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Lote
from app.service.evaluation import evaluate
from app.service.valuation import appraise, appraise_batch

BodyT = TypeVar("BodyT", bound=BaseModel)


@dataclass(frozen=True)
class BodyOperation(Generic[BodyT]):
    """A ``POST`` route: its path, the body it takes, and the service call answering it."""

    path: str
    body: type[BodyT]
    call: Callable[[Bundle, Settings, BodyT], BaseModel]


def answer(
    operation: BodyOperation[Any], bundle: Bundle, settings: Settings, body: Any
) -> Response:
    """The operation's answer to a validated body, serialised once by pydantic."""
    result = operation.call(bundle, settings, body)
    return Response(result.model_dump_json(), media_type="application/json")


PREDECIR = BodyOperation("/predecir", Formulario, lambda bundle, _, f: appraise(bundle, f))
PREDECIR_LOTE = BodyOperation(
    "/predecir/lote", Lote, lambda bundle, s, lote: appraise_batch(bundle, lote, s.max_batch_rows)
)
EVALUAR = BodyOperation(
    "/evaluar", PeticionEvaluacion, lambda bundle, s, p: evaluate(bundle, p, s.max_batch_rows)
)
OPERATIONS: tuple[BodyOperation[Any], ...] = (PREDECIR, PREDECIR_LOTE, EVALUAR)
