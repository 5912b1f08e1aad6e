"""Prediction routes: one home, or many in one call."""

from fastapi import APIRouter, Response

from app.api.body import JsonBodyRoute
from app.api.deps import BundleDep, SettingsDep
from app.api.errors import BODY_ERRORS
from app.api.operations import PREDECIR, PREDECIR_LOTE, answer
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Lote, Prediccion, PrediccionLote

router = APIRouter(tags=["predicción"], route_class=JsonBodyRoute)


@router.post(PREDECIR.path, response_model=Prediccion, responses=BODY_ERRORS)
async def predecir(formulario: Formulario, bundle: BundleDep, settings: SettingsDep) -> Response:
    """Appraise one home: its estimated asking price in EUR."""
    return answer(PREDECIR, bundle, settings, formulario)


@router.post(PREDECIR_LOTE.path, response_model=PrediccionLote, responses=BODY_ERRORS)
def predecir_lote(lote: Lote, bundle: BundleDep, settings: SettingsDep) -> Response:
    """Appraise many homes in one call; prices come back in the order sent."""
    # A plain def: FastAPI runs it in a worker thread, off the event loop.
    return answer(PREDECIR_LOTE, bundle, settings, lote)
