"""Inference engines: something that maps a float64 feature matrix to prices.

The engine knows nothing of HTTP or of the schema; it sees only numbers in model order.
"""

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

SKLEARN = "scikit-learn"


class Engine(Protocol):
    """Predicts one price per row of a feature matrix."""

    name: str

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        ...


class SklearnEngine:
    """The fitted scikit-learn estimator itself: the reference every other engine must match."""

    name = SKLEARN

    def __init__(self, estimator: Any) -> None:
        # One thread: a single request gains nothing from joblib's pool, and replicas
        # scale out by process, not by threads inside one predict.
        if hasattr(estimator, "n_jobs"):
            estimator.n_jobs = 1
        self._estimator = estimator

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        return np.asarray(self._estimator.predict(x), dtype=np.float64)
