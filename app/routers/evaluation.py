"""Scoring the model on labelled homes."""

import numpy as np
from fastapi import APIRouter

from app.deps import BundleDep, SettingsDep
from app.errors import check_rows
from app.metrics import regression_metrics
from app.schemas import Evaluacion, PeticionEvaluacion

router = APIRouter(prefix="/evaluar", tags=["evaluación"])


@router.post("")
def evaluar(peticion: PeticionEvaluacion, bundle: BundleDep, settings: SettingsDep) -> Evaluacion:
    """RMSE, MAE, R² and MAPE on the rows sent, beside the model's hold-out metrics."""
    muestras = peticion.muestras
    check_rows(len(muestras), settings.max_batch_rows, "muestras")
    y_true = np.array([m.precio for m in muestras], dtype=np.float64)
    y_pred = bundle.engine.predict(bundle.features.matrix(muestras))
    metricas = regression_metrics(y_true, y_pred)
    return Evaluacion(
        **metricas.model_dump(),
        n=len(muestras),
        holdout=bundle.manifest.metrics,
        modelo=bundle.version,
    )
