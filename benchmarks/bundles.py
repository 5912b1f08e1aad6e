"""Two bundles side by side, in one run: forest size and what one home costs in process.

    git archive 3cb3188 models | tar -x -C /tmp/antes
    uv run python -m benchmarks.bundles /tmp/antes/models models

For each bundle: trees, nodes, the files' sizes, and the median CPU time of one home
through the compiled engine alone, through building its feature row, and through the
whole appraisal (row, engine, interval, zone, warnings), with the second bundle's figures
as a ratio of the first's. The same 2,000 synthetic homes (every field known, so both
bundles can take them) go through both, interleaved, so machine noise hits both alike.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.bundle.loader import Bundle, load_bundle
from app.service.appraisal import appraise
from app.training.synthetic import generate

ROUNDS = 5


def _nodes(bundle: Path) -> tuple[int, int]:
    import joblib

    forest = joblib.load(bundle / "model.pkl")
    return len(forest.estimators_), sum(t.tree_.node_count for t in forest.estimators_)


def _median_us(call: Callable[[int], Any], n: int) -> float:
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e6)


def _costs(bundle: Bundle, homes: list[Any]) -> dict[str, float]:
    rows = [bundle.features.matrix([h]) for h in homes]
    return {
        "engine, one row (µs)": _median_us(lambda i: bundle.engine.predict(rows[i]), len(homes)),
        "feature row (µs)": _median_us(lambda i: bundle.features.matrix([homes[i]]), len(homes)),
        "whole appraisal (µs)": _median_us(lambda i: appraise(bundle, homes[i]), len(homes)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("antes", type=Path, help="the bundle to compare against")
    parser.add_argument("ahora", type=Path, help="the bundle measured")
    args = parser.parse_args()
    homes = [
        h.model_copy(
            update={
                "antiguedad": 40 if h.antiguedad is None else h.antiguedad,
                "banos": h.banos or 1,
                "superficie_util": h.superficie_util or round(0.85 * h.superficie_construida, 1),
            }
        )
        for h in generate(2_000, 2026).formularios
    ]
    bundles = [load_bundle(args.antes), load_bundle(args.ahora)]
    figures: list[dict[str, list[float]]] = [{}, {}]
    for _ in range(ROUNDS):
        for k, bundle in enumerate(bundles):
            for name, value in _costs(bundle, homes).items():
                figures[k].setdefault(name, []).append(value)
    medians = [{n: float(np.median(v)) for n, v in f.items()} for f in figures]
    print("| | " + " | ".join(str(p) for p in (args.antes, args.ahora)) + " | ratio |")
    print("|---|---|---|---|")
    sizes = [_nodes(p) for p in (args.antes, args.ahora)]
    print(f"| trees | {sizes[0][0]} | {sizes[1][0]} | {sizes[1][0] / sizes[0][0]:.2f}× |")
    print(f"| nodes | {sizes[0][1]:,} | {sizes[1][1]:,} | {sizes[1][1] / sizes[0][1]:.2f}× |")
    for name in ("model.pkl", "forest.onnx"):
        a, b = ((p / name).stat().st_size / 1e6 for p in (args.antes, args.ahora))
        print(f"| {name} (MB) | {a:.1f} | {b:.1f} | {b / a:.2f}× |")
    for name in medians[0]:
        a, b = medians[0][name], medians[1][name]
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f}× |")
    print(f"(medians of {ROUNDS} rounds of {len(homes)} homes, interleaved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
