"""Prediction routes: one home, or many in one call."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from app.body import json_body, json_response, parse, read_request_body, run_sized
from app.bundle import Bundle
from app.deps import BundleDep, SettingsDep
from app.errors import BODY_ERRORS, check_rows
from app.schemas import Formulario, Lote, Prediccion, PrediccionLote

router = APIRouter(prefix="/predecir", tags=["predicción"])


def predict_one(bundle: Bundle, body: bytes) -> Response:
    """Validate one ``Formulario`` and answer its ``Prediccion``."""
    formulario = parse(Formulario, body)
    precio = float(bundle.engine.predict(bundle.features.matrix([formulario]))[0])
    return json_response(
        Prediccion(precio=round(precio, 2), timestamp=datetime.now(UTC), modelo=bundle.version)
    )


def predict_batch(bundle: Bundle, max_rows: int, body: bytes) -> Response:
    """Validate a ``Lote`` and answer one price per home, in one vectorised engine call."""
    lote = parse(Lote, body)
    check_rows(len(lote.formularios), max_rows, "formularios")
    precios = bundle.engine.predict(bundle.features.matrix(lote.formularios))
    return json_response(
        PrediccionLote(
            precios=precios.round(2).tolist(), timestamp=datetime.now(UTC), modelo=bundle.version
        )
    )


@router.post(
    "", response_model=Prediccion, responses=BODY_ERRORS, openapi_extra=json_body(Formulario)
)
async def predecir(request: Request, bundle: BundleDep, settings: SettingsDep) -> Response:
    """Appraise one home: its estimated asking price in EUR."""
    # Normally answered by app.fastpath before it gets here; this route documents it and
    # serves it when the fast path is off. Both call predict_one.
    body = await read_request_body(request, settings.max_body_bytes)
    return await run_sized(lambda b: predict_one(bundle, b), body)


@router.post(
    "/lote", response_model=PrediccionLote, responses=BODY_ERRORS, openapi_extra=json_body(Lote)
)
async def predecir_lote(request: Request, bundle: BundleDep, settings: SettingsDep) -> Response:
    """Appraise many homes in one call; prices come back in the order sent."""
    body = await read_request_body(request, settings.max_body_bytes)
    return await run_sized(lambda b: predict_batch(bundle, settings.max_batch_rows, b), body)
