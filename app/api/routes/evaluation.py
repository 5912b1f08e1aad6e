"""Scoring the model on labelled homes."""

from fastapi import APIRouter, Response

from app.api.body import JsonBodyRoute
from app.api.deps import ContextDep
from app.api.errors import BODY_ERRORS
from app.api.operations import EVALUAR, NoParametros, answer
from app.schemas.evaluacion import Evaluacion, PeticionEvaluacion

router = APIRouter(tags=["evaluación"], route_class=JsonBodyRoute)


@router.post(EVALUAR.path, response_model=Evaluacion, responses=BODY_ERRORS)
def evaluar(peticion: PeticionEvaluacion, context: ContextDep) -> Response:
    """RMSE, MAE, R², MAPE and the interval's coverage on the rows sent, beside the
    model's hold-out metrics."""
    # A plain def: FastAPI runs it in a worker thread, off the event loop.
    return answer(EVALUAR, context, peticion, NoParametros())
