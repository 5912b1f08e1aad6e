"""Calibrates what makes a price a valuation (``app.valuation``): the prediction
interval, the zone grid and the combinations seen in training.

The interval is split-conformal in log price (Vovk et al.; Lei et al., 2018), normalised
by the spread of the forest's errors in the home's zone and calibrated apart in each third
of the predicted prices (a Mondrian split). It is calibrated on the forest's out-of-bag
predictions of its own training rows: each row predicted by the trees that did not see it,
so no row is set aside and the forest is the one trained on them all. The hold-out rows,
used for none of this, measure it. On the synthetic data this reached the stated level in
every price tercile with the narrowest width of the methods compared (normalised by the
trees' spread, a quantile regression forest, constant width): see the README.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.schemas.formulario import LATITUD_MIN, LONGITUD_MIN, Formulario
from app.schemas.manifest import ConfianzaSummary, GradeSummary, IntervalSummary, ZonesSummary
from app.valuation.artefact import (
    ConfidenceThresholds,
    IntervalCalibration,
    Ratio,
    Valuation,
    ZoneCells,
)
from app.valuation.confidence import ALTA_SHARE, GRADES, MEDIA_SHARE, grade
from app.valuation.interval import Interval, pattern
from app.valuation.novelty import RATIOS, unknown_fields
from app.valuation.zones import KM_PER_DEG_LAT, KM_PER_DEG_LON, ZoneGrid

Array = npt.NDArray[np.float64]

CELL = (0.005, 0.006)  # degrees of latitude and longitude: ~555 m × ~507 m in Madrid
MIN_HOMES_REFERENCE = 30  # complete homes needed to measure the others' errors against
MIN_HOMES = 5  # a zone is a median of at least this many homes; smaller cells are dropped
RINGS = 2  # a home in a dropped cell borrows the nearest kept one this many cells away
SHRINK = 10  # a zone's σ leans on the city's as if it had this many more homes
BINS = 3  # the interval is calibrated apart in each third of the predicted prices
METHOD = (
    "split conformal in log price, normalised by the zone's error spread (σ), calibrated "
    "apart per third of predicted price on out-of-bag predictions of the training rows"
)


@dataclass(frozen=True)
class Homes:
    """Training or hold-out homes: where they are, their built area and prices."""

    latitud: Array
    longitud: Array
    construida: Array
    precio: Array
    predicho: Array  # out-of-bag (training rows) or the forest's (hold-out rows)
    unknown: list[str]  # each home's unknown fields, as an ``interval.pattern`` key

    @classmethod
    def of(cls, formularios: list[Formulario], precio: Array, predicho: Array) -> "Homes":
        """Homes from validated forms, their true prices and predictions."""
        return cls(
            np.array([f.latitud for f in formularios]),
            np.array([f.longitud for f in formularios]),
            np.array([f.superficie_construida for f in formularios]),
            precio,
            predicho,
            [pattern(unknown_fields(f)) for f in formularios],
        )

    def take(self, rows: npt.NDArray[np.bool_]) -> "Homes":
        """The homes where ``rows`` is true."""
        picked = [u for u, keep in zip(self.unknown, rows, strict=True) if keep]
        return Homes(
            self.latitud[rows],
            self.longitud[rows],
            self.construida[rows],
            self.precio[rows],
            self.predicho[rows],
            picked,
        )


def calibrate(
    train: Homes, train_forms: list[Formulario], holdout: Homes, nivel: float
) -> tuple[Valuation, IntervalSummary, ZonesSummary]:
    """The valuation artefact, and how its interval and zones did on the hold-out rows."""
    usable = np.isfinite(train.predicho) & (train.predicho > 0)
    residual = np.log(train.precio[usable]) - np.log(train.predicho[usable])
    sigma_city = float(np.sqrt(np.mean(residual**2)))
    rows, cols = _cells(train.latitud[usable], train.longitud[usable])
    zones = _zones(rows, cols, train, usable, residual, sigma_city)
    grid = ZoneGrid(zones)

    # σ of each training row's zone, leaving the row itself out of it (it is calibrated on).
    sigma = _sigmas(grid, train.latitud[usable], train.longitud[usable], sigma_city)
    own = _leave_one_out(zones, rows, cols, residual, sigma_city)
    sigma = np.where(np.isnan(own), sigma, own)
    unknown = [u for u, keep in zip(train.unknown, usable, strict=True) if keep]
    scales = _unknown_scales(residual / sigma, unknown)
    score = residual / (sigma * np.array([scales.get(u, 1.0) for u in unknown]))
    predicted = train.predicho[usable]
    edges = [float(e) for e in np.quantile(predicted, np.arange(1, BINS) / BINS)]
    bins = np.searchsorted(edges, predicted, side="right")
    alpha = 1 - nivel
    lower, upper = [], []
    for b in range(BINS):
        # A bin can be empty when a tiny forest predicts many rows alike: then all rows.
        s = np.sort(score[bins == b] if np.any(bins == b) else score)
        n = len(s)
        lower.append(float(s[max(math.floor((n + 1) * alpha / 2) - 1, 0)]))
        upper.append(float(s[min(math.ceil((n + 1) * (1 - alpha / 2)) - 1, n - 1)]))
    calibration = IntervalCalibration(
        nivel=nivel,
        edges=edges,
        lower=lower,
        upper=upper,
        sigma=sigma_city,
        unknown_scale={u: round(m, 6) for u, m in scales.items() if u},
    )
    valuation = Valuation(interval=calibration, zones=zones, ratios=_ratios(train_forms))
    return (
        valuation,
        _interval_summary(Interval(calibration), grid, holdout, sigma_city),
        _zones_summary(zones, grid, holdout),
    )


def _unknown_scales(z: Array, unknown: list[str]) -> dict[str, float]:
    """Per pattern of unknown fields, how much larger the normalised errors ``z`` are than
    on homes with every field known (on all homes, when too few are complete), leaning on
    1 as a zone's σ leans on the city's, and at least 1."""
    keys = np.array(unknown, dtype=object)
    reference = keys == ""
    if reference.sum() < MIN_HOMES_REFERENCE:
        reference = np.ones(len(z), dtype=bool)
    r2 = float(np.mean(z[reference] ** 2))
    scales = {"": 1.0}
    for key in sorted(set(unknown) - {""}):
        members = keys == key
        n = int(members.sum())
        # Never below 1: knowing less does not make a price surer, whatever a sample says.
        scales[key] = max(
            1.0, math.sqrt((float(np.sum(z[members] ** 2)) / r2 + SHRINK) / (n + SHRINK))
        )
    return scales


def _cells(latitud: Array, longitud: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    rows = np.floor((latitud - LATITUD_MIN) / CELL[0]).astype(np.int64)
    cols = np.floor((longitud - LONGITUD_MIN) / CELL[1]).astype(np.int64)
    return rows, cols


def _zones(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    train: Homes,
    usable: npt.NDArray[np.bool_],
    residual: Array,
    sigma_city: float,
) -> ZoneCells:
    per_m2 = train.precio[usable] / train.construida[usable]
    cells = []
    keys = np.stack([rows, cols], axis=1)
    unique, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    for index, (row, col) in enumerate(unique):
        if counts[index] < MIN_HOMES:
            continue
        members = inverse.reshape(-1) == index
        sigma = math.sqrt(
            (float(np.sum(residual[members] ** 2)) + SHRINK * sigma_city**2)
            / (int(counts[index]) + SHRINK)
        )
        median = float(np.median(per_m2[members]))
        cells.append((int(row), int(col), int(counts[index]), round(median, 2), round(sigma, 6)))
    return ZoneCells(
        origin=(LATITUD_MIN, LONGITUD_MIN),
        size=CELL,
        min_homes=MIN_HOMES,
        rings=RINGS,
        cells=cells,
    )


def _sigmas(grid: ZoneGrid, latitud: Array, longitud: Array, sigma_city: float) -> Array:
    zones = [grid.zone(a, o) for a, o in zip(latitud, longitud, strict=True)]
    return np.array([z.sigma if z else sigma_city for z in zones])


def _leave_one_out(
    zones: ZoneCells,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    residual: Array,
    sigma_city: float,
) -> Array:
    """For rows in a kept cell, that cell's σ without the row's own error; NaN elsewhere."""
    sums: dict[tuple[int, int], tuple[int, float]] = {}
    for row, col, r in zip(rows, cols, residual, strict=True):
        n, total = sums.get((row, col), (0, 0.0))
        sums[(row, col)] = (n + 1, total + float(r) ** 2)
    kept = {(row, col) for row, col, *_ in zones.cells}
    out = np.full(len(residual), np.nan)
    for i, (row, col, r) in enumerate(zip(rows, cols, residual, strict=True)):
        if (row, col) in kept:
            n, total = sums[(row, col)]
            out[i] = math.sqrt((total - float(r) ** 2 + SHRINK * sigma_city**2) / (n - 1 + SHRINK))
    return out


def _ratios(formularios: list[Formulario]) -> dict[str, Ratio]:
    ratios = {}
    for name, ratio in RATIOS.items():
        values = [v for f in formularios if (v := ratio(f)) is not None]
        if values:  # none where the field in it was always unknown
            ratios[name] = Ratio(min=float(min(values)), max=float(max(values)))
    return ratios


def _interval_summary(
    interval: Interval, grid: ZoneGrid, holdout: Homes, sigma_city: float
) -> IntervalSummary:
    inside, width = interval_hits(interval, grid, holdout, sigma_city)
    terciles = np.quantile(holdout.precio, [1 / 3, 2 / 3])
    tercile = np.searchsorted(terciles, holdout.precio, side="right")
    some_unknown = np.array([u != "" for u in holdout.unknown], dtype=bool)
    return IntervalSummary(
        method=METHOD,
        level=interval.nivel,
        coverage=float(inside.mean()),
        coverage_by_price_tercile=[float(inside[tercile == t].mean()) for t in range(3)],
        coverage_unknown=float(inside[some_unknown].mean()) if some_unknown.any() else None,
        rows_unknown=int(some_unknown.sum()),
        median_relative_width=float(np.median(width)),
        mean_relative_width=float(np.mean(width)),
        rows=len(holdout.precio),
    )


def interval_hits(
    interval: Interval, grid: ZoneGrid, homes: Homes, sigma_city: float
) -> tuple[npt.NDArray[np.bool_], Array]:
    """Whether each home's true price lies inside its interval, and the interval's width
    relative to the true price."""
    lower, upper = _bounds(interval, grid, homes, sigma_city)
    inside = (homes.precio >= lower) & (homes.precio <= upper)
    return inside, (upper - lower) / homes.precio


def _bounds(
    interval: Interval, grid: ZoneGrid, homes: Homes, sigma_city: float
) -> tuple[Array, Array]:
    sigma = _sigmas(grid, homes.latitud, homes.longitud, sigma_city)
    sigma *= np.array([interval.scale_of(u) for u in homes.unknown])
    return interval.bounds_many(homes.predicho, sigma)


CONFIDENCE_METHOD = (
    "the interval's width relative to the price: alta up to the hold-out homes' "
    f"{ALTA_SHARE:.0%} quantile, media up to their {MEDIA_SHARE:.0%} quantile, baja beyond; "
    "baja for a home unlike the training data"
)


def confidence(
    valuation: Valuation, holdout: Homes, unlike: npt.NDArray[np.bool_]
) -> tuple[ConfidenceThresholds, ConfianzaSummary]:
    """The widths that split the confidence grades, set on the hold-out homes (``unlike``:
    those a warning says are unlike the training data), and how each grade did there."""
    interval = Interval(valuation.interval)
    lower, upper = _bounds(interval, ZoneGrid(valuation.zones), holdout, interval.sigma)
    width = (upper - lower) / holdout.predicho
    like = width[~unlike] if (~unlike).any() else width
    alta, media = (float(q) for q in np.quantile(like, [ALTA_SHARE, MEDIA_SHARE]))
    thresholds = ConfidenceThresholds(alta=alta, media=media)
    graded = zip(width.tolist(), unlike.tolist(), strict=True)
    grades = np.array([grade(w, u, thresholds) for w, u in graded])
    ape = np.abs(holdout.predicho - holdout.precio) / holdout.precio
    inside = (holdout.precio >= lower) & (holdout.precio <= upper)
    summary = {}
    for name in GRADES:
        members = grades == name
        n = int(members.sum())
        summary[name] = GradeSummary(
            share=n / len(grades),
            median_ape=float(np.median(ape[members])) if n else None,
            coverage=float(inside[members].mean()) if n else None,
            rows=n,
        )
    return thresholds, ConfianzaSummary(
        method=CONFIDENCE_METHOD, alta=alta, media=media, grades=summary
    )


def _zones_summary(zones: ZoneCells, grid: ZoneGrid, holdout: Homes) -> ZonesSummary:
    points = zip(holdout.latitud, holdout.longitud, strict=True)
    found = [grid.zone(latitud, longitud) is not None for latitud, longitud in points]
    height_m = round(zones.size[0] * KM_PER_DEG_LAT * 1000)
    width_m = round(zones.size[1] * KM_PER_DEG_LON * 1000)
    return ZonesSummary(
        cell_m=(height_m, width_m),
        cells=len(zones.cells),
        min_homes=zones.min_homes,
        rings=zones.rings,
        coverage=float(np.mean(found)),
    )
