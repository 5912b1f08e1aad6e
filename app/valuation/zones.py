"""The area around a home: the training homes' median €/m² in its cell of the grid.

The grid's cells are a few hundred metres across; a cell with fewer than ``min_homes``
training homes was dropped at training time, and a home in such a cell borrows the
nearest kept cell up to ``rings`` cells away. Farther than that, the home has no zone:
no training home lies near it.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.valuation.artefact import ZoneCells

KM_PER_DEG_LAT = 111.2
# Madrid's municipal area spans ~40.3-40.65 N: one degree of longitude is ~84.5 km there.
KM_PER_DEG_LON = 84.5
# Resolving every cell's zone at load looks at each kept cell's (2 rings + 1)² neighbours:
# far above a city's (Madrid: ~1,250 kept cells, 2 rings, ~31,000), and a fraction of a
# second at this bound; a grid past it is refused rather than hang a load or a reload.
MAX_NEIGHBOURS = 2_000_000


@dataclass(frozen=True)
class Zone:
    """A kept cell: its training homes' median €/m², how many homes, and the spread of
    the forest's log-price errors there (the interval's σ)."""

    precio_m2_mediano: float
    viviendas: int
    sigma: float
    south: float
    west: float
    north: float
    east: float

    def radius_km(self, latitud: float, longitud: float) -> float:
        """Distance from a point to this cell's farthest corner: every home counted lies
        within it."""
        dy = max(abs(latitud - self.south), abs(latitud - self.north)) * KM_PER_DEG_LAT
        dx = max(abs(longitud - self.west), abs(longitud - self.east)) * KM_PER_DEG_LON
        return math.hypot(dx, dy)


class ZoneGrid:
    """Finds the zone of a point."""

    def __init__(self, grid: ZoneCells) -> None:
        """``ValueError`` (one line) when resolving its zones would look at more than
        ``MAX_NEIGHBOURS`` cells."""
        neighbours = len(grid.cells) * (2 * grid.rings + 1) ** 2
        if neighbours > MAX_NEIGHBOURS:
            raise ValueError(
                f"its {len(grid.cells)} cells lend their zone {grid.rings} cells around: "
                f"{neighbours} cells to resolve, more than the {MAX_NEIGHBOURS} allowed"
            )
        self.rings = grid.rings
        # Farther than this from every kept cell's homes, a point has no zone.
        self.reach_km = grid.rings * min(
            grid.size[0] * KM_PER_DEG_LAT, grid.size[1] * KM_PER_DEG_LON
        )
        self._lat0, self._lon0 = grid.origin
        self._height, self._width = grid.size
        self._cells: dict[tuple[int, int], Zone] = {}
        for row, col, homes, median, sigma in grid.cells:
            south, west = self._lat0 + row * self._height, self._lon0 + col * self._width
            self._cells[(row, col)] = Zone(
                median, homes, sigma, south, west, south + self._height, west + self._width
            )
        # Every cell with a zone is resolved when the grid loads: a worker's memory is all
        # taken at start, and does not grow (nor fragment) with the homes it is asked about.
        self._resolved = self._nearest_cells()

    def zone(self, latitud: float, longitud: float) -> Zone | None:
        """The zone of a point, or None when no kept cell is within ``rings`` cells."""
        row = math.floor((latitud - self._lat0) / self._height)
        col = math.floor((longitud - self._lon0) / self._width)
        return self._resolved.get((row, col))

    def zones(
        self, latitud: npt.NDArray[np.float64], longitud: npt.NDArray[np.float64]
    ) -> list[Zone | None]:
        """``zone`` of many points: the cells computed on whole columns (the same float
        operations, so the same cells), each distinct cell resolved once."""
        rows = np.floor((latitud - self._lat0) / self._height).astype(np.int64)
        cols = np.floor((longitud - self._lon0) / self._width).astype(np.int64)
        if len(rows) == 0:
            return []
        # One number per cell: np.unique on a flat array sorts far faster than on pairs.
        low = int(cols.min())
        key = rows * (int(cols.max()) - low + 1) + (cols - low)
        _, first, which = np.unique(key, return_index=True, return_inverse=True)
        cells = zip(rows[first].tolist(), cols[first].tolist(), strict=True)
        found = [self._resolved.get(cell) for cell in cells]
        return [found[i] for i in which.reshape(-1).tolist()]

    def _nearest_cells(self) -> dict[tuple[int, int], Zone]:
        """The zone of every cell that has one: its own, or else the nearest kept cell up
        to ``rings`` cells away (at equal distances, the first in rows then columns)."""
        offsets = [
            (
                dr,
                dc,
                math.hypot(dr * self._height * KM_PER_DEG_LAT, dc * self._width * KM_PER_DEG_LON),
            )
            for dr in range(-self.rings, self.rings + 1)
            for dc in range(-self.rings, self.rings + 1)
        ]
        best: dict[tuple[int, int], tuple[float, int, Zone]] = {}
        for (row, col), zone in self._cells.items():
            for order, (dr, dc, distance) in enumerate(offsets):
                cell = (row - dr, col - dc)
                found = best.get(cell)
                if found is None or (distance, order) < found[:2]:
                    best[cell] = (distance, order, zone)
        return {cell: zone for cell, (_, _, zone) in best.items()} | self._cells
