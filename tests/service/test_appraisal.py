"""The appraisal a person can judge (POST /predecir, /predecir/lote): the model's price, a
calibrated range, the area's €/m², warnings outside the training data, fields left
unknown, and what drives the price."""

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.bundle.loader import BundleError, load_bundle
from app.cli import main
from app.config import EMBEDDED_MODEL_DIR
from app.schemas.formulario import Formulario
from app.service.appraisal import SORTED_FROM_ROWS
from app.training.dataset import Dataset
from app.training.pipeline import train
from app.training.synthetic import generate
from app.valuation.novelty import Novelty
from tests.helpers import TINY, first_error, make_client, rehash, sample_homes, sklearn_prices

USERA_FLAT = {
    "latitud": 40.3823, "longitud": -3.7041, "superficie_construida": 50.0, "baños": 1,
    "habitaciones": 2, "jardin": False, "antiguedad": 50, "superficie_util": 42.0,
    "ascensor": True, "garaje": False, "condicion": "En buen estado",
}  # fmt: skip
SALAMANCA_HOME = {
    **USERA_FLAT, "latitud": 40.4286, "longitud": -3.6807, "superficie_construida": 300.0,
    "superficie_util": 255.0, "baños": 3, "habitaciones": 5,
}  # fmt: skip


def _labelled(n: int, seed: int) -> list[dict[str, Any]]:
    """Fresh synthetic homes (not the training ones) with their true prices."""
    data = generate(n, seed)
    return [
        {**f.model_dump(mode="json"), "precio": float(p)}
        for f, p in zip(data.formularios, data.precios, strict=True)
    ]


def test_the_interval_holds_its_level_on_homes_it_never_saw(embedded: TestClient) -> None:
    # 4,000 fresh homes from the same generator: the stated 80 % must hold within
    # ±3 points (a binomial 95 % band at n = 4,000 is ±1.2 points), in each price third.
    muestras = _labelled(4000, seed=2026)

    evaluation = embedded.post("/evaluar", json={"muestras": muestras}).json()

    assert evaluation["cobertura"] == pytest.approx(0.8, abs=0.03)
    results = embedded.post(
        "/predecir/lote?detalle=true", json={"formularios": [_home(m) for m in muestras]}
    ).json()["resultados"]
    truth = np.array([m["precio"] for m in muestras])
    lower = np.array([r["intervalo"]["inferior"] for r in results])
    upper = np.array([r["intervalo"]["superior"] for r in results])
    inside = (truth >= lower) & (truth <= upper)
    thirds = np.searchsorted(np.quantile(truth, [1 / 3, 2 / 3]), truth, side="right")
    for third in range(3):
        assert inside[thirds == third].mean() == pytest.approx(0.8, abs=0.03), third
    assert results[0]["intervalo"]["nivel"] == 0.8


def _home(muestra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in muestra.items() if k != "precio"}


def test_evaluar_coverage_and_width_are_those_of_the_intervals(embedded: TestClient) -> None:
    muestras = _labelled(40, seed=11)
    results = embedded.post(
        "/predecir/lote?detalle=true", json={"formularios": [_home(m) for m in muestras]}
    ).json()["resultados"]

    evaluation = embedded.post("/evaluar", json={"muestras": muestras}).json()

    by_hand = [
        (m["precio"], r["intervalo"]["inferior"], r["intervalo"]["superior"])
        for m, r in zip(muestras, results, strict=True)
    ]
    inside = sum(lo <= y <= hi for y, lo, hi in by_hand) / len(by_hand)
    width = sum((hi - lo) / y for y, lo, hi in by_hand) / len(by_hand)
    assert evaluation["cobertura"] == pytest.approx(inside)
    assert evaluation["anchura_relativa"] == pytest.approx(width, rel=1e-6)


