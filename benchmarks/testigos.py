"""What the testigos add to one appraisal: ``uv run python -m benchmarks.testigos``.

Times, in process on the embedded bundle, the lookup alone (``Testigos.find``) and the
whole ``appraise`` of one home (a bundle folder may be given instead) with and without the testigos table (the same bundle with
its table taken out), over a set of synthetic homes; three runs each, reported as the
median and the spread. A ratio of the two appraisals, measured in the same run, is what
to compare across machines.
"""

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from app.bundle.loader import load_bundle
from app.config import EMBEDDED_MODEL_DIR
from app.service.valuation import appraise
from app.training.synthetic import generate

HOMES = 500
RUNS = 3


def _per_call_us(call: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    """Print the per-home cost of the lookup and of an appraisal with and without it."""
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else EMBEDDED_MODEL_DIR
    bundle = load_bundle(directory)
    table = bundle.valuation.testigos
    if table is None:
        raise SystemExit(f"{directory} has no testigos table")
    without = replace(bundle, valuation=replace(bundle.valuation, testigos=None))
    homes = generate(HOMES, 2026).formularios

    def lookups() -> None:
        for h in homes:
            table.find(h.latitud, h.longitud, h.superficie_construida, h.habitaciones, h.condicion)

    def appraisals(served: object) -> Callable[[], None]:
        def run() -> None:
            for h in homes:
                appraise(served, h)  # type: ignore[arg-type]

        return run

    results: dict[str, list[float]] = {"lookup": [], "with": [], "without": []}
    appraise(bundle, homes[0])  # warm up
    for _ in range(RUNS):
        results["lookup"].append(_per_call_us(lookups, 1) / HOMES)
        results["with"].append(_per_call_us(appraisals(bundle), 1) / HOMES)
        results["without"].append(_per_call_us(appraisals(without), 1) / HOMES)
    for name, label in (
        ("lookup", "Testigos.find"),
        ("without", "appraise, no testigos"),
        ("with", "appraise, with testigos"),
    ):
        runs = results[name]
        print(
            f"{label:<26} median {statistics.median(runs):7.1f} µs/home  "
            f"(runs {min(runs):.1f} to {max(runs):.1f})"
        )
    ratios = [w / o for w, o in zip(results["with"], results["without"], strict=True)]
    print(
        f"with / without: {statistics.median(ratios):.2f}× ({min(ratios):.2f} to {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
