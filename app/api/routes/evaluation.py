"""Scoring the model on labelled homes."""

from fastapi import APIRouter, Response

from app.api.body import JsonBodyRoute
from app.api.deps import ContextDep, HeavyDep
from app.api.errors import BODY_ERRORS
from app.api.operations import EVALUAR, NoParametros, answer
from app.schemas.evaluacion import Evaluacion, PeticionEvaluacion

router = APIRouter(tags=["evaluación"], route_class=JsonBodyRoute)


@router.post(
    EVALUAR.path,
    summary="Score the model on homes whose price is known",
    response_model=Evaluacion,
    responses=BODY_ERRORS,
)
async def evaluar(peticion: PeticionEvaluacion, context: ContextDep, heavy: HeavyDep) -> Response:
    """RMSE, MAE, R², MAPE and the interval's coverage on the rows sent, beside the
    model's hold-out metrics."""
    # In the lane for heavy work: a worker thread, off the event loop, one at a time.
    return await heavy.run(answer, EVALUAR, context, peticion, NoParametros())
