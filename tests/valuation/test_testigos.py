"""Testigos in the answers: the most comparable coarsened training homes, never a row."""

import math
import statistics
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.bundle.loader import BundleError, load_bundle
from app.config import EMBEDDED_MODEL_DIR
from app.schemas.formulario import LATITUD_MAX, LATITUD_MIN, LONGITUD_MAX, LONGITUD_MIN
from app.training.synthetic import generate
from app.valuation import testigos as t
from app.valuation.zones import KM_PER_DEG_LAT, KM_PER_DEG_LON
from tests.helpers import TINY, make_client, rehash, sample_homes, train_quietly

FIELDS = {
    "distancia_m",
    "latitud",
    "longitud",
    "superficie_construida",
    "habitaciones",
    "condicion",
    "precio",
    "precio_m2",
}
CENTRO = {
    "latitud": 40.4168, "longitud": -3.7038, "superficie_construida": 95.0, "baños": 2,
    "habitaciones": 3, "jardin": False, "antiguedad": 40, "superficie_util": 80.0,
    "ascensor": True, "garaje": False, "condicion": "Reformado",
}  # fmt: skip


def _metres(a: dict[str, Any], lat: float, lon: float) -> float:
    return float(
        np.hypot(
            (a["latitud"] - lat) * KM_PER_DEG_LAT * 1000,
            (a["longitud"] - lon) * KM_PER_DEG_LON * 1000,
        )
    )


def _brute_force(
    arrays: dict[str, Any], lat: float, lon: float, area: float, rooms: int, condicion: str
) -> t.Found:
    """What ``Testigos.find`` is meant to answer, by scoring every home there is: those of
    the smallest square of cells around the point holding ``CANDIDATES`` homes (at most
    ``MAX_RINGS`` cells away), the ``SHOWN`` with the lowest score, lowest first."""
    lats, lons, areas, roomss, codes, prices = (arrays[c].astype(float) for c in t.COLUMNS)
    labels = arrays[t.LABELS].tolist()
    cells = np.maximum(
        np.abs(np.floor(lats / t.CELL[0]) - math.floor(lat / t.CELL[0])),
        np.abs(np.floor(lons / t.CELL[1]) - math.floor(lon / t.CELL[1])),
    )
    rings = next(
        (r for r in range(1, t.MAX_RINGS) if (cells <= r).sum() >= t.CANDIDATES), t.MAX_RINGS
    )
    near = np.flatnonzero(cells <= rings)
    metres_lat, metres_lon = KM_PER_DEG_LAT * 1000, KM_PER_DEG_LON * 1000
    score = (
        np.abs(lats * metres_lat / t.METRES_PER_UNIT - lat * metres_lat / t.METRES_PER_UNIT)
        + np.abs(lons * metres_lon / t.METRES_PER_UNIT - lon * metres_lon / t.METRES_PER_UNIT)
        + np.abs(
            np.log(areas) / math.log(t.AREA_RATIO_PER_UNIT)
            - math.log(area) / math.log(t.AREA_RATIO_PER_UNIT)
        )
        + np.abs(roomss / t.ROOMS_PER_UNIT - rooms / t.ROOMS_PER_UNIT)
        + np.where(
            codes == (labels.index(condicion) if condicion in labels else -1),
            0.0,
            t.CONDITION_UNIT,
        )
    )
    best = near[np.argsort(score[near], kind="stable")][: t.SHOWN].tolist()
    viviendas = [
        {
            "distancia_m": round(
                math.hypot((lats[i] - lat) * metres_lat, (lons[i] - lon) * metres_lon)
            ),
            "latitud": lats[i],
            "longitud": lons[i],
            "superficie_construida": areas[i],
            "habitaciones": int(roomss[i]),
            "condicion": labels[int(codes[i])],
            "precio": prices[i],
            "precio_m2": round(prices[i] / areas[i], 2),
        }
        for i in best
    ]
    per_m2 = [prices[i] / areas[i] for i in best]
    return t.Found(viviendas, round(statistics.median(per_m2), 2) if best else None)


