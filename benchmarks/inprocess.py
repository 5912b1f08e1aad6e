"""In-process figures: each engine's latency and throughput, and where a request's time goes
(one /predecir, and one large /predecir/lote)."""

import gc
import itertools
import json
import time
from collections.abc import Callable, Iterator
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
from app.i18n import DEFAULT
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Lote, PrediccionLote
from app.service.appraisal import _appraisal, appraise, appraise_batch
from app.service.parsing import parse_json
from app.training.synthetic import generate
from benchmarks.testigos import with_testigos

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
    """Median microseconds of each step of one /predecir call, outside HTTP: the plain
    answer's steps, then what the valuation, the testigos and an explanation add."""
    bundle = load_bundle(model_dir)
    homes = generate(500, 7).formularios
    bodies = [h.model_dump_json().encode() for h in homes]
    rows = [bundle.features.matrix([h]) for h in homes]
    prices = [float(bundle.engine.predict(x)[0]) for x in rows]
    answers = [appraise(bundle, h) for h in homes]
    explainer = bundle.valuation.explainer
    assert explainer is not None, "the benchmark needs a bundle with explanations"
    explainer.get()  # built once, before it is timed
    table = bundle.valuation.testigos
    assert table is not None, "the benchmark needs a bundle with testigos"
    sin_testigos = with_testigos(bundle, None)
    cycle = itertools.cycle(range(len(homes)))

    def each(step: Callable[[int], Any]) -> Callable[[], Any]:
        return lambda: step(next(cycle))  # a different home each call, as in production

    steps: dict[str, Callable[[], Any]] = {
        "validate JSON body (Formulario)": each(
            lambda i: Formulario.model_validate_json(bodies[i])
        ),
        "build feature row": each(lambda i: bundle.features.matrix([homes[i]])),
        f"predict ({bundle.engine.name})": each(lambda i: bundle.engine.predict(rows[i])),
        # The rest of the answer, validated, from the same bundle without its testigos
        # table (the answer then says there are none); the testigos' search on its own.
        "interval, €/m², zone, warnings and grade": each(
            lambda i: _appraisal(sin_testigos, homes[i], prices[i], DEFAULT, None, 0)
        ),
        "testigos (search and rows)": each(
            lambda i: table.find(
                homes[i].latitud,
                homes[i].longitud,
                homes[i].superficie_construida,
                homes[i].habitaciones,
                homes[i].condicion,
            )
        ),
        "serialise Prediccion": each(lambda i: answers[i].model_dump_json()),
        "explanation (?explicar=true)": each(lambda i: explainer.get().explain(rows[i])),
    }
    return {name: float(np.median(_latencies_us(call, 5000))) for name, call in steps.items()}


def lote_path(model_dir: Path, rows: int) -> dict[str, float]:
    """Median milliseconds of each step of one /predecir/lote call of ``rows`` homes
    (no ``detalle``), outside HTTP, with the cyclic collector paused as the server pauses
    it for heavy work (``app.api.offload``)."""
    bundle = load_bundle(model_dir)
    homes = [f.model_dump(mode="json") for f in generate(rows, 99).formularios]
    body = json.dumps({"formularios": homes}).encode()
    lote = parse_json(Lote, body, rows)
    answer = appraise_batch(bundle, lote, rows)
    assert isinstance(answer, PrediccionLote)
    steps: dict[str, Callable[[], Any]] = {
        "validate JSON body (Lote)": lambda: parse_json(Lote, body, rows),
        "build feature matrix": lambda: bundle.features.matrix(lote.formularios),
        f"appraise: matrix, sorted predict ({bundle.engine.name})": lambda: appraise_batch(
            bundle, lote, rows
        ),
        "serialise PrediccionLote": lambda: answer.model_dump_json(),
    }
    gc.disable()
    try:
        return {
            name: float(np.median(_latencies_us(call, 9))) / 1e3 for name, call in steps.items()
        }
    finally:
        gc.enable()
