"""What the testigos add to one appraisal: ``uv run python -m benchmarks.testigos``.

Times, in process on the embedded bundle (a bundle folder may be given instead), the lookup
alone (``Testigos.find``) and the whole ``appraise`` of one home with and without the
testigos table (the same bundle with its table taken out), over a set of synthetic homes;
three runs each, reported as the median and the spread, with the ratio of the two
appraisals in each run (like with like on a shared, noisy machine); and what the table's
search index costs to build and hold.
"""

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.bundle.loader import Bundle, load_bundle
from app.config import EMBEDDED_MODEL_DIR
from app.service.appraisal import appraise
from app.training.synthetic import generate
from app.valuation import testigos as t

HOMES = 500
RUNS = 3


def _per_home_us(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) / HOMES * 1e6


def with_testigos(bundle: Bundle, table: t.Testigos | None) -> Bundle:
    """``bundle`` with ``table`` as its testigos (None: a bundle trained without them)."""
    return replace(bundle, valuation=replace(bundle.valuation, testigos=table))


def main() -> None:
    """Print the per-home cost of the lookup and of an appraisal with and without it, and
    the search index's build time and size."""
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else EMBEDDED_MODEL_DIR
    bundle = load_bundle(directory)
    table = bundle.valuation.testigos
    if table is None:
        raise SystemExit(f"{directory} has no testigos table")
    with np.load(directory / t.TESTIGOS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    builds = []
    for _ in range(RUNS):
        start = time.perf_counter()
        t.Testigos(arrays)
        builds.append((time.perf_counter() - start) * 1e3)
    homes = generate(HOMES, 2026).formularios

    def lookups() -> None:
        for h in homes:
            table.find(h.latitud, h.longitud, h.superficie_construida, h.habitaciones, h.condicion)

    def appraisals(chosen: Bundle) -> Callable[[], None]:
        def run() -> None:
            for h in homes:
                appraise(chosen, h)

        return run

    calls = {
        "lookup": lookups,
        "without": appraisals(with_testigos(bundle, None)),
        "with": appraisals(bundle),
    }
    for call in calls.values():
        call()  # warm up
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(RUNS):
        for name, call in calls.items():
            results[name].append(_per_home_us(call))
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
    ratios = [a / b for a, b in zip(results["with"], results["without"], strict=True)]
    print(
        f"{'appraise, with / without':<26} {statistics.median(ratios):.2f}× "
        f"({min(ratios):.2f} to {max(ratios):.2f})"
    )
    print(
        f"search index: {table.rows:,} homes, {table.candidates:,} candidates in all "
        f"({table.candidates * 4 / 2**20:.1f} MiB), built in {statistics.median(builds):.0f} ms "
        f"(runs {min(builds):.0f} to {max(builds):.0f})"
    )


if __name__ == "__main__":
    main()
