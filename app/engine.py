"""Inference engines: something that maps a float64 feature matrix to prices.

An engine knows nothing of HTTP or of the schema; it sees only numbers in model order.
"""

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

SKLEARN = "scikit-learn"
ONNX = "onnxruntime"

# From this many rows a batch goes to a session with several threads: ONNX Runtime then
# walks the ensemble tree by tree, which measured ~4x faster per row on 2 cores than the
# single-threaded row-by-row walk, which is faster below (no thread hand-off).
PARALLEL_FROM_ROWS = 128


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


class OnnxEngine:
    """The forest compiled to ONNX (see ``app.training.compile``), run by ONNX Runtime."""

    name = ONNX

    def __init__(self, model: bytes | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        source = str(model) if isinstance(model, Path) else model
        threads = threads or min(os.cpu_count() or 1, 4)
        self._single = ort.InferenceSession(
            source, _options(ort, 1), providers=["CPUExecutionProvider"]
        )
        self._parallel = (
            ort.InferenceSession(source, _options(ort, threads), providers=["CPUExecutionProvider"])
            if threads > 1
            else self._single
        )
        (model_input,) = self._single.get_inputs()
        self._input = model_input.name
        self.n_features: int | None = (
            model_input.shape[1] if isinstance(model_input.shape[1], int) else None
        )

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        # scikit-learn rounds inputs to float32 before comparing them with its float64
        # thresholds; doing the same makes the answers identical.
        rounded = x.astype(np.float32).astype(np.float64)
        session = self._parallel if len(x) >= PARALLEL_FROM_ROWS else self._single
        out: npt.NDArray[np.float64] = session.run(None, {self._input: rounded})[0]
        return out.reshape(-1)


def _options(ort: Any, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle worker threads must not spin: on a small machine they would take CPU from the
    # event loop and the other replicas.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options
