"""The fitted scikit-learn estimator itself: the reference every other engine must match,
and the fallback when no compiled engine reproduces it."""

import io
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from app.bundle import MODEL_FILE
from app.engines import EngineName, EngineSpec, EngineUnusableError

NAME: EngineName = "scikit-learn"


class SklearnEngine:
    """Predicts with the estimator's own ``predict``."""

    name = NAME

    def __init__(self, estimator: Any) -> None:
        # One thread: a single request gains nothing from joblib's pool, and replicas
        # scale out by process, not by threads inside one predict.
        if hasattr(estimator, "n_jobs"):
            estimator.n_jobs = 1
        self._estimator = estimator

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        return np.asarray(self._estimator.predict(x), dtype=np.float64)


def unpickle(data: bytes) -> Any:
    """The object a joblib pickle holds; ``EngineUnusableError`` when it cannot be loaded."""
    import joblib  # imported here: it costs start-up time and is needed only for pickles

    # scikit-learn warns (InconsistentVersionWarning) when unpickling across versions;
    # a warning is not enough here, it is a reason to refuse.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return joblib.load(io.BytesIO(data))
        except Exception as exc:  # unpickling can raise anything; all mean "unusable"
            raise EngineUnusableError(f"cannot be loaded: {type(exc).__name__}: {exc}") from None


def build(data: bytes, n_features: int) -> SklearnEngine:
    """The estimator pickled in ``data``, checked to take ``n_features`` columns."""
    estimator = unpickle(data)
    if not hasattr(estimator, "predict"):
        raise EngineUnusableError(f"holds a {type(estimator).__name__}, not a model")
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != n_features:
        raise EngineUnusableError(f"expects {n_in} features but the manifest lists {n_features}")
    return SklearnEngine(estimator)


SPEC = EngineSpec(name=NAME, artefact=MODEL_FILE, tolerance=1e-9, build=build)
