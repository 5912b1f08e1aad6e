"""Accuracy of predictions against true prices (RMSE, MAE, R², MAPE), shared by training
(hold-out) and ``/evaluar``.

Written with numpy rather than imported from ``sklearn.metrics``: importing scikit-learn
costs seconds of start-up, and the service does not otherwise need it when the compiled
engine serves. The tests check these against scikit-learn's.
"""

import numpy as np
import numpy.typing as npt

from app.schemas.evaluacion import Metricas


def score(y_true: npt.NDArray[np.float64], y_pred: npt.NDArray[np.float64]) -> Metricas:
    """RMSE, MAE, R² and MAPE of predictions against true prices (all strictly positive)."""
    error = y_pred - y_true
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    # R² is undefined when every true price is the same; say so instead of inventing a number.
    r2 = None if spread == 0 else 1.0 - float(np.sum(error**2)) / spread
    return Metricas(
        rmse=float(np.sqrt(np.mean(error**2))),
        mae=float(np.mean(np.abs(error))),
        r2=r2,
        mape=float(np.mean(np.abs(error) / np.abs(y_true))),
    )
