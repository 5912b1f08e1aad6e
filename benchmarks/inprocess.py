"""In-process figures: each engine's latency and throughput, and where a request's time goes."""

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

from app.bundle import MODEL_FILE, ONNX_FILE
from app.bundle.loader import load_bundle
from app.engines import Engine
from app.engines.onnx import OnnxEngine
from app.engines.sklearn import SklearnEngine
from app.schemas import Formulario, Prediccion
from app.training.synthetic import generate

BATCH_SIZES = (1, 16, 256, 4096)
Matrix = npt.NDArray[np.float64]


def _latencies_us(call: Callable[[], Any], n: int) -> npt.NDArray[np.float64]:
    for _ in range(min(n, 50)):
        call()
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return times * 1e6


def _rows_per_s(engine: Engine, x: Matrix, batch: int, seconds: float) -> float:
    rows, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        lo = (i * batch) % (len(x) - batch + 1)
        engine.predict(x[lo : lo + batch])
        rows += batch
        i += 1
    return rows / (time.perf_counter() - start)


def engines(model_dir: Path, seconds: float) -> list[dict[str, Any]]:
    """Latency p50/p99 of one row and rows/s per batch size, for each engine, with the
    largest relative difference from scikit-learn on 8,192 synthetic rows."""
    bundle = load_bundle(model_dir)
    x = bundle.features.matrix(generate(8192, 2026).formularios)
    sklearn = SklearnEngine(joblib.load(model_dir / MODEL_FILE))
    reference = sklearn.predict(x)
    candidates: list[Engine] = [sklearn, OnnxEngine((model_dir / ONNX_FILE).read_bytes())]
    results = []
    for engine in candidates:
        n = 300 if engine.name == "scikit-learn" else 3000
        rows = itertools.cycle(x[:4096, None, :])  # one (1, n_features) row at a time

        def one_row(e: Engine = engine, r: Iterator[Matrix] = rows) -> Matrix:
            return e.predict(next(r))

        lat = _latencies_us(one_row, n)
        got = engine.predict(x)
        results.append(
            {
                "engine": engine.name,
                "p50_us": float(np.percentile(lat, 50)),
                "p99_us": float(np.percentile(lat, 99)),
                "rows_per_s": {b: _rows_per_s(engine, x, b, seconds) for b in BATCH_SIZES},
                "max_rel_diff_vs_sklearn": float(np.max(np.abs(got - reference) / reference)),
            }
        )
    return results


def request_path(model_dir: Path) -> dict[str, float]:
    """Median microseconds of each step of one /predecir call, outside HTTP."""
    bundle = load_bundle(model_dir)
    body = generate(1, 7).formularios[0].model_dump_json().encode()
    formulario = Formulario.model_validate_json(body)
    x = bundle.features.matrix([formulario])
    precio = float(bundle.engine.predict(x)[0])
    steps: dict[str, Callable[[], Any]] = {
        "validate JSON body (Formulario)": lambda: Formulario.model_validate_json(body),
        "build feature row": lambda: bundle.features.matrix([formulario]),
        f"predict ({bundle.engine.name})": lambda: bundle.engine.predict(x),
        "serialise Prediccion": lambda: Prediccion(
            precio=precio, timestamp=datetime.now(UTC), modelo=bundle.version
        ).model_dump_json(),
    }
    return {name: float(np.median(_latencies_us(call, 5000))) for name, call in steps.items()}
