"""A synthetic Madrid listings generator, deterministic for a seed.

Calibrated loosely to summary figures of 5,014 idealista sale listings scraped in 2021
across Madrid's 21 districts: the public GitHub repository AndreaAzabal/proyecto-vivienda,
file procesoParseadoIdealista/IdealistaDepurado.csv at commit 3cafe00 (the figures below
were computed from it; none of its rows is used or shipped):

- median asking price per built m² by district, from 6,838 €/m² (Salamanca) to
  1,717 €/m² (Villaverde), with each district's central point and median built area;
- whole city: median price 290,000 €, median built area 94 m², median 3,317 €/m²;
  coordinates within latitude 40.33 to 40.51 and longitude -3.83 to -3.55;
- rooms 3 (40 %), 2 (27 %), 4 (15 %), 1 (10 %), 5 (5 %), 0 (2 %); bathrooms 1 (45 %),
  2 (39 %), 3 (10 %), 4+ (7 %); lift 75 %, garage 35 %, green areas 23 %;
- build year median 1970 (10th percentile 1938, 90th 2006);
- condition: good 77 %, to renovate 17 %, new 6 %; new homes sit mostly in outer
  districts, and within a district renovated and new homes cost more;
- a 100-tree forest on the real listings reaches hold-out R² ≈ 0.80 and MAPE ≈ 19 %,
  so the generator adds multiplicative noise of that order rather than clean prices;
- the build year is known for half the listings; the scrape has no usable area at all.

So, as in real listings, about half the homes have no age, most no usable area and a few
no bathroom count (version 2). Prices also step across a diagonal line through Puerta del
Sol (dearer to its north-east): a border a forest on raw coordinates can only follow as a
staircase, and that the turned coordinates of ``app.features`` find in one cut.

These are asking prices, not sale prices, and the rows are invented: a model trained on
them shows how the service works, it does not appraise real homes.
"""

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from app.schemas.formulario import Condicion, Formulario
from app.training.dataset import Dataset

GENERATOR_VERSION = 2
GENERATOR_DATE = datetime(2026, 12, 6, tzinfo=UTC)  # when version 2 was written
LISTING_YEAR = 2021  # the year of the calibration scrape; ages are counted from it

# district: (listings, median €/m² built, latitude, longitude, median built m²)
DISTRICTS: dict[str, tuple[int, float, float, float, float]] = {
    "Salamanca": (271, 6838, 40.4286, -3.6807, 182),
    "Chamberí": (229, 5655, 40.4362, -3.6989, 176),
    "Chamartín": (227, 5231, 40.4546, -3.6803, 169),
    "Centro": (229, 5089, 40.4198, -3.7031, 116),
    "Retiro": (269, 4709, 40.4110, -3.6757, 121),
    "Moncloa-Aravaca": (249, 4580, 40.4480, -3.7249, 163),
    "Arganzuela": (218, 4023, 40.4006, -3.6980, 88),
    "Hortaleza": (211, 3977, 40.4750, -3.6477, 117),
    "Fuencarral-El Pardo": (229, 3788, 40.4862, -3.7075, 124),
    "Tetuán": (248, 3706, 40.4586, -3.6993, 82),
    "Barajas": (245, 3333, 40.4676, -3.5861, 92),
    "Ciudad Lineal": (259, 3260, 40.4363, -3.6522, 84),
    "San Blas-Canillejas": (211, 2815, 40.4364, -3.6142, 91),
    "Moratalaz": (206, 2672, 40.4066, -3.6470, 90),
    "Vicálvaro": (211, 2556, 40.4020, -3.5937, 94),
    "Villa de Vallecas": (227, 2442, 40.3735, -3.6164, 84),
    "Latina": (292, 2337, 40.4020, -3.7468, 72),
    "Carabanchel": (309, 2249, 40.3873, -3.7336, 78),
    "Usera": (242, 2048, 40.3823, -3.7041, 80),
    "Puente de Vallecas": (230, 1905, 40.3905, -3.6626, 72),
    "Villaverde": (202, 1717, 40.3472, -3.6977, 76),
}
PUERTA_DEL_SOL = (40.4169, -3.7035)
KM_PER_DEG_LAT, KM_PER_DEG_LON = 111.0, 84.7  # at Madrid's latitude
LAT_SPAN, LON_SPAN = (40.33, 40.51), (-3.83, -3.55)

# Multiplicative price effects (relative to "En buen estado", no lift/garage/garden).
CONDITION_EFFECT = {
    Condicion.A_REFORMAR: 0.84,
    Condicion.EN_BUEN_ESTADO: 1.00,
    Condicion.REFORMADO: 1.09,
    Condicion.A_ESTRENAR: 1.14,
}
NO_LIFT_EFFECT, GARAGE_EFFECT, GARDEN_EFFECT = 0.86, 1.05, 1.04
NOISE_SIGMA = 0.17  # log-scale; leaves a forest near the real data's R² ≈ 0.8
# Each side of the diagonal through Puerta del Sol (north-east dearer), multiplicative.
DIAGONAL_EFFECT = 1.06
# The share of homes whose value is unknown, per optional field.
UNKNOWN_SHARE = {"antiguedad": 0.5, "superficie_util": 0.6, "banos": 0.08}


