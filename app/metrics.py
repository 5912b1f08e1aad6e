"""Regression metrics, shared by training (hold-out) and the /evaluar route."""

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from app.schemas import Metricas


def regression_metrics(
    y_true: npt.NDArray[np.float64], y_pred: npt.NDArray[np.float64]
) -> Metricas:
    """RMSE, MAE, R² and MAPE of predictions against true prices (all strictly positive)."""
    # R² is undefined when every true price is the same; say so instead of inventing a number.
    r2 = None if np.ptp(y_true) == 0 else float(r2_score(y_true, y_pred))
    return Metricas(
        rmse=float(np.sqrt(mean_squared_error(y_true, y_pred))),
        mae=float(mean_absolute_error(y_true, y_pred)),
        r2=r2,
        mape=float(mean_absolute_percentage_error(y_true, y_pred)),
    )