def test_the_interval_is_wider_in_euros_for_a_larger_dearer_home(embedded: TestClient) -> None:
    small = embedded.post("/predecir", json=USERA_FLAT).json()
    large = embedded.post("/predecir", json=SALAMANCA_HOME).json()

    def width(answer: dict[str, Any]) -> float:
        return float(answer["intervalo"]["superior"] - answer["intervalo"]["inferior"])

    assert small["intervalo"]["inferior"] < small["precio"] < small["intervalo"]["superior"]
    assert width(large) > 3 * width(small)


def test_precio_m2_and_the_zone_compare_with_the_area(embedded: TestClient) -> None:
    answer = embedded.post("/predecir", json=SALAMANCA_HOME).json()

    assert answer["precio_m2"] == pytest.approx(answer["precio"] / 300.0, abs=0.01)
    zona = answer["zona"]
    assert zona["viviendas"] >= 5
    assert 0 < zona["radio_km"] < 2
    assert 3_000 < zona["precio_m2_mediano"] < 15_000  # Salamanca: the dearest district
    assert zona["diferencia"] == pytest.approx(
        answer["precio_m2"] / zona["precio_m2_mediano"] - 1, abs=1e-3
    )
    usera = embedded.post("/predecir", json=USERA_FLAT).json()["zona"]
    assert usera["precio_m2_mediano"] < zona["precio_m2_mediano"] / 1.5


def test_a_typical_home_gets_no_warning(embedded: TestClient, formulario: dict[str, Any]) -> None:
    assert embedded.post("/predecir", json=formulario).json()["advertencias"] == []
    assert embedded.post("/predecir", json=USERA_FLAT).json()["advertencias"] == []


@pytest.mark.parametrize(
    ("changes", "campos"),
    [
        pytest.param(
            {"superficie_construida": 1500.0, "superficie_util": 1400.0},
            {"superficie_construida", "superficie_util", "m2_por_habitacion", "m2_por_bano"},
            id="larger-than-any",
        ),
        pytest.param({"antiguedad": 300}, {"antiguedad"}, id="older-than-any"),
        pytest.param(
            {
                "habitaciones": 30,
                "baños": 20,
                "superficie_construida": 40.0,
                "superficie_util": 35.0,
            },
            {"habitaciones", "baños", "m2_por_habitacion", "m2_por_bano"},
            id="30-rooms-in-40-m2",
        ),
        pytest.param(
            {"habitaciones": 7, "superficie_construida": 45.0, "superficie_util": 40.0},
            {"m2_por_habitacion"},
            id="a-combination-no-home-had",
        ),
        pytest.param(
            {"latitud": 40.64, "longitud": -3.52},
            {"latitud", "longitud", "ubicacion"},
            id="far-from-every-home",
        ),
    ],
)
def test_each_way_a_home_is_unlike_the_training_data_is_named(
    embedded: TestClient, formulario: dict[str, Any], changes: dict[str, Any], campos: set[str]
) -> None:
    answer = embedded.post("/predecir", json={**formulario, **changes}).json()

    warned = {a["campo"]: a for a in answer["advertencias"]}
    assert set(warned) == campos
    for campo, advertencia in warned.items():
        assert "less reliable" in advertencia["mensaje"]
        if campo != "ubicacion":
            assert not advertencia["minimo"] <= advertencia["valor"] <= advertencia["maximo"]


def test_warnings_are_in_spanish_when_asked_and_counted(embedded: TestClient) -> None:
    far = {**USERA_FLAT, "latitud": 40.64, "longitud": -3.52}

    answer = embedded.post("/predecir", json=far, headers={"Accept-Language": "es-ES,es;q=0.9"})

    mensajes = [a["mensaje"] for a in answer.json()["advertencias"]]
    assert all("menos fiable" in m for m in mensajes)
    assert answer.json()["zona"] is None
    metrics = embedded.get("/metrics").text
    assert 'tasador_advertencias_total{campo="ubicacion"}' in metrics


