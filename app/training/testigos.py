"""Writes the testigos table (``app.valuation.testigos``): the training homes, coarsened so
that none is a training row, the way idealista anonymised its published 2018 data set.

- Only homes whose neighbourhood holds at least ``MIN_HOMES`` training homes are kept. The
  neighbourhood is the ~250 m cell the grouped cross-validation uses
  (``app.training.search.GROUP_CELL``), not the ~530 m zone: a home alone in a few streets
  is the one a coarsened record could be traced back to, and 250 m is the scale at which
  a 30-60 m shift still leaves it among its neighbours.
- Each price is moved at random by up to ``PRICE_JITTER`` and rounded to
  ``PRICE_ROUNDING`` euros; where that gives the price back, it moves one step of
  rounding further, in the direction it was moved.
- Each home is moved ``SHIFT_M`` metres, a random distance in a random direction.

The random draws take the training seed: the same data and seed give the same table.
"""

import io
import math

import numpy as np
import numpy.typing as npt

from app.features import default_encodings
from app.schemas.formulario import LATITUD_MIN, LONGITUD_MIN, Formulario
from app.schemas.manifest import TestigosSummary
from app.training.search import GROUP_CELL
from app.valuation.testigos import COLUMNS, LABELS
from app.valuation.zones import KM_PER_DEG_LAT, KM_PER_DEG_LON

MIN_HOMES = 5
PRICE_JITTER = 0.025
PRICE_ROUNDING = 1_000
SHIFT_M = (30.0, 60.0)
COORDINATE_DECIMALS = 5  # ~1 m: finer would only say more about the shift


def coarsen(
    formularios: list[Formulario], precios: npt.NDArray[np.float64], seed: int
) -> tuple[bytes, TestigosSummary]:
    """The ``testigos.npz`` bytes for these training homes, and what the manifest says of
    it."""
    rng = np.random.default_rng([seed, 19])  # its own stream: the forest's draws stay as they were
    latitud = np.array([f.latitud for f in formularios])
    longitud = np.array([f.longitud for f in formularios])
    keep = _in_neighbourhoods(latitud, longitud)
    n = int(keep.sum())
    kept = [f for f, k in zip(formularios, keep, strict=True) if k]
    precio = _coarse_prices(precios[keep], rng)
    lat, lon = _shifted(latitud[keep], longitud[keep], rng)
    codes = default_encodings()["condicion"]
    arrays = {
        "latitud": lat,
        "longitud": lon,
        "superficie_construida": np.array([f.superficie_construida for f in kept], dtype=float),
        "habitaciones": np.array([f.habitaciones for f in kept], dtype=np.int16),
        "condicion": np.array([codes[f.condicion] for f in kept], dtype=np.int8),
        "precio": precio,
        LABELS: np.array(list(codes)),
    }
    assert set(arrays) == {*COLUMNS, LABELS}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    summary = TestigosSummary(
        rows=n,
        cell_m=(
            round(GROUP_CELL[0] * KM_PER_DEG_LAT * 1000),
            round(GROUP_CELL[1] * KM_PER_DEG_LON * 1000),
        ),
        min_homes=MIN_HOMES,
        price_jitter=PRICE_JITTER,
        price_rounding=PRICE_ROUNDING,
        shift_m=SHIFT_M,
    )
    return buffer.getvalue(), summary


def _in_neighbourhoods(
    latitud: npt.NDArray[np.float64], longitud: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Which homes share their ~250 m cell with at least ``MIN_HOMES - 1`` others."""
    rows = np.floor((latitud - LATITUD_MIN) / GROUP_CELL[0]).astype(np.int64)
    cols = np.floor((longitud - LONGITUD_MIN) / GROUP_CELL[1]).astype(np.int64)
    _, inverse, counts = np.unique(
        np.stack([rows, cols], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    keep: npt.NDArray[np.bool_] = counts[inverse.reshape(-1)] >= MIN_HOMES
    return keep


def _coarse_prices(
    precio: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    moved = rng.uniform(-PRICE_JITTER, PRICE_JITTER, len(precio))
    coarse = np.round(precio * (1 + moved) / PRICE_ROUNDING) * PRICE_ROUNDING
    same = coarse == precio
    coarse[same] += np.where(moved[same] < 0, -PRICE_ROUNDING, PRICE_ROUNDING)
    # A price below one step of rounding moved down would be nothing: it moves up instead.
    low = coarse <= 0
    coarse[low] = precio[low] + PRICE_ROUNDING
    return coarse


def _shifted(
    latitud: npt.NDArray[np.float64], longitud: npt.NDArray[np.float64], rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    metres = rng.uniform(*SHIFT_M, len(latitud))
    angle = rng.uniform(0, 2 * math.pi, len(latitud))
    lat = latitud + metres * np.sin(angle) / (KM_PER_DEG_LAT * 1000)
    lon = longitud + metres * np.cos(angle) / (KM_PER_DEG_LON * 1000)
    return np.round(lat, COORDINATE_DECIMALS), np.round(lon, COORDINATE_DECIMALS)
