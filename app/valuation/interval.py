"""The calibrated prediction interval: ``[price·exp(lower·σ), price·exp(upper·σ)]``.

σ is the spread of the log-price errors the forest made on training homes near this one
(``zones``); ``lower`` and ``upper`` are the conformal quantiles of those errors in units
of σ, calibrated apart for cheap, middle and dear predictions. So the interval is wider
in euros for a dearer home, and wider where the forest erred more. How it was fitted and
how often it held on hold-out homes is in the manifest (``interval``). A home with fields
left unknown is priced less surely: σ is scaled by how much larger the forest's errors
were on training homes with the same fields unknown.
"""

import math
from bisect import bisect_right
from collections.abc import Sequence

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
        self._unknown_scale = dict(calibration.unknown_scale)
        self._unseen_scale = max([1.0, *self._unknown_scale.values()])

    def scale(self, unknown: Sequence[str]) -> float:
        """σ's multiplier for a home with the ``unknown`` fields (1 when none is)."""
        return self.scale_of(pattern(unknown))

    def scale_of(self, key: str) -> float:
        """σ's multiplier for a ``pattern`` key ("" when every field is known)."""
        return self._unknown_scale.get(key, self._unseen_scale) if key else 1.0

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


def pattern(unknown: Sequence[str]) -> str:
    """The key of a set of unknown fields (already in Formulario order)."""
    return "+".join(unknown)