def test_the_lookup_finds_what_scoring_every_home_finds() -> None:
    arrays = _embedded_arrays()
    table = t.Testigos(arrays)
    # Homes like the training data, and points anywhere in the API's box: the city's
    # edges, where the search widens ring by ring, and beyond its reach.
    homes: list[tuple[float, float, float, int, str]] = [
        (f.latitud, f.longitud, f.superficie_construida, f.habitaciones, f.condicion)
        for f in generate(200, 11).formularios
    ]
    rng = np.random.default_rng(11)
    conditions = [*arrays[t.LABELS].tolist(), "Desconocida"]
    homes += [
        (
            float(rng.uniform(LATITUD_MIN, LATITUD_MAX)),
            float(rng.uniform(LONGITUD_MIN, LONGITUD_MAX)),
            float(rng.uniform(25, 600)),
            int(rng.integers(0, 8)),
            str(rng.choice(conditions)),
        )
        for _ in range(200)
    ]

    for home in homes:
        assert table.find(*home) == _brute_force(arrays, *home), home


def _embedded_arrays() -> dict[str, Any]:
    with np.load(EMBEDDED_MODEL_DIR / t.TESTIGOS_FILE) as npz:
        return {name: npz[name] for name in npz.files}


def test_a_table_spread_over_too_many_cells_is_refused() -> None:
    arrays = _embedded_arrays()
    arrays["latitud"] = arrays["latitud"].copy()
    arrays["latitud"][0] = 0.0  # one home at the equator: a grid from there to Madrid

    with pytest.raises(ValueError, match=r"spread over \d+ x \d+ cells .* more than the"):
        t.Testigos(arrays)


def test_a_table_with_too_many_candidates_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = _embedded_arrays()
    table = t.Testigos(arrays)
    monkeypatch.setattr(t, "MAX_CANDIDATES", table.candidates - 1)

    with pytest.raises(ValueError, match=f"as {table.candidates} candidates, more than"):
        t.Testigos(arrays)


def test_building_the_search_index_takes_little_more_memory_than_it_keeps() -> None:
    # 20,000 homes within ~1 km: every cell's block holds thousands of candidates, which
    # outweigh the table itself.
    rng = np.random.default_rng(5)
    n = 20_000
    arrays = {
        "latitud": 40.40 + rng.uniform(0, 0.01, n),
        "longitud": -3.70 + rng.uniform(0, 0.012, n),
        "superficie_construida": rng.uniform(40, 200, n),
        "habitaciones": rng.integers(1, 5, n).astype(np.int16),
        "condicion": rng.integers(0, 4, n).astype(np.int8),
        "precio": rng.uniform(1e5, 1e6, n),
        t.LABELS: _embedded_arrays()[t.LABELS],
    }
    tracemalloc.start()
    try:
        table = t.Testigos(arrays)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    kept = table.candidates * np.dtype(np.int32).itemsize
    assert table.candidates > 1_000_000
    assert peak < 4 * kept  # 3x; built in int64, 6x


def test_an_appraisal_shows_six_near_and_alike_homes(embedded: TestClient) -> None:
    testigos = embedded.post("/predecir", json=CENTRO).json()["testigos"]

    viviendas = testigos["viviendas"]
    assert len(viviendas) == 6
    assert testigos["aviso"] is None
    for v in viviendas:
        assert set(v) == FIELDS
        assert v["distancia_m"] == pytest.approx(_metres(v, 40.4168, -3.7038), abs=1)
        assert v["distancia_m"] < 1000
        assert 95 / 1.6 < v["superficie_construida"] < 95 * 1.6
        assert abs(v["habitaciones"] - 3) <= 1
        assert v["precio"] % 1000 == 0
        assert v["precio_m2"] == pytest.approx(v["precio"] / v["superficie_construida"], abs=0.01)
    assert sum(v["condicion"] == "Reformado" for v in viviendas) >= 3
    assert testigos["mediana_precio_m2"] == pytest.approx(
        statistics.median(v["precio"] / v["superficie_construida"] for v in viviendas), abs=0.01
    )


def test_the_most_comparable_come_first(embedded: TestClient) -> None:
    # A large flat: the first testigos are larger than those a small flat there gets.
    large = embedded.post(
        "/predecir",
        json={
            **CENTRO,
            "superficie_construida": 250.0,
            "superficie_util": 220.0,
            "habitaciones": 5,
        },
    )
    small = embedded.post(
        "/predecir",
        json={**CENTRO, "superficie_construida": 45.0, "superficie_util": 40.0, "habitaciones": 1},
    )

    def areas(response: Any) -> list[float]:
        return [v["superficie_construida"] for v in response.json()["testigos"]["viviendas"]]

    assert min(areas(large)) > max(areas(small))


