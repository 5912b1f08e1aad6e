"""The synthetic Madrid listings generator."""

import numpy as np

from app.schemas import Condicion
from app.training.synthetic import PUERTA_DEL_SOL, generate


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a, b, c = generate(300, 1), generate(300, 1), generate(300, 2)

    assert a.formularios == b.formularios
    assert np.array_equal(a.precios, b.precios)
    assert a.formularios != c.formularios


def test_rows_are_plausible_madrid_homes() -> None:
    data = generate(4000, 5)
    homes = data.formularios
    lat = np.array([h.latitud for h in homes])
    lon = np.array([h.longitud for h in homes])
    built = np.array([h.superficie_construida for h in homes])

    assert lat.min() >= 40.33
    assert lat.max() <= 40.51
    assert lon.min() >= -3.83
    assert lon.max() <= -3.55
    assert all((h.superficie_util or 0) <= h.superficie_construida for h in homes)
    assert 200_000 < np.median(data.precios) < 400_000  # calibration: 290,000 €
    assert 2_500 < np.median(data.precios / built) < 4_000  # calibration: 3,317 €/m²
    assert {h.condicion for h in homes} == set(Condicion)
    assert data.synthetic
    assert "synthetic" in data.description


def test_price_per_m2_falls_away_from_the_centre() -> None:
    data = generate(6000, 9)
    homes = data.formularios
    km = np.array(
        [
            np.hypot((h.latitud - PUERTA_DEL_SOL[0]) * 111, (h.longitud - PUERTA_DEL_SOL[1]) * 85)
            for h in homes
        ]
    )
    ppm2 = data.precios / np.array([h.superficie_construida for h in homes])

    assert np.median(ppm2[km < 3]) > 1.5 * np.median(ppm2[km > 8])


def test_what_is_unknown_is_as_common_as_in_real_listings() -> None:
    homes = generate(4000, 6).formularios

    def share(attribute: str) -> float:
        return float(np.mean([getattr(h, attribute) is None for h in homes]))

    # The 2021 scrape: half without a build year, none with a usable area.
    assert 0.45 < share("antiguedad") < 0.55
    assert 0.55 < share("superficie_util") < 0.65
    assert 0.04 < share("banos") < 0.12
    assert any(h.antiguedad is None and h.superficie_util is None for h in homes)
    assert any(h.banos is not None and h.antiguedad is not None for h in homes)