def generate(n_rows: int, seed: int) -> Dataset:
    """``n_rows`` invented Madrid listings with asking prices; the same seed, the same rows."""
    rng = np.random.default_rng(seed)
    table = np.array(list(DISTRICTS.values()), dtype=np.float64)
    listings, ppm2_median, lat_c, lon_c, size_median = table.T

    district = rng.choice(len(table), size=n_rows, p=listings / listings.sum())
    lat = np.clip(lat_c[district] + rng.normal(0, 0.011, n_rows), *LAT_SPAN)
    lon = np.clip(lon_c[district] + rng.normal(0, 0.014, n_rows), *LON_SPAN)
    km = _km_from_centre(lat, lon)
    km_district = _km_from_centre(lat_c, lon_c)[district]

    construida = np.clip(np.round(rng.lognormal(np.log(size_median[district]), 0.42)), 25, 600)
    util = np.round(construida * rng.uniform(0.78, 0.93, n_rows), 1)
    habitaciones = np.clip(
        np.round(2.75 + 2.0 * np.log(construida / 95) + rng.normal(0, 0.55, n_rows)), 0, 8
    )
    banos = np.clip(np.floor(0.6 + construida / 75 + rng.normal(0, 0.45, n_rows)), 1, 6)
    banos = np.minimum(banos, habitaciones + 1)

    # Central districts are older; the spread matches the city's 1938-2006 decile range.
    year = 1975 - 12 * np.exp(-km / 3) + rng.normal(0, 26, n_rows)
    year = np.clip(np.round(year), 1850, LISTING_YEAR)
    p_new = np.clip(0.025 * km / 2.5, 0.01, 0.16)
    new = rng.random(n_rows) < p_new
    year = np.where(new, LISTING_YEAR - rng.integers(0, 3, n_rows), year)
    antiguedad = LISTING_YEAR - year

    p_renovate = np.clip(0.02 + 0.30 * antiguedad / 80, 0.02, 0.45)
    u = rng.random(n_rows)
    condicion = np.where(
        new,
        3,  # A estrenar
        np.where(u < p_renovate, 0, np.where(u < p_renovate + 0.22, 2, 1)),
    )
    conditions = [
        Condicion.A_REFORMAR,
        Condicion.EN_BUEN_ESTADO,
        Condicion.REFORMADO,
        Condicion.A_ESTRENAR,
    ]

    ascensor = rng.random(n_rows) < np.where(year >= 1960, 0.88, 0.55)
    garaje = rng.random(n_rows) < np.clip(0.12 + 0.25 * (year >= 1980) + 0.02 * km, 0, 0.9)
    jardin = rng.random(n_rows) < np.clip(0.05 + 0.035 * km, 0, 0.6)

    ppm2 = (
        ppm2_median[district]
        * np.exp(-0.045 * (km - km_district))  # cheaper away from the centre
        * (1 + 0.05 * np.sin(lat * 120) * np.cos(lon * 90))  # neighbourhood texture
        * (construida / size_median[district]) ** -0.06  # big homes cost less per m²
        * diagonal(lat, lon)
    )
    effect = (
        np.array([CONDITION_EFFECT[c] for c in conditions])[condicion]
        * np.where(ascensor, 1.0, NO_LIFT_EFFECT)
        * np.where(garaje, GARAGE_EFFECT, 1.0)
        * np.where(jardin, GARDEN_EFFECT, 1.0)
        * (1 + 0.04 * (banos - (0.6 + construida / 75)))
        * (1 - 0.0005 * np.minimum(antiguedad, 150))
    )
    noise = rng.lognormal(0, NOISE_SIGMA, n_rows)
    precio = np.round(ppm2 * construida * effect * noise, -3)
    unknown = {name: rng.random(n_rows) < share for name, share in UNKNOWN_SHARE.items()}

    def known(name: str, i: int, value: float) -> float | None:
        return None if unknown[name][i] else value

    formularios = [
        Formulario(
            latitud=round(float(lat[i]), 5),
            longitud=round(float(lon[i]), 5),
            superficie_construida=float(construida[i]),
            banos=known("banos", i, int(banos[i])),
            habitaciones=int(habitaciones[i]),
            jardin=bool(jardin[i]),
            antiguedad=known("antiguedad", i, int(antiguedad[i])),
            superficie_util=known("superficie_util", i, float(util[i])),
            ascensor=bool(ascensor[i]),
            garaje=bool(garaje[i]),
            condicion=conditions[condicion[i]],
        )
        for i in range(n_rows)
    ]
    return Dataset(
        formularios=formularios,
        precios=precio.astype(np.float64),
        source="synthetic",
        synthetic=True,
        description=(
            f"synthetic Madrid listings (generator v{GENERATOR_VERSION}, seed {seed}, "
            f"{n_rows} rows), calibrated to 2021 idealista asking-price figures; "
            "not real homes"
        ),
        dated=GENERATOR_DATE,
    )


def diagonal(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``DIAGONAL_EFFECT`` north-east of the line through Puerta del Sol at 45°, its
    inverse south-west of it."""
    north = (lat - PUERTA_DEL_SOL[0]) * KM_PER_DEG_LAT
    east = (lon - PUERTA_DEL_SOL[1]) * KM_PER_DEG_LON
    return np.where(north + east > 0, DIAGONAL_EFFECT, 1 / DIAGONAL_EFFECT)


def _km_from_centre(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    dy = (lat - PUERTA_DEL_SOL[0]) * KM_PER_DEG_LAT
    dx = (lon - PUERTA_DEL_SOL[1]) * KM_PER_DEG_LON
    result: npt.NDArray[np.float64] = np.hypot(dx, dy)
    return result
