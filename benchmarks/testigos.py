"""What the testigos add to one appraisal: ``uv run python -m benchmarks.testigos``.

Times, in process on the embedded bundle (a bundle folder may be given instead), the lookup
alone (``Testigos.find``) and the whole ``appraise`` of one home with and without the
testigos table (the same bundle with its table taken out), over a set of synthetic homes;
three runs each, reported as the median and the spread. The lookup as it was before each
cell's candidates were kept (``Baseline`` below) is timed in the same runs, so the
before / after ratios compare like with like on a shared, noisy machine.
"""

import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.bundle.loader import Bundle, load_bundle
from app.config import EMBEDDED_MODEL_DIR
from app.service.appraisal import appraise
from app.training.synthetic import generate
from app.valuation import testigos as t

HOMES = 500
RUNS = 3


class Baseline(t.Testigos):
    """The lookup before each cell's candidates were kept: the block's slices gathered
    into one array for every home, every column of it."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        super().__init__(arrays)
        self._scaled = np.vstack([self._position, self._other, self._table.T])
        self._scored = len(self._position) + len(self._other)

    def find(
        self,
        latitud: float,
        longitud: float,
        superficie_construida: float,
        habitaciones: int,
        condicion: str,
    ) -> t.Found:
        near = self._near(latitud, longitud)
        if not near.shape[1]:
            return t.Found([], None)
        home = np.array(
            [
                [latitud * t._M_LAT / t.METRES_PER_UNIT],
                [longitud * t._M_LON / t.METRES_PER_UNIT],
                [math.log(superficie_construida) / math.log(t.AREA_RATIO_PER_UNIT)],
                [habitaciones / t.ROOMS_PER_UNIT],
            ]
        )
        score = np.abs(near[:4] - home).sum(axis=0)
        code = self._codes.get(condicion)
        score += near[4 + code] if code is not None else t.CONDITION_UNIT
        best = (
            np.argpartition(score, t.SHOWN)[: t.SHOWN]
            if len(score) > t.SHOWN
            else np.arange(len(score))
        )
        best = best[np.argsort(score[best], kind="stable")]
        return self._found(near[self._scored :, best].T.tolist(), latitud, longitud)

    def _near(self, latitud: float, longitud: float) -> npt.NDArray[np.float64]:
        row = math.floor(latitud / t.CELL[0]) - self._row0
        col = math.floor(longitud / t.CELL[1]) - self._col0
        slices = self._block(row, col, self._rings(row, col))
        size = sum(end - start for start, end in slices)
        out = np.empty((self._scaled.shape[0], size))
        if size:
            np.concatenate([self._scaled[:, start:end] for start, end in slices], axis=1, out=out)
        return out


def _per_home_us(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) / HOMES * 1e6


def _with_table(bundle: Bundle, table: t.Testigos | None) -> Bundle:
    return replace(bundle, valuation=replace(bundle.valuation, testigos=table))


def main() -> None:
    """Print the per-home cost of the lookup and of an appraisal with and without it, now
    and with the baseline lookup."""
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else EMBEDDED_MODEL_DIR
    bundle = load_bundle(directory)
    table = bundle.valuation.testigos
    if table is None:
        raise SystemExit(f"{directory} has no testigos table")
    with np.load(directory / t.TESTIGOS_FILE) as npz:
        baseline = Baseline({name: npz[name] for name in npz.files})
    served = {
        "without": _with_table(bundle, None),
        "with": bundle,
        "with, baseline": _with_table(bundle, baseline),
    }
    homes = generate(HOMES, 2026).formularios

    def lookups(lookup: t.Testigos) -> Callable[[], None]:
        def run() -> None:
            for h in homes:
                lookup.find(
                    h.latitud, h.longitud, h.superficie_construida, h.habitaciones, h.condicion
                )

        return run

    def appraisals(chosen: Bundle) -> Callable[[], None]:
        def run() -> None:
            for h in homes:
                appraise(chosen, h)

        return run

    calls = {
        "lookup": lookups(table),
        "lookup, baseline": lookups(baseline),
        **{name: appraisals(chosen) for name, chosen in served.items()},
    }
    for call in calls.values():
        call()  # warm up (and fill the cells' cache, as a running server has)
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(RUNS):
        for name, call in calls.items():
            results[name].append(_per_home_us(call))
    for name, label in (
        ("lookup, baseline", "Testigos.find, baseline"),
        ("lookup", "Testigos.find"),
        ("without", "appraise, no testigos"),
        ("with, baseline", "appraise, baseline"),
        ("with", "appraise, with testigos"),
    ):
        runs = results[name]
        print(
            f"{label:<26} median {statistics.median(runs):7.1f} µs/home  "
            f"(runs {min(runs):.1f} to {max(runs):.1f})"
        )
    for label, top, bottom in (
        ("lookup, now / baseline", "lookup", "lookup, baseline"),
        ("appraise, baseline / none", "with, baseline", "without"),
        ("appraise, now / none", "with", "without"),
    ):
        ratios = [a / b for a, b in zip(results[top], results[bottom], strict=True)]
        print(
            f"{label:<26} {statistics.median(ratios):.2f}× ({min(ratios):.2f} to {max(ratios):.2f})"
        )
    print(f"cells' cache: {table.cached_bytes / 2**20:.2f} MiB of {t.BLOCK_CACHE_BYTES >> 20} MiB")


if __name__ == "__main__":
    main()