def test_larger_than_the_largest_training_home_is_flagged_not_hidden(embedded: TestClient) -> None:
    # A forest cannot extrapolate: 1,500 m² gets the price of the largest home it saw.
    big = {**SALAMANCA_HOME, "superficie_construida": 600.0, "superficie_util": 500.0}
    bigger = {**big, "superficie_construida": 1500.0, "superficie_util": 1250.0}

    a, b = (embedded.post("/predecir", json=h).json() for h in (big, bigger))

    assert b["precio"] == pytest.approx(a["precio"], rel=0.05)
    assert {w["campo"] for w in b["advertencias"]} >= {"superficie_construida"}


def test_contributions_add_up_to_the_price_to_the_cent(embedded: TestClient) -> None:
    homes = sample_homes(60)
    for i, home in enumerate(homes):  # some homes with fields unknown, some without
        if i % 3 == 1:
            home["antiguedad"] = None
        if i % 4 == 2:
            del home["superficie_util"], home["baños"]

    results = embedded.post(
        "/predecir/lote?detalle=true&explicar=true", json={"formularios": homes}
    ).json()["resultados"]
    single = embedded.post("/predecir?explicar=true", json=homes[0]).json()

    assert results[0]["contribuciones"] == single["contribuciones"]
    for result in results:
        total = result["base"] + sum(c["efecto"] for c in result["contribuciones"])
        assert round(total, 2) == result["precio"]
        effects = [abs(c["efecto"]) for c in result["contribuciones"]]
        assert effects == sorted(effects, reverse=True)
        variables = {c["variable"] for c in result["contribuciones"]}
        assert "ubicacion" in variables
        assert variables.isdisjoint({"latitud", "longitud", "distancia_sol_km", "giro_45_este"})
        assert len(variables) == 10
        for contribution in result["contribuciones"]:
            if contribution["variable"] in result["desconocidos"]:
                assert contribution["valor"] is None  # its effect: what not knowing it did
    assert any(r["desconocidos"] for r in results)
    location = next(c for c in single["contribuciones"] if c["variable"] == "ubicacion")
    assert location["valor"] == [homes[0]["latitud"], homes[0]["longitud"]]


def test_explanations_only_when_asked(embedded: TestClient, formulario: dict[str, Any]) -> None:
    plain = embedded.post("/predecir", json=formulario).json()
    lote = embedded.post("/predecir/lote?detalle=true", json={"formularios": [formulario]}).json()
    lean = embedded.post("/predecir/lote?explicar=true", json={"formularios": [formulario]}).json()

    assert "base" not in plain
    assert "contribuciones" not in plain
    assert "contribuciones" not in lote["resultados"][0]
    assert set(lean) == {"precios", "fecha", "modelo"}  # explanations need detalle


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("explicar=quizas", "explicar", id="not-a-boolean"),
        pytest.param("explicar=true&piscina=1", "piscina", id="unknown-parameter"),
    ],
)
def test_bad_query_parameters_are_named(
    client: TestClient, formulario: dict[str, Any], query: str, field: str
) -> None:
    error = first_error(client.post(f"/predecir?{query}", json=formulario))

    assert error["loc"] == ["query", field]


def test_the_feature_carrying_all_the_signal_is_named_first(tmp_path: Path) -> None:
    # Prices that depend on the age of the building alone.
    homes = [h for h in generate(3000, 5).formularios if h.antiguedad is not None]
    precios = np.array([500_000.0 - 3_000 * (h.antiguedad or 0) for h in homes])
    data = Dataset(homes, precios, "age-only", True, "prices from age alone")
    bundle = tmp_path / "b"
    train(data, bundle, TINY, say=lambda _: None, progress=False)

    with make_client(bundle) as client:
        results = client.post(
            "/predecir/lote?detalle=true&explicar=true", json={"formularios": sample_homes(50)}
        ).json()["resultados"]

    top = [r["contribuciones"][0]["variable"] for r in results]
    assert top.count("antiguedad") >= 45


