"""The calibrated prediction interval: ``[price·exp(lower·σ), price·exp(upper·σ)]``.

σ is the spread of the log-price errors the forest made on training homes near this one
(``zones``); ``lower`` and ``upper`` are the conformal quantiles of those errors in units
of σ, calibrated apart for cheap, middle and dear predictions. So the interval is wider
in euros for a dearer home, and wider where the forest erred more. How it was fitted and
how often it held on hold-out homes is in the manifest (``interval``).
"""

import math
from bisect import bisect_right

import numpy as np
import numpy.typing as npt

from app.valuation.artefact import IntervalCalibration


class Interval:
    """Bounds for predicted prices, from a bundle's calibration."""

    def __init__(self, calibration: IntervalCalibration) -> None:
        if not len(calibration.lower) == len(calibration.upper) == len(calibration.edges) + 1:
            raise ValueError("an interval needs one bound pair per bin, edges between bins")
        self.nivel = calibration.nivel
        self.sigma = calibration.sigma
        self._edges = list(calibration.edges)
        self._lower = list(calibration.lower)
        self._upper = list(calibration.upper)
        self._edges_array = np.array(self._edges)
        self._lower_array = np.array(self._lower)
        self._upper_array = np.array(self._upper)

    def bounds(self, price: float, sigma: float) -> tuple[float, float]:
        """Lower and upper bound for one predicted price (plain floats: no numpy call)."""
        b = bisect_right(self._edges, price)
        return price * math.exp(self._lower[b] * sigma), price * math.exp(self._upper[b] * sigma)

    def bounds_many(
        self, prices: npt.NDArray[np.float64], sigmas: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Lower and upper bounds for many predicted prices."""
        b = np.searchsorted(self._edges_array, prices, side="right")
        lower = prices * np.exp(self._lower_array[b] * sigmas)
        upper = prices * np.exp(self._upper_array[b] * sigmas)
        return lower, upper
