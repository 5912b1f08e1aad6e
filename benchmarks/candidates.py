"""How the serving engine was chosen: candidates measured on the committed bundle.

    uv run --with skl2onnx --with treelite --with tl2cgen python -m benchmarks.candidates

prints, for scikit-learn and each candidate, single-row latency, rows/s in batches of
4,096 and the largest relative difference from scikit-learn on 8,192 synthetic rows.
Candidates whose package is missing are skipped; TL2cgen's C build of a 100-tree forest
takes minutes, so it runs only with ``--tl2cgen``.
"""

import argparse
import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import numpy.typing as npt

from app.bundle import MODEL_FILE, ONNX_FILE
from app.bundle.loader import load_bundle
from app.config import EMBEDDED_MODEL_DIR
from app.engines.onnx import OnnxEngine
from app.training.synthetic import generate

Predict = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def _measure(name: str, predict: Predict, x: npt.NDArray[np.float64], ref: np.ndarray) -> None:
    for i in range(50):
        predict(x[i : i + 1])
    times = []
    for i in range(500):
        start = time.perf_counter()
        predict(x[i : i + 1])
        times.append(time.perf_counter() - start)
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1:
        predict(x[:4096])
        rows += 4096
    diff = float(np.max(np.abs(predict(x) - ref) / ref))
    print(
        f"{name:34s} 1 row p50 {np.median(times) * 1e6:8.1f} µs  "
        f"batch 4096 {rows / (time.perf_counter() - start):9,.0f} rows/s  max rel diff {diff:.1e}"
    )


def main() -> None:
    """Measure every candidate that is installed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tl2cgen", action="store_true", help="also build and time TL2cgen")
    args = parser.parse_args()
    forest = joblib.load(EMBEDDED_MODEL_DIR / MODEL_FILE)
    forest.n_jobs = 1
    bundle = load_bundle(EMBEDDED_MODEL_DIR)
    x = bundle.features.matrix(generate(8192, 2026).formularios)
    ref = forest.predict(x)
    n = x.shape[1]

    _measure("scikit-learn", forest.predict, x, ref)
    _measure(
        "tasador ONNX (opset-5, float64)",
        OnnxEngine((EMBEDDED_MODEL_DIR / ONNX_FILE).read_bytes(), 1).predict,
        x,
        ref,
    )

    if importlib.util.find_spec("skl2onnx"):
        import onnxruntime as ort
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        f32 = convert_sklearn(forest, initial_types=[("X", FloatTensorType([None, n]))])
        session = ort.InferenceSession(f32.SerializeToString(), options)
        _measure("skl2onnx float32 + onnxruntime",
                 lambda a: session.run(None, {"X": a.astype(np.float32)})[0].ravel(), x, ref)  # fmt: skip
        try:
            f64 = convert_sklearn(forest, initial_types=[("X", DoubleTensorType([None, n]))])
            ort.InferenceSession(f64.SerializeToString(), options)
        except Exception as exc:
            print(f"{'skl2onnx float64 + onnxruntime':34s} does not load: {str(exc)[:120]}")

    if importlib.util.find_spec("treelite"):
        import treelite
        import treelite.gtil

        model = treelite.sklearn.import_model(forest)
        _measure("treelite GTIL (float32 input)",
                 lambda a: treelite.gtil.predict(model, a.astype(np.float32), nthread=1).ravel(), x, ref)  # fmt: skip
        if args.tl2cgen and importlib.util.find_spec("tl2cgen"):
            import tl2cgen

            with tempfile.TemporaryDirectory() as tmp:
                lib = Path(tmp) / "forest.so"
                start = time.perf_counter()
                tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib),
                                   params={"parallel_comp": 8}, nthread=2)  # fmt: skip
                print(f"TL2cgen C build: {time.perf_counter() - start:.0f} s")
                predictor = tl2cgen.Predictor(str(lib), nthread=1)
                _measure("TL2cgen (float32 input)",
                         lambda a: predictor.predict(tl2cgen.DMatrix(a.astype(np.float32), dtype="float32")).ravel(), x, ref)  # fmt: skip


if __name__ == "__main__":
    main()