def _old_format(bundle: Path) -> None:
    """What a bundle written before the valuation existed looks like."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in ("valuation.json", "leaves.onnx", "contributions.npz", "testigos.npz"):
        (bundle / name).unlink()
        del manifest["artefacts"][name]
    del manifest["interval"], manifest["zones"], manifest["testigos"], manifest["confianza"]
    for reference in manifest["reference"]:
        del reference["interval"], reference["contributions"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_an_older_bundle_is_still_served_without_the_new_parts(
    bundle_copy: Path, formulario: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    _old_format(bundle_copy)

    with caplog.at_level(logging.WARNING, "tasador"), make_client(bundle_copy) as client:
        answer = client.post("/predecir", json=formulario)
        explained = client.post("/predecir?explicar=true", json=formulario)
        evaluation = client.post(
            "/evaluar", json={"muestras": [{**formulario, "precio": 4e5}] * 2}
        ).json()

    assert answer.status_code == 200
    body = answer.json()
    assert body["intervalo"] is None
    assert body["zona"] is None
    assert body["confianza"] is None
    assert body["testigos"]["viviendas"] == []
    assert "trained without testigos" in body["testigos"]["aviso"]
    assert body["precio_m2"] == pytest.approx(body["precio"] / 95.0, abs=0.01)
    assert explained.status_code == 503
    assert "trained without explanations" in explained.json()["detail"][0]["msg"]
    assert evaluation["cobertura"] is None
    assert sum("has no valuation.json" in r.getMessage() for r in caplog.records) == 1


def test_unusable_explanation_files_are_refused_at_start(bundle_copy: Path) -> None:
    # Checked at load like the rest (issue 18): a bundle that loads serves every route.
    table = bundle_copy / "contributions.npz"
    with np.load(table) as arrays:
        contributions, roots = arrays["contributions"] * 1.5, arrays["roots"]
    np.savez_compressed(table, contributions=contributions, roots=roots)
    rehash(bundle_copy, "contributions.npz")

    with pytest.raises(BundleError, match="reference contributions do not reproduce") as caught:
        load_bundle(bundle_copy)
    assert "explanations cannot be given" in str(caught.value)


def test_a_changed_interval_calibration_is_refused_at_start(bundle_copy: Path) -> None:
    path = bundle_copy / "valuation.json"
    valuation = json.loads(path.read_text())
    valuation["interval"]["upper"] = [u * 1.1 for u in valuation["interval"]["upper"]]
    path.write_text(json.dumps(valuation))
    rehash(bundle_copy, "valuation.json")

    with pytest.raises(BundleError, match="reference intervals do not reproduce"):
        load_bundle(bundle_copy)


def test_a_zone_grid_lending_its_zones_too_far_is_refused_at_start(tmp_path: Path) -> None:
    bundle_copy = Path(shutil.copytree(EMBEDDED_MODEL_DIR, tmp_path / "bundle"))  # has cells
    path = bundle_copy / "valuation.json"
    valuation = json.loads(path.read_text())
    valuation["zones"]["rings"] = 1000  # each kept cell lends its zone ~250 km around
    path.write_text(json.dumps(valuation))
    rehash(bundle_copy, "valuation.json")
    cells = len(valuation["zones"]["cells"])

    with pytest.raises(BundleError) as caught:
        load_bundle(bundle_copy)
    assert str(caught.value) == (
        f"{path} is malformed: its {cells} cells lend their zone 1000 cells around: "
        f"{cells * 2001**2} cells to resolve, more than the 2000000 allowed"
    )


def test_training_level_is_a_setting(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    train(generate(800, 3), bundle, replace(TINY, nivel=0.9), say=lambda _: None, progress=False)

    manifest = json.loads((bundle / "manifest.json").read_text())
    valuation = json.loads((bundle / "valuation.json").read_text())

    assert manifest["interval"]["level"] == valuation["interval"]["nivel"] == 0.9
    with make_client(bundle) as client:
        assert client.post("/predecir", json=USERA_FLAT).json()["intervalo"]["nivel"] == 0.9


def test_zones_hold_aggregates_never_rows(tiny_bundle: Path) -> None:
    valuation = json.loads((tiny_bundle / "valuation.json").read_text())

    assert all(homes >= 5 for _, _, homes, _, _ in valuation["zones"]["cells"])
    assert set(valuation) == {"interval", "zones", "ratios", "confianza"}


def test_levels_unknown_to_training_are_refused_by_the_cli(tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "b"), "--nivel", "1.5"]) == 2


def test_predecir_returns_the_models_price(
    client: TestClient, tiny_bundle: Path, formulario: dict[str, Any]
) -> None:
    response = client.post("/predecir", json=formulario)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "precio",
        "fecha",
        "modelo",
        "intervalo",
        "precio_m2",
        "zona",
        "advertencias",
        "desconocidos",
        "testigos",
        "confianza",
    }
    assert body["precio"] == pytest.approx(sklearn_prices(tiny_bundle, [formulario])[0], abs=0.01)
    assert body["modelo"] == client.get("/modelo").json()["version"]
    assert body["fecha"].endswith("Z") or "+00:00" in body["fecha"]


@pytest.mark.parametrize(
    "unknown",
    [
        pytest.param({"antiguedad": None}, id="age-null"),
        pytest.param({"superficie_util": None, "baños": None}, id="two-null"),
        pytest.param({"antiguedad": ..., "superficie_util": ..., "baños": ...}, id="left-out"),
    ],
)
def test_unknown_fields_are_appraised_and_named(
    client: TestClient, formulario: dict[str, Any], tiny_bundle: Path, unknown: dict[str, Any]
) -> None:
    sent = {k: v for k, v in {**formulario, **unknown}.items() if v is not ...}

    response = client.post("/predecir", json=sent)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["precio"] == pytest.approx(sklearn_prices(tiny_bundle, [sent])[0], abs=0.01)
    names = [n for n in ("baños", "antiguedad", "superficie_util") if n in unknown]
    assert body["desconocidos"] == names
    (warning,) = [a for a in body["advertencias"] if a["campo"] == "desconocidos"]
    assert all(name in warning["mensaje"] for name in names)
    assert "wider" in warning["mensaje"]  # by how much, or "no wider" where it is not


@pytest.mark.parametrize(
    ("widening", "says"),
    [
        pytest.param(1.25, "The range is 25 % wider because of it", id="wider"),
        pytest.param(1.002, "The range is <1 % wider", id="barely"),
        pytest.param(1.0, "so it is no wider", id="as-sure"),
    ],
)
def test_the_unknown_warning_says_how_much_wider_the_range_is(
    formulario: dict[str, Any], widening: float, says: str
) -> None:
    home = Formulario.model_validate({**formulario, "antiguedad": None})

    found = Novelty({}, {}).check(home, True, 1.0, "en", widening)

    (warning,) = found
    assert warning.campo == "desconocidos"
    assert warning.mensaje.startswith("Not known: antiguedad.")
    assert says in warning.mensaje


def test_an_unknown_field_never_narrows_the_interval(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    known = client.post("/predecir", json=formulario).json()["intervalo"]
    unknown = client.post("/predecir", json={**formulario, "antiguedad": None}).json()

    def width(i: dict[str, float]) -> float:
        return i["superior"] / i["inferior"]

    # Wider by as much as training homes without an age erred more (at least as wide).
    assert width(unknown["intervalo"]) >= width(known) * (1 - 1e-6)  # bounds are in cents


def test_lote_keeps_order_and_matches_single_predictions(
    client: TestClient, tiny_bundle: Path
) -> None:
    # Enough homes that the engine is asked for them sorted by size and place.
    rows = SORTED_FROM_ROWS + 36
    homes = sample_homes(rows)

    response = client.post("/predecir/lote", json={"formularios": homes})

    assert response.status_code == 200
    body = response.json()
    assert len(body["precios"]) == rows
    assert body["precios"] == pytest.approx(sklearn_prices(tiny_bundle, homes).tolist(), abs=0.01)
    singles = [client.post("/predecir", json=h).json()["precio"] for h in homes]
    assert body["precios"] == singles
