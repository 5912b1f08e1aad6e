"""Testigos: the training homes most comparable to the one appraised, coarsened.

What an appraiser shows to support a figure (a tasación's *testigos*). They are read from
the bundle's ``testigos.npz``, written by ``tasador train`` coarsened the way idealista
anonymised its published 2018 data set: each price moved at random by up to ±2.5 % and
rounded to €1,000, each home moved 30-60 m in a random direction, and only homes whose
~250 m cell held at least 5 training homes. So no testigo is a training row.

Comparable means near, and alike in size, rooms and condition. The homes searched are
those of the smallest square of ~250 m cells around the one appraised that holds at least
``CANDIDATES`` of them (the nearest few hundred, found without a scan of every home); the
six with the lowest score are kept, where one unit of score is any of: ``METRES_PER_UNIT``
metres north or south plus east or west (the distance along the streets of a grid, which
keeps the score one sum of absolute differences: a few numpy calls per home), built area
larger or smaller by a factor of ``AREA_RATIO_PER_UNIT``, ``ROOMS_PER_UNIT`` rooms more or
fewer, or another condition.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.valuation.zones import KM_PER_DEG_LAT, KM_PER_DEG_LON

TESTIGOS_FILE = "testigos.npz"
# The arrays of ``testigos.npz``, one entry per testigo (``condicion`` as an index into
# ``LABELS``, the array of condition names).
COLUMNS = ("latitud", "longitud", "superficie_construida", "habitaciones", "condicion", "precio")
LABELS = "condiciones"
SHOWN = 6  # testigos in an answer
CANDIDATES = 200  # at least this many homes are searched, where there are
METRES_PER_UNIT = 500.0
AREA_RATIO_PER_UNIT = 1.25
ROOMS_PER_UNIT = 2.0
CONDITION_UNIT = 1.0  # score for another condition
# The search grid: cells of ~250 m; it looks this many cells around a home at most, so no
# testigo lies farther than ~2 km.
CELL = (0.00225, 0.003)
MAX_RINGS = 8
# No testigo lies farther than this, in km.
REACH_KM = round(MAX_RINGS * min(CELL[0] * KM_PER_DEG_LAT, CELL[1] * KM_PER_DEG_LON), 1)
MAX_ROWS = 2_000_000  # what a bundle may hold: a city's listings, many times over
# Every cell's candidates are found when the table loads, so a worker's memory is all
# taken at start and does not grow (nor fragment) with the homes it is asked about. Both
# bounds are far above a city's: Madrid's homes span ~90 x 80 cells with ~1 million
# candidates in all; a region of ~250 x 250 km, or 32 million candidates (128 MiB), is
# refused.
MAX_CELLS = 1_000_000
MAX_CANDIDATES = 32_000_000

_M_LAT = KM_PER_DEG_LAT * 1000
_M_LON = KM_PER_DEG_LON * 1000


@dataclass(frozen=True)
class Found:
    """The chosen testigos (most comparable first) as plain values, and their median €/m²."""

    viviendas: list[dict[str, Any]]
    mediana_precio_m2: float | None


class Testigos:
    """Coarsened training homes, indexed by grid cell for a cheap nearest search."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """``arrays``: the ``COLUMNS`` and ``LABELS`` of ``testigos.npz``; ``ValueError``
        (one line) when they do not make a usable table."""
        labels = arrays[LABELS]
        if labels.ndim != 1 or labels.dtype.kind != "U":
            raise ValueError(f"its {LABELS} are not a list of names")
        condiciones = [str(label) for label in labels.tolist()]
        columns = [np.asarray(arrays[name], dtype=np.float64) for name in COLUMNS]
        n = len(columns[0])
        if any(c.ndim != 1 or len(c) != n for c in columns):
            raise ValueError("its arrays are not one column each of the same length")
        if n > MAX_ROWS:
            raise ValueError(f"it holds {n} homes, more than the {MAX_ROWS} allowed")
        table = np.column_stack(columns) if n else np.empty((0, len(COLUMNS)))
        if not np.isfinite(table).all():
            raise ValueError("it holds values that are not finite numbers")
        codes = table[:, 4]
        if n and (codes.min() < 0 or codes.max() >= len(condiciones) or (codes % 1).any()):
            raise ValueError("it holds a condicion code the encodings do not have")
        if n and (table[:, 2].min() <= 0 or table[:, 5].min() <= 0):
            raise ValueError("it holds a built area or a price that is not positive")
        self._condiciones = condiciones
        self._codes = {label: code for code, label in enumerate(condiciones)}
        self.rows = n
        rows = np.floor(table[:, 0] / CELL[0]).astype(np.int64)
        cols = np.floor(table[:, 1] / CELL[1]).astype(np.int64)
        # The grid reaches MAX_RINGS cells beyond the homes: a point farther out has none.
        self._row0 = int(rows.min()) - MAX_RINGS if n else 0
        self._col0 = int(cols.min()) - MAX_RINGS if n else 0
        self._height = int(rows.max()) + MAX_RINGS + 1 - self._row0 if n else 0
        self._width = int(cols.max()) + MAX_RINGS + 1 - self._col0 if n else 0
        if self._height * self._width > MAX_CELLS:
            raise ValueError(
                f"its homes spread over {self._height} x {self._width} cells of the search "
                f"grid, more than the {MAX_CELLS} allowed"
            )
        keys = (rows - self._row0) * self._width + (cols - self._col0)
        order = np.argsort(keys, kind="stable")
        self._table = table[order]
        # What the score is computed on, in its units: metres north and east, built area and
        # rooms, one row each (the score sums down the rows); and, per condition, the score
        # of another condition than it (0 or 1 unit).
        self._position = np.vstack(
            [
                self._table[:, 0] * _M_LAT / METRES_PER_UNIT,
                self._table[:, 1] * _M_LON / METRES_PER_UNIT,
                np.log(self._table[:, 2]) / math.log(AREA_RATIO_PER_UNIT),
                self._table[:, 3] / ROOMS_PER_UNIT,
            ]
        )
        self._other = np.array(
            [(self._table[:, 4] != code) * CONDITION_UNIT for code in range(len(labels))],
            dtype=np.float64,
        ).reshape(len(labels), n)
        # Cell k's candidates are _candidates[_bounds[k]:_bounds[k + 1]].
        self._candidates, bounds = _candidates(
            np.bincount(keys, minlength=self._height * self._width).reshape(
                self._height, self._width
            )
        )
        self._bounds: list[int] = bounds.tolist()

    @property
    def candidates(self) -> int:
        """How many candidates the cells hold in all (a home is one of several cells')."""
        return len(self._candidates)

    def find(
        self,
        latitud: float,
        longitud: float,
        superficie_construida: float,
        habitaciones: int,
        condicion: str,
    ) -> Found:
        """The ``SHOWN`` most comparable testigos (fewer where fewer lie within reach)."""
        row = math.floor(latitud / CELL[0]) - self._row0
        col = math.floor(longitud / CELL[1]) - self._col0
        if not (0 <= row < self._height and 0 <= col < self._width):
            return Found([], None)
        first, last = self._bounds[row * self._width + col : row * self._width + col + 2]
        if first == last:
            return Found([], None)
        near = self._candidates[first:last]
        home = np.array(
            [
                latitud * _M_LAT / METRES_PER_UNIT,
                longitud * _M_LON / METRES_PER_UNIT,
                math.log(superficie_construida) / math.log(AREA_RATIO_PER_UNIT),
                habitaciones / ROOMS_PER_UNIT,
            ]
        )
        # Row by row, in the same order as one sum down the rows of a block: the same
        # floating-point score, so the same testigos, whichever way the block is gathered.
        score = np.abs(self._position.take(near, axis=1) - home[:, None]).sum(axis=0)
        code = self._codes.get(condicion)
        score += self._other[code].take(near) if code is not None else CONDITION_UNIT
        best = score.argpartition(SHOWN)[:SHOWN] if len(score) > SHOWN else np.arange(len(score))
        best = best[score[best].argsort(kind="stable")]
        return self._found(self._table.take(near[best], axis=0).tolist(), latitud, longitud)

    def _found(self, rows: list[list[float]], latitud: float, longitud: float) -> Found:
        """``rows`` of the table, most comparable first, as the answer shows them."""
        viviendas = []
        per_m2 = []
        for lat, lon, area, rooms, code, price in rows:
            distance = math.hypot((lat - latitud) * _M_LAT, (lon - longitud) * _M_LON)
            per_m2.append(price / area)
            viviendas.append(
                {
                    "distancia_m": round(distance),
                    "latitud": lat,
                    "longitud": lon,
                    "superficie_construida": area,
                    "habitaciones": int(rooms),
                    "condicion": self._condiciones[int(code)],
                    "precio": price,
                    "precio_m2": round(price / area, 2),
                }
            )
        per_m2.sort()
        half = len(per_m2) // 2
        median = per_m2[half] if len(per_m2) % 2 else (per_m2[half - 1] + per_m2[half]) / 2
        return Found(viviendas, round(median, 2))


def _candidates(
    counts: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """For every cell of a grid whose cells hold ``counts`` homes (homes numbered cell by
    cell, row by row), the homes of the smallest square block of cells around it that
    holds at least ``CANDIDATES`` of them, ``MAX_RINGS`` cells around at most: all of them
    in one array, and where each cell's begin (the bounds of cell k are items k and k + 1);
    ``ValueError`` past ``MAX_CANDIDATES``."""
    height, width = counts.shape
    cells = height * width
    # Homes in any block of cells, from a running sum over both axes.
    running = np.zeros((height + 1, width + 1), dtype=np.int64)
    running[1:, 1:] = counts.cumsum(axis=0).cumsum(axis=1)
    row, col = np.divmod(np.arange(cells), max(width, 1))

    def block(rings: npt.NDArray[np.int64] | int) -> tuple[npt.NDArray[np.int64], ...]:
        top, bottom = np.maximum(row - rings, 0), np.minimum(row + rings, height - 1) + 1
        left, right = np.maximum(col - rings, 0), np.minimum(col + rings, width - 1) + 1
        homes = running[bottom, right] - running[top, right] - running[bottom, left]
        return top, bottom, left, right, homes + running[top, left]

    rings = np.full(cells, MAX_RINGS, dtype=np.int64)
    for ring in range(MAX_RINGS - 1, 0, -1):  # downwards: the smallest enough is kept
        rings[block(ring)[-1] >= CANDIDATES] = ring
    top, bottom, left, right, homes = block(rings)
    bounds = np.zeros(cells + 1, dtype=np.int64)
    np.cumsum(homes, out=bounds[1:])
    if bounds[-1] > MAX_CANDIDATES:
        raise ValueError(
            f"its homes would be searched as {bounds[-1]} candidates, more than the "
            f"{MAX_CANDIDATES} allowed"
        )
    # A block is one run of homes per row of cells it covers: the runs of every block.
    searched = np.flatnonzero(homes)
    runs = (bottom - top)[searched]
    block_of = np.repeat(searched, runs)
    grid_row = top[block_of] + np.arange(runs.sum()) - np.repeat(np.cumsum(runs) - runs, runs)
    starts = np.zeros(cells + 1, dtype=np.int64)
    np.cumsum(counts.reshape(-1), out=starts[1:])
    begin = starts[grid_row * width + left[block_of]]
    length = starts[grid_row * width + right[block_of]] - begin
    # In int32 (homes and candidates are bounded far below 2**31): the array kept is also
    # the largest made, and the peak of a load stays near what it keeps.
    found = np.repeat((begin - (np.cumsum(length) - length)).astype(np.int32), length)
    found += np.arange(len(found), dtype=np.int32)
    return found, bounds
