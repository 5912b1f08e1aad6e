"""The forest compiled to ONNX (see ``app.training.compile``), run by ONNX Runtime.

One single-threaded session serves everything. A large batch is cut into one chunk per
core, and the chunks run at once in Python threads (ONNX Runtime releases the GIL): as
fast as a session with its own thread pool, without that second session's memory, and
each chunk sums its trees in scikit-learn's order, so batches too are bit-identical.
The measurements behind this choice are in docs/benchmarks.md.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from app.bundle import ONNX_FILE
from app.engines import EngineName, EngineSpec, EngineUnusableError

NAME: EngineName = "onnxruntime"
# Below this many rows one call on one thread is faster than a hand-off to several.
PARALLEL_FROM_ROWS = 128


class OnnxEngine:
    """Runs the compiled forest; inputs are rounded to float32 as scikit-learn rounds them."""

    name = NAME

    def __init__(self, model: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(
            model, _options(ort), providers=["CPUExecutionProvider"]
        )
        (model_input,) = self._session.get_inputs()
        self._input = model_input.name
        self.n_features: int | None = (
            model_input.shape[1] if isinstance(model_input.shape[1], int) else None
        )
        self._threads = threads or min(os.cpu_count() or 1, 4)

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        return self.outputs(x).reshape(-1)

    def outputs(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The graph's output for the rows of ``x``: one row of targets per input row."""
        # scikit-learn rounds inputs to float32 before comparing them with its float64
        # thresholds; doing the same makes the answers identical.
        rounded = x.astype(np.float32).astype(np.float64)
        if len(x) < PARALLEL_FROM_ROWS or self._threads == 1:
            return self._run(rounded)
        chunks = np.array_split(rounded, self._threads)
        return np.concatenate(list(_pool(self._threads).map(self._run, chunks)))

    def _run(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = self._session.run(None, {self._input: x})[0]
        return out


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """Threads shared by every engine of the process (a reload builds a new engine)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="onnx")


def _options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Idle worker threads must not spin: on a small machine they would take CPU from the
    # event loop and the other replicas.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    # A TreeEnsemble has nothing for the extended optimisers to fuse: skipping them makes
    # the session faster to build and no slower to run (docs/benchmarks.md).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return options


def build(data: bytes, n_features: int) -> OnnxEngine:
    """The compiled forest in ``data``, checked to take ``n_features`` columns."""
    try:
        engine = OnnxEngine(data)
    except Exception as exc:  # ONNX Runtime raises its own types; any of them means "no"
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise EngineUnusableError(f"{type(exc).__name__}: {message}") from None
    if engine.n_features != n_features:
        raise EngineUnusableError(
            f"ValueError: it takes {engine.n_features} features, the manifest lists {n_features}"
        )
    return engine


SPEC = EngineSpec(name=NAME, artefact=ONNX_FILE, tolerance=1e-5, build=build)
