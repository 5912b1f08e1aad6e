"""Every way a home or a lote can be wrong (POST /predecir, /predecir/lote), each named in
the answer, and what is taken as it comes (baños, whole floats); a small bad body built to
amplify gets a small answer from a live server."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import (
    ClientFactory,
    ServerFactory,
    assert_still_serving,
    first_error,
    guarded_server,
    post_raw,
    sample_homes,
)
from tools.process import ServerProcess

KEY = "llave-de-prueba"
HOME = FORMULARIO_EJEMPLO


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


def test_whole_floats_in_a_lote_count_as_integers(client: TestClient) -> None:
    homes = sample_homes(20)
    as_ints = client.post("/predecir/lote", json={"formularios": homes}).json()["precios"]
    counts = {"habitaciones": 3, "baños": 2, "antiguedad": 40}
    alone = [{**homes[-1], **counts}]
    expected = client.post("/predecir/lote", json={"formularios": alone}).json()["precios"]
    homes[-1] = {**homes[-1], **{name: float(value) for name, value in counts.items()}}

    response = client.post("/predecir/lote", json={"formularios": homes})

    assert response.status_code == 200
    assert response.json()["precios"] == as_ints[:-1] + expected


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


def test_lote_names_the_bad_row_and_field(client: TestClient) -> None:
    homes = sample_homes(4)
    homes[2]["superficie_util"] = homes[2]["superficie_construida"] + 1

    error = first_error(client.post("/predecir/lote", json={"formularios": homes}))

    assert error["loc"] == ["body", "formularios", 2, "superficie_util"]


@pytest.mark.parametrize("rows", [4, 400], ids=["small-body", "large-body"])
def test_lote_names_an_unknown_field_in_its_row(client: TestClient, rows: int) -> None:
    homes = sample_homes(rows)
    homes[rows // 2]["piscina"] = True

    error = first_error(client.post("/predecir/lote", json={"formularios": homes}))

    assert error["loc"] == ["body", "formularios", rows // 2, "piscina"]
    assert error["type"] == "extra_forbidden"


@pytest.mark.parametrize("rows", [4, 400], ids=["small-body", "large-body"])
def test_lote_over_the_row_limit_is_refused_whatever_its_size(
    client_factory: ClientFactory, rows: int
) -> None:
    with client_factory(max_batch_rows=rows - 1) as client:
        error = first_error(client.post("/predecir/lote", json={"formularios": sample_homes(rows)}))

    assert error["loc"] == ["body", "formularios"]
    assert f"at most {rows - 1}" in error["msg"]


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


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` as the hardening review attacked it: an API key, a small budget."""
    return guarded_server(server_factory, KEY)


AMPLIFIERS = [
    pytest.param(
        "/predecir/lote", json.dumps({"formularios": [{}] * 10_000}), id="10k-empty-objects"
    ),
    pytest.param(
        "/predecir/lote", json.dumps({"formularios": [{}] * 200_000}), id="200k-empty-objects"
    ),
    pytest.param(
        "/evaluar", json.dumps({"muestras": [{}] * 200_000}), id="evaluar-200k-empty-objects"
    ),
    pytest.param(
        "/predecir", json.dumps({f"k{i}": 1 for i in range(250_000)}), id="250k-unknown-keys"
    ),
    pytest.param(
        "/predecir/lote",
        json.dumps({"formularios": [{f"k{i}": 1 for i in range(250_000)}]}),
        id="250k-unknown-keys-in-a-row",
    ),
    pytest.param("/predecir", json.dumps({**HOME, "x" * 1_000_000: 1}), id="1MB-unknown-key"),
    pytest.param(
        "/predecir", json.dumps({**HOME, "latitud": list(range(300_000))}), id="huge-array-value"
    ),
    pytest.param(
        "/predecir/lote", '{"formularios":' + "[" * 50_000 + "]" * 50_000 + "}", id="deep-nesting"
    ),
]


@pytest.mark.parametrize(("path", "body"), AMPLIFIERS)
def test_a_small_bad_body_gets_a_small_answer(server: ServerProcess, path: str, body: str) -> None:
    status, answer = post_raw(server, path, body.encode(), {"x-api-key": KEY})

    assert status == 422
    assert 1 <= len(answer["detail"]) <= 21  # at most 20 problems and how many more
    assert len(json.dumps(answer)) < 10_000
    assert all(len(str(part)) <= 70 for p in answer["detail"] for part in p["loc"])
    assert_still_serving(server, {"x-api-key": KEY})
