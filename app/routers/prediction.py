"""Prediction routes: one home, or many in one call."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from app.body import answer, json_body, json_response, parse
from app.bundle import Bundle
from app.deps import BundleDep, SettingsDep
from app.errors import BODY_ERRORS, check_rows
from app.schemas import Formulario, Lote, Prediccion, PrediccionLote

router = APIRouter(prefix="/predecir", tags=["predicción"])


def _price(value: float) -> float:
    return round(value, 2)


@router.post(
    "", response_model=Prediccion, responses=BODY_ERRORS, openapi_extra=json_body(Formulario)
)
async def predecir(request: Request, bundle: BundleDep) -> Response:
    """Appraise one home: its estimated asking price in EUR."""

    def work(body: bytes) -> Response:
        formulario = parse(Formulario, body)
        precio = float(bundle.engine.predict(bundle.features.matrix([formulario]))[0])
        return json_response(
            Prediccion(precio=_price(precio), timestamp=datetime.now(UTC), modelo=bundle.version)
        )

    # Single-row work takes tens of microseconds: on the event loop, below the cost of a
    # thread hand-off; an oversized body still goes to a thread (see app.body).
    return await answer(request, work)


def predict_batch(bundle: Bundle, lote: Lote) -> PrediccionLote:
    """One vectorised engine call for the whole batch, prices in the order sent."""
    precios = bundle.engine.predict(bundle.features.matrix(lote.formularios))
    return PrediccionLote(
        precios=precios.round(2).tolist(), timestamp=datetime.now(UTC), modelo=bundle.version
    )


@router.post(
    "/lote", response_model=PrediccionLote, responses=BODY_ERRORS, openapi_extra=json_body(Lote)
)
async def predecir_lote(request: Request, bundle: BundleDep, settings: SettingsDep) -> Response:
    """Appraise many homes in one call; prices come back in the order sent."""

    def work(body: bytes) -> Response:
        lote = parse(Lote, body)
        check_rows(len(lote.formularios), settings.max_batch_rows, "formularios")
        return json_response(predict_batch(bundle, lote))

    return await answer(request, work)
