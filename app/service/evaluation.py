"""Scoring the model on labelled homes."""

import numpy as np

from app.bundle.loader import Bundle
from app.refusals import too_many_rows
from app.schemas.evaluacion import Evaluacion, PeticionEvaluacion
from app.service.appraisal import bounds
from app.service.scoring import score
from app.tracing import span


def evaluate(bundle: Bundle, peticion: PeticionEvaluacion, max_rows: int) -> Evaluacion:
    """Accuracy on the homes sent, beside the hold-out figures from training."""
    muestras = peticion.muestras
    if len(muestras) > max_rows:
        raise too_many_rows(len(muestras), max_rows, "muestras")
    y_true = np.array([m.precio for m in muestras], dtype=np.float64)
    with span("tasador.features"):
        x = bundle.features.matrix(muestras)
    with span("tasador.engine"):
        y_pred = bundle.engine.predict(x)
    intervals = bounds(bundle, muestras, y_pred)
    cobertura = anchura = None
    if intervals is not None:
        lower, upper = intervals
        cobertura = float(np.mean((y_true >= lower) & (y_true <= upper)))
        anchura = float(np.mean((upper - lower) / y_true))
    return Evaluacion(
        **score(y_true, y_pred).model_dump(),
        filas=len(muestras),
        cobertura=cobertura,
        anchura_relativa=anchura,
        validacion=bundle.manifest.metrics,
        modelo=bundle.version,
    )
