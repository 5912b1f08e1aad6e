"""POST /predecir and /predecir/lote: answers, and every way a request can be wrong."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.formulario import FORMULARIO_EJEMPLO, Formulario
from app.service.valuation import SORTED_FROM_ROWS
from app.valuation.novelty import Novelty
from tests.helpers import ClientFactory, first_error, sample_homes, sklearn_prices


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


def test_banos_is_accepted_for_baños(client: TestClient, formulario: dict[str, Any]) -> None:
    with_n = client.post("/predecir", json=formulario).json()["precio"]
    formulario["banos"] = formulario.pop("baños")

    response = client.post("/predecir", json=formulario)

    assert response.status_code == 200
    assert response.json()["precio"] == with_n


def test_whole_floats_count_as_integers(client: TestClient, formulario: dict[str, Any]) -> None:
    as_int = client.post("/predecir", json=formulario).json()["precio"]
    formulario["habitaciones"] = float(formulario["habitaciones"])

    assert client.post("/predecir", json=formulario).json()["precio"] == as_int


BAD_FIELDS = [
    pytest.param("latitud", "40.4", "valid number", id="string-number"),
    pytest.param("latitud", 0, "greater than or equal to 40.31", id="latitud-outside-madrid"),
    pytest.param("latitud", 41.5, "less than or equal to 40.65", id="latitud-too-north"),
    pytest.param("longitud", 3.7, "less than or equal to -3.51", id="longitud-sign-error"),
    pytest.param("longitud", -4.5, "greater than or equal", id="longitud-too-west"),
    pytest.param("superficie_construida", 0, "greater than or equal to 10", id="area-zero"),
    pytest.param("superficie_construida", -80, "greater than or equal", id="area-negative"),
    pytest.param("superficie_construida", 1e6, "less than or equal to 5000", id="area-absurd"),
    pytest.param("superficie_construida", True, "valid number", id="area-boolean"),
    pytest.param("superficie_util", 0, "greater than or equal", id="util-zero"),
    pytest.param(
        "superficie_util", 96.0, "cannot exceed superficie_construida", id="util-gt-built"
    ),
    pytest.param("habitaciones", 2.5, "whole number, got 2.5", id="rooms-fraction"),
    pytest.param("habitaciones", -1, "greater than or equal to 0", id="rooms-negative"),
    pytest.param("habitaciones", 100, "less than or equal to 30", id="rooms-absurd"),
    pytest.param("habitaciones", "3", "whole number", id="rooms-string"),
    pytest.param("habitaciones", True, "whole number", id="rooms-boolean"),
    pytest.param("baños", 0, "greater than or equal to 1", id="baths-zero"),
    pytest.param("baños", -2, "greater than or equal to 1", id="baths-negative"),
    pytest.param("baños", 1.5, "whole number", id="baths-fraction"),
    pytest.param("baños", 99, "less than or equal to 20", id="baths-absurd"),
    pytest.param("antiguedad", -1, "greater than or equal to 0", id="age-negative"),
    pytest.param("antiguedad", 2000, "less than or equal to 400", id="age-absurd"),
    pytest.param("jardin", "quizás", "valid boolean", id="garden-not-boolean"),
    pytest.param("ascensor", None, "valid boolean", id="lift-null"),
    pytest.param("ascensor", 1, "valid boolean", id="lift-one"),
    pytest.param("garaje", "true", "valid boolean", id="garage-string"),
    pytest.param("jardin", "sí", "valid boolean", id="garden-si"),
    pytest.param("condicion", "Nuevo", "'A reformar', 'Reformado'", id="condition-unknown"),
    pytest.param("condicion", "a reformar", "'A reformar'", id="condition-case"),
    pytest.param("condicion", 2, "'A reformar'", id="condition-code"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_bad_value_is_refused_naming_the_field(
    client: TestClient, formulario: dict[str, Any], field: str, value: Any, message: str
) -> None:
    formulario[field] = value

    error = first_error(client.post("/predecir", json=formulario))

    assert error["loc"] == ["body", field]
    assert message in error["msg"]
    assert client.post("/predecir", json=FORMULARIO_EJEMPLO).status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["latitud", "superficie_construida", "habitaciones"])
def test_non_finite_numbers_are_refused(
    client: TestClient, formulario: dict[str, Any], field: str, token: str
) -> None:
    body = json.dumps({**formulario, field: 12345}).replace("12345", token)

    response = client.post("/predecir", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    error = first_error(response)
    assert error["loc"] == ["body", field]
    assert "finite" in error["msg"] or "whole number" in error["msg"]


@pytest.mark.parametrize(
    "field", ["latitud", "superficie_construida", "habitaciones", "condicion", "garaje"]
)
def test_missing_field_is_named(client: TestClient, formulario: dict[str, Any], field: str) -> None:
    del formulario[field]

    error = first_error(client.post("/predecir", json=formulario))

    assert error["loc"] == ["body", field]
    assert error["type"] == "missing"


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


def test_a_required_field_sent_as_null_is_refused(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    error = first_error(client.post("/predecir", json={**formulario, "habitaciones": None}))

    assert error["loc"] == ["body", "habitaciones"]


def test_unknown_field_is_named(client: TestClient, formulario: dict[str, Any]) -> None:
    error = first_error(client.post("/predecir", json={**formulario, "piscina": True}))

    assert error["loc"] == ["body", "piscina"]
    assert error["msg"] == "Extra inputs are not permitted"


def test_every_problem_is_reported_at_once(client: TestClient, formulario: dict[str, Any]) -> None:
    formulario.update(habitaciones=-1, condicion="Nuevo")

    response = client.post("/predecir", json=formulario)

    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "habitaciones"),
        ("body", "condicion"),
    }


@pytest.mark.parametrize(
    ("body", "expected_type"),
    [
        pytest.param('{"latitud": 40.4,', "json_invalid", id="truncated"),
        pytest.param("{latitud: 40.4}", "json_invalid", id="not-json"),
        pytest.param("[]", "model_type", id="array"),
        pytest.param('"casa"', "model_type", id="string"),
        pytest.param("", "missing", id="empty"),
    ],
)
def test_malformed_body_is_a_422(client: TestClient, body: str, expected_type: str) -> None:
    response = client.post("/predecir", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert first_error(response)["type"] == expected_type


def test_service_keeps_serving_after_bad_requests(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    for bad in ("{", "NaN", '{"latitud": NaN}', "[1, 2]"):
        client.post("/predecir", content=bad, headers={"content-type": "application/json"})

    assert client.post("/predecir", json=formulario).status_code == 200


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


def test_lote_names_the_bad_row_and_field(client: TestClient) -> None:
    homes = sample_homes(4)
    homes[2]["superficie_util"] = homes[2]["superficie_construida"] + 1

    error = first_error(client.post("/predecir/lote", json={"formularios": homes}))

    assert error["loc"] == ["body", "formularios", 2, "superficie_util"]


def test_empty_lote_is_refused(client: TestClient) -> None:
    error = first_error(client.post("/predecir/lote", json={"formularios": []}))

    assert error["loc"] == ["body", "formularios"]
    assert error["type"] == "too_short"


def test_lote_over_the_row_limit_is_refused(client_factory: ClientFactory) -> None:
    with client_factory(max_batch_rows=3) as client:
        response = client.post("/predecir/lote", json={"formularios": sample_homes(4)})
        ok = client.post("/predecir/lote", json={"formularios": sample_homes(3)})

    error = first_error(response)
    assert error["loc"] == ["body", "formularios"]
    assert error["msg"] == "List should have at most 3 items, got 4"
    assert ok.status_code == 200
