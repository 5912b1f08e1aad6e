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
import statistics
from dataclasses import dataclass
from functools import lru_cache
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
        self._row0 = int(rows.min()) if n else 0
        self._col0 = int(cols.min()) if n else 0
        self._width = int(cols.max()) - self._col0 + 1 if n else 1
        self._height = int(rows.max()) - self._row0 + 1 if n else 0
        keys = (rows - self._row0) * self._width + (cols - self._col0)
        order = np.argsort(keys, kind="stable")
        self._table = table[order]
        # What the score is computed on, in its units: metres north and east, built area and
        # rooms; then, per condition, the score of another condition than it (0 or 1 unit);
        # then the table's own columns, so that one slice holds all. One row per column:
        # the score sums down the rows.
        self._scored = 4 + len(labels)
        self._scaled = np.vstack(
            [
                self._table[:, 0] * _M_LAT / METRES_PER_UNIT,
                self._table[:, 1] * _M_LON / METRES_PER_UNIT,
                np.log(self._table[:, 2]) / math.log(AREA_RATIO_PER_UNIT),
                self._table[:, 3] / ROOMS_PER_UNIT,
                *[(self._table[:, 4] != code) * CONDITION_UNIT for code in range(len(labels))],
                self._table.T,
            ]
        )
        # Homes of cell k are rows _starts[k] to _starts[k + 1] of the sorted table, and the
        # cells of one grid row are contiguous: a block of cells is one slice per row.
        self._starts = np.searchsorted(
            keys[order], np.arange(self._height * self._width + 1)
        ).tolist()
        # How many rings each cell's search takes, found once per cell.
        self._rings = lru_cache(maxsize=65536)(self._rings_needed)

    def find(
        self,
        latitud: float,
        longitud: float,
        superficie_construida: float,
        habitaciones: int,
        condicion: str,
    ) -> Found:
        """The ``SHOWN`` most comparable testigos (fewer where fewer lie within reach)."""
        near = self._near(latitud, longitud)
        if not near.shape[1]:
            return Found([], None)
        home = np.array(
            [
                [latitud * _M_LAT / METRES_PER_UNIT],
                [longitud * _M_LON / METRES_PER_UNIT],
                [math.log(superficie_construida) / math.log(AREA_RATIO_PER_UNIT)],
                [habitaciones / ROOMS_PER_UNIT],
            ]
        )
        score = np.abs(near[:4] - home).sum(axis=0)
        code = self._codes.get(condicion)
        score += near[4 + code] if code is not None else CONDITION_UNIT
        best = (
            np.argpartition(score, SHOWN)[:SHOWN] if len(score) > SHOWN else np.arange(len(score))
        )
        best = best[np.argsort(score[best], kind="stable")]
        viviendas = []
        per_m2 = []
        for lat, lon, area, rooms, code, price in near[self._scored :, best].T.tolist():
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
        return Found(viviendas, round(statistics.median(per_m2), 2))

    def _near(self, latitud: float, longitud: float) -> npt.NDArray[np.float64]:
        """The homes of the smallest block of cells around the point holding at least
        ``CANDIDATES`` of them, up to ``MAX_RINGS`` cells away (columns of ``_scaled``)."""
        row = math.floor(latitud / CELL[0]) - self._row0
        col = math.floor(longitud / CELL[1]) - self._col0
        slices = self._block(row, col, self._rings(row, col))
        size = sum(end - start for start, end in slices)
        # Into a row-major array: left to itself, numpy would lay it out by columns, and
        # every row operation of the score would stride.
        out = np.empty((self._scaled.shape[0], size))
        if size:
            np.concatenate([self._scaled[:, start:end] for start, end in slices], axis=1, out=out)
        return out

    def _rings_needed(self, row: int, col: int) -> int:
        for rings in range(1, MAX_RINGS):
            if sum(end - start for start, end in self._block(row, col, rings)) >= CANDIDATES:
                return rings
        return MAX_RINGS

    def _block(self, row: int, col: int, rings: int) -> list[tuple[int, int]]:
        first, last = max(col - rings, 0), min(col + rings, self._width - 1)
        if first > last:
            return []
        starts = self._starts
        return [
            (starts[r * self._width + first], starts[r * self._width + last + 1])
            for r in range(max(row - rings, 0), min(row + rings, self._height - 1) + 1)
        ]
