"""The confidence grade of a valuation: ``alta``, ``media`` or ``baja``.

It is read from the calibrated interval's width relative to the price: the interval is
wider where the forest erred more on training homes like this one (its zone, its price
band, the fields it leaves unknown), so a narrower interval marks a surer price. The two
widths that split the grades are quantiles of the hold-out homes' widths, and the
manifest states each grade's share of hold-out homes, median error and coverage
(``confianza``). A home unlike anything in training (a value or a combination outside
the training ranges, or no training home near) is ``baja`` whatever its width: the
interval was calibrated on homes like the training data, so its width says nothing there.
Fields left unknown do not lower the grade by themselves: how much less surely such homes
were priced is measured, and already widens their interval.
"""

from collections.abc import Sequence
from typing import Literal

from app.schemas.prediccion import Advertencia
from app.valuation.artefact import ConfidenceThresholds

Grade = Literal["alta", "media", "baja"]
GRADES: tuple[Grade, ...] = ("alta", "media", "baja")
# Shares of the hold-out homes, narrowest intervals first, graded alta and up to media.
ALTA_SHARE = 0.5
MEDIA_SHARE = 0.85
# Warnings that concern the fields left unknown, not a home unlike the training data.
UNKNOWN_WARNING = "desconocidos"


def grade(relative_width: float, unlike: bool, thresholds: ConfidenceThresholds) -> Grade:
    """The grade of a valuation whose interval is ``relative_width`` of its price;
    ``unlike``: the home is outside what the model was trained on."""
    if unlike or relative_width > thresholds.media:
        return "baja"
    return "alta" if relative_width <= thresholds.alta else "media"


def is_unlike(advertencias: Sequence[Advertencia]) -> bool:
    """Whether any warning says the home is unlike the training data."""
    return any(a.campo != UNKNOWN_WARNING for a in advertencias)
