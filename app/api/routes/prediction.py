"""Prediction routes: one home, or many in one call."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.body import JsonBodyRoute
from app.api.deps import ContextDep, HeavyDep
from app.api.errors import BODY_ERRORS
from app.api.operations import PREDECIR, PREDECIR_LOTE, answer
from app.schemas.formulario import Formulario
from app.schemas.prediccion import (
    Lote,
    ParametrosLote,
    ParametrosPrediccion,
    Prediccion,
    PrediccionLote,
    PrediccionLoteDetalle,
)

router = APIRouter(tags=["predicción"], route_class=JsonBodyRoute)


@router.post(
    PREDECIR.path, summary="Appraise one home", response_model=Prediccion, responses=BODY_ERRORS
)
async def predecir(
    formulario: Formulario,
    params: Annotated[ParametrosPrediccion, Query()],
    context: ContextDep,
) -> Response:
    """Appraise one home: its estimated asking price in EUR, a calibrated range, the area's
    €/m² and any warnings; with ``?explicar=true`` also what drives the price."""
    return answer(PREDECIR, context, formulario, params)


@router.post(
    PREDECIR_LOTE.path,
    summary="Appraise many homes",
    response_model=PrediccionLote | PrediccionLoteDetalle,
    responses=BODY_ERRORS,
)
async def predecir_lote(
    lote: Lote,
    params: Annotated[ParametrosLote, Query()],
    context: ContextDep,
    heavy: HeavyDep,
) -> Response:
    """Appraise many homes in one call, in the order sent: their prices, or with
    ``?detalle=true`` each home's whole appraisal."""
    # In the lane for heavy work: a worker thread, off the event loop, one at a time.
    return await heavy.run(answer, PREDECIR_LOTE, context, lote, params)
