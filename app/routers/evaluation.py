"""Scoring the model on labelled homes."""

import numpy as np
from fastapi import APIRouter, Request, Response

from app.body import json_body, json_response, parse, read_request_body, run_sized
from app.bundle import Bundle
from app.deps import BundleDep, SettingsDep
from app.errors import BODY_ERRORS, check_rows
from app.metrics import regression_metrics
from app.schemas import Evaluacion, PeticionEvaluacion

router = APIRouter(prefix="/evaluar", tags=["evaluación"])


@router.post(
    "",
    response_model=Evaluacion,
    responses=BODY_ERRORS,
    openapi_extra=json_body(PeticionEvaluacion),
)
async def evaluar(request: Request, bundle: BundleDep, settings: SettingsDep) -> Response:
    """RMSE, MAE, R² and MAPE on the rows sent, beside the model's hold-out metrics."""
    body = await read_request_body(request, settings.max_body_bytes)
    return await run_sized(lambda b: evaluate(bundle, settings.max_batch_rows, b), body)


def evaluate(bundle: Bundle, max_rows: int, body: bytes) -> Response:
    """Validate labelled homes, predict them in one engine call, answer the metrics."""
    muestras = parse(PeticionEvaluacion, body).muestras
    check_rows(len(muestras), max_rows, "muestras")
    y_true = np.array([m.precio for m in muestras], dtype=np.float64)
    y_pred = bundle.engine.predict(bundle.features.matrix(muestras))
    return json_response(
        Evaluacion(
            **regression_metrics(y_true, y_pred).model_dump(),
            n=len(muestras),
            holdout=bundle.manifest.metrics,
            modelo=bundle.version,
        )
    )
