"""``valuation.json``: the bundle's calibration, zone aggregates, training combinations and
confidence thresholds.

Written by ``tasador train``, read by the service. It holds aggregates only (a zone is a
count and a median of at least ``min_homes`` homes), never a training row: a user's own
training data may be private.
"""

from pydantic import BaseModel, ConfigDict, Field

VALUATION_FILE = "valuation.json"


class IntervalCalibration(BaseModel):
    """A split-conformal interval in log price, scaled by the zone's spread (σ) and
    calibrated apart in each third of the predicted prices."""

    model_config = ConfigDict(extra="forbid")

    nivel: float = Field(gt=0, lt=1, description="Share of true prices inside, e.g. 0.8.")
    edges: list[float] = Field(description="Predicted prices splitting the calibration bins.")
    lower: list[float] = Field(description="Per bin: log(lower / price) in units of σ.")
    upper: list[float] = Field(description="Per bin: log(upper / price) in units of σ.")
    sigma: float = Field(gt=0, description="σ where no zone is near enough.")
    unknown_scale: dict[str, float] = Field(
        default_factory=dict,
        description="σ is multiplied by this for homes with these fields unknown (names "
        "joined by '+', in Formulario order); a pattern not listed takes the largest.",
    )


class ZoneCells(BaseModel):
    """A grid over Madrid; each kept cell has at least ``min_homes`` training homes."""

    model_config = ConfigDict(extra="forbid")

    origin: tuple[float, float] = Field(description="Latitude and longitude of cell (0, 0).")
    size: tuple[float, float] = Field(description="Cell height and width, in degrees.")
    min_homes: int = Field(ge=1)
    rings: int = Field(ge=0, description="How many cells away a home may borrow a zone.")
    # (row, column, homes, median €/m², σ of the log-price errors there)
    cells: list[tuple[int, int, int, float, float]]


class Ratio(BaseModel):
    """Smallest and largest value of a ratio of two features in the training data."""

    model_config = ConfigDict(extra="forbid")

    min: float
    max: float


class ConfidenceThresholds(BaseModel):
    """The interval's relative width (``(upper - lower) / price``) up to which a valuation
    is graded ``alta``, and up to which ``media``; set on the hold-out homes."""

    model_config = ConfigDict(extra="forbid")

    alta: float = Field(gt=0)
    media: float = Field(gt=0)


class Valuation(BaseModel):
    """The whole ``valuation.json``."""

    model_config = ConfigDict(extra="forbid")

    interval: IntervalCalibration
    zones: ZoneCells
    ratios: dict[str, Ratio] = Field(description="Ratios of features, as named in novelty.")
    confianza: ConfidenceThresholds | None = Field(
        default=None, description="Absent in bundles trained before it existed."
    )
