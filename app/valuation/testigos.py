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
import threading
from collections import OrderedDict
from collections.abc import Callable
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
# Each cell's candidates, as indices into the table, are kept for the next home in that
# cell while they fit in this many bytes (the least recently used are let go): a bound
# that does not grow with the bundle, whose blocks overlap nine times over or more.
BLOCK_CACHE_BYTES = 32 * 2**20
_ENTRY_BYTES = 200  # a cache entry's own cost beside its array, so empty blocks count too

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
        # Homes of cell k are rows _starts[k] to _starts[k + 1] of the sorted table, and the
        # cells of one grid row are contiguous: a block of cells is one slice per row.
        self._starts = np.searchsorted(
            keys[order], np.arange(self._height * self._width + 1)
        ).tolist()
        # How many rings each cell's search takes, found once per cell.
        self._rings = lru_cache(maxsize=65536)(self._rings_needed)
        # Gathering a block's slices costs more than scoring it: each cell's is kept.
        self._candidates = _Cache(self._candidates_of, BLOCK_CACHE_BYTES)

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
        near = self._candidates.get((row, math.floor(longitud / CELL[1]) - self._col0))
        if not len(near):
            return Found([], None)
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
        best = (
            np.argpartition(score, SHOWN)[:SHOWN] if len(score) > SHOWN else np.arange(len(score))
        )
        best = best[np.argsort(score[best], kind="stable")]
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
        return Found(viviendas, round(statistics.median(per_m2), 2))

    @property
    def cached_bytes(self) -> int:
        """What the cells' candidate cache holds now (at most ``BLOCK_CACHE_BYTES``)."""
        return self._candidates.bytes

    def _candidates_of(self, cell: tuple[int, int]) -> npt.NDArray[np.int32]:
        """The homes of the smallest block of cells around ``cell`` holding at least
        ``CANDIDATES`` of them, up to ``MAX_RINGS`` cells away (rows of the sorted table)."""
        row, col = cell
        slices = self._block(row, col, self._rings(row, col))
        if not slices:
            return np.empty(0, dtype=np.int32)
        return np.concatenate([np.arange(start, end, dtype=np.int32) for start, end in slices])

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


class _Cache:
    """``build(key)``'s arrays, kept by key while their bytes fit in ``budget``; the least
    recently used are let go first. Safe to share between threads."""

    def __init__(
        self, build: Callable[[tuple[int, int]], npt.NDArray[np.int32]], budget: int
    ) -> None:
        self._build = build
        self._budget = budget
        self._entries: OrderedDict[tuple[int, int], npt.NDArray[np.int32]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def get(self, key: tuple[int, int]) -> npt.NDArray[np.int32]:
        """The array for ``key``, built on first use."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        # Built outside the lock: two threads may build one key, and the second is dropped.
        built = self._build(key)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = built
                self.bytes += built.nbytes + _ENTRY_BYTES
                while self.bytes > self._budget:
                    _, dropped = self._entries.popitem(last=False)
                    self.bytes -= dropped.nbytes + _ENTRY_BYTES
        return built