def test_batch_detail_rows_carry_the_same_testigos(embedded: TestClient) -> None:
    homes = sample_homes(5)
    single = [embedded.post("/predecir", json=h).json()["testigos"] for h in homes]

    lote = embedded.post("/predecir/lote?detalle=true", json={"formularios": homes}).json()

    assert [r["testigos"] for r in lote["resultados"]] == single


def test_no_testigo_is_a_training_row(embedded: TestClient) -> None:
    # The embedded bundle's own training homes, regenerated from its seed.
    data = generate(20_000, 42)
    lat = np.array([f.latitud for f in data.formularios])
    lon = np.array([f.longitud for f in data.formularios])
    coordinates = set(zip(lat.tolist(), lon.tolist(), strict=True))
    homes = sample_homes(40)
    lote = embedded.post("/predecir/lote?detalle=true", json={"formularios": homes}).json()
    shown = [v for r in lote["resultados"] for v in r["testigos"]["viviendas"]]

    assert len(shown) > 100
    for v in shown:
        assert (v["latitud"], v["longitud"]) not in coordinates
        # Its own training home lies 30-60 m away with the same area, rooms and
        # condition; none like it there has its price.
        metres = np.hypot(
            (lat - v["latitud"]) * KM_PER_DEG_LAT * 1000,
            (lon - v["longitud"]) * KM_PER_DEG_LON * 1000,
        )
        same = [
            i
            for i in np.flatnonzero(metres <= 61).tolist()
            if data.formularios[i].superficie_construida == v["superficie_construida"]
            and data.formularios[i].habitaciones == v["habitaciones"]
            and data.formularios[i].condicion == v["condicion"]
        ]
        assert same, v
        assert all(metres[i] >= 29 for i in same)
        assert v["precio"] not in data.precios[same].tolist()


@pytest.mark.parametrize(
    ("language", "notice"),
    [("en", "No comparable home lies within 2 km."),
     ("es", "No hay ninguna vivienda comparable a menos de 2 km.")],
)  # fmt: skip
def test_far_from_every_training_home_the_answer_says_there_are_none(
    embedded: TestClient, language: str, notice: str
) -> None:
    far = {**CENTRO, "latitud": 40.64, "longitud": -3.52}  # the API's north-east corner

    answer = embedded.post("/predecir", json=far, headers={"Accept-Language": language}).json()

    assert answer["testigos"] == {"viviendas": [], "mediana_precio_m2": None, "aviso": notice}


def test_a_bundle_trained_sin_testigos_says_so(tmp_path: Path) -> None:
    bundle = train_quietly(tmp_path / "b", replace(TINY, testigos=False))

    with make_client(bundle) as client:
        en = client.post("/predecir", json=CENTRO).json()["testigos"]
        es = client.post("/predecir", json=CENTRO, headers={"Accept-Language": "es"}).json()

    assert en["viviendas"] == []
    assert en["mediana_precio_m2"] is None
    assert en["aviso"] == (
        "This model was trained without testigos (comparable homes): there are none to show."
    )
    assert es["testigos"]["aviso"].startswith("Este modelo se entrenó sin testigos")


def test_a_changed_testigos_table_is_refused_at_load(bundle_copy: Path) -> None:
    path = bundle_copy / "testigos.npz"
    with np.load(path) as arrays:
        columns = {name: arrays[name] for name in arrays.files}
    columns["condiciones"] = columns["condiciones"][::-1]  # every condition another's name
    np.savez_compressed(path, **columns)

    with pytest.raises(BundleError, match=r"testigos\.npz does not match its SHA-256"):
        load_bundle(bundle_copy)


def test_a_malformed_testigos_table_is_refused_in_one_line(bundle_copy: Path) -> None:
    path = bundle_copy / "testigos.npz"
    with np.load(path) as arrays:
        columns = {name: arrays[name] for name in arrays.files}
    columns["condicion"] = np.full(len(columns["condicion"]) + 1, 9, dtype=np.int8)
    np.savez_compressed(path, **columns)
    rehash(bundle_copy, "testigos.npz")

    with pytest.raises(BundleError, match=r"testigos\.npz is malformed: its arrays are not one"):
        load_bundle(bundle_copy)
