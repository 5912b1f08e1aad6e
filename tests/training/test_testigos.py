"""The testigos table training writes: coarsened homes, never training rows."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.schemas.formulario import LATITUD_MIN, LONGITUD_MIN
from app.training.search import GROUP_CELL
from app.training.synthetic import generate
from app.training.testigos import coarsen
from app.valuation.zones import KM_PER_DEG_LAT, KM_PER_DEG_LON

ROWS, SEED = 6_000, 11


@pytest.fixture(scope="module")
def coarsened() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The table coarsened from synthetic homes, and those homes' coordinates and prices."""
    data = generate(ROWS, SEED)
    table, _ = coarsen(data.formularios, data.precios, SEED)
    with np.load(io.BytesIO(table), allow_pickle=False) as arrays:
        columns = {name: arrays[name] for name in arrays.files}
    lat = np.array([f.latitud for f in data.formularios])
    lon = np.array([f.longitud for f in data.formularios])
    return columns, lat, lon, data.precios


def _kept(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Which training homes share their ~250 m cell with at least 4 others."""
    cells = np.floor((lat - LATITUD_MIN) / GROUP_CELL[0]) * 1000 + np.floor(
        (lon - LONGITUD_MIN) / GROUP_CELL[1]
    )
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    kept: np.ndarray = counts[inverse] >= 5
    return kept


def test_only_homes_of_cells_with_5_or_more_are_kept(
    coarsened: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray],
) -> None:
    columns, lat, lon, _ = coarsened

    assert ROWS // 10 < len(columns["precio"]) == _kept(lat, lon).sum() < ROWS


def test_no_testigo_has_a_training_homes_price_or_coordinates(
    coarsened: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray],
) -> None:
    columns, lat, lon, precios = coarsened
    kept = _kept(lat, lon)  # the table keeps the training order
    training = set(zip(lat.tolist(), lon.tolist(), strict=True))
    stored = set(zip(columns["latitud"].tolist(), columns["longitud"].tolist(), strict=True))

    assert not training & stored
    assert not np.any(columns["precio"] == precios[kept])


def test_every_home_moved_30_to_60_m(
    coarsened: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray],
) -> None:
    columns, lat, lon, _ = coarsened
    kept = _kept(lat, lon)
    metres = np.hypot(
        (columns["latitud"] - lat[kept]) * KM_PER_DEG_LAT * 1000,
        (columns["longitud"] - lon[kept]) * KM_PER_DEG_LON * 1000,
    )

    # The stored coordinates are rounded to 5 decimals: about a metre either way.
    assert 29 <= metres.min() < 31
    assert 59 < metres.max() <= 61
    directions = np.arctan2(columns["latitud"] - lat[kept], columns["longitud"] - lon[kept])
    assert np.histogram(directions, bins=4, range=(-np.pi, np.pi))[0].min() > len(metres) / 5


def test_prices_move_at_most_2_5_percent_and_are_rounded_to_1000(
    coarsened: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray],
) -> None:
    columns, lat, lon, precios = coarsened
    original = precios[_kept(lat, lon)]
    moved = np.abs(columns["precio"] - original)

    assert np.all(columns["precio"] % 1000 == 0)
    # Up to 2.5 % and half a step of rounding, or one step where rounding gave it back.
    assert np.all(moved <= np.maximum(0.025 * original + 500, 1000))
    assert np.quantile(moved / original, 0.9) > 0.015  # moved at random, not by a step


def test_sin_testigos_leaves_the_table_out_and_the_answer_says_so(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    args = ["train", "--out", str(bundle), "--rows", "300", "--trees", "4", "--sin-testigos"]

    assert main(args) == 0

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert not (bundle / "testigos.npz").exists()
    assert "testigos.npz" not in manifest["artefacts"]
    assert manifest["testigos"] is None
