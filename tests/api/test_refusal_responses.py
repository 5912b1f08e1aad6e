"""Every refusal in the one error shape: a 422 echoes the offending value only when it is
short (never a client's megabytes); a wrong path, method or shape of body says what would
have worked."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.refusal_responses import MAX_ECHO_CHARS
from tests.helpers import first_error

HUGE = "9" * 4000  # a whole number JSON carries, and Python parses (under its 4,300 digits)


def _with_rooms(path: str, home: dict[str, Any], rooms: str) -> str:
    """The body of ``path`` for one home whose habitaciones is the JSON number ``rooms``."""
    placeholder = -123456789
    body: dict[str, Any] = {**home, "habitaciones": placeholder}
    if path == "/evaluar":
        body = {"muestras": [{**body, "precio": 300_000}]}
    return json.dumps(body).replace(str(placeholder), rooms)


@pytest.mark.parametrize("path", ["/predecir", "/evaluar"])
def test_a_whole_number_of_4000_digits_is_not_echoed(
    client: TestClient, formulario: dict[str, Any], path: str
) -> None:
    answer = client.post(
        path,
        content=_with_rooms(path, formulario, HUGE),
        headers={"content-type": "application/json"},
    )

    problem = first_error(answer)
    assert answer.status_code == 422
    assert problem["loc"][-1] == "habitaciones"
    assert "input" not in problem
    assert len(answer.content) < 1_000


def test_a_whole_number_of_the_echo_limit_is_still_echoed(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    number = "9" * (MAX_ECHO_CHARS - 1)
    answer = client.post(
        "/predecir",
        content=_with_rooms("/predecir", formulario, number),
        headers={"content-type": "application/json"},
    )

    assert first_error(answer)["input"] == int(number)


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        pytest.param("/predict", "POST /predecir", id="english"),
        pytest.param("/predecirr", "POST /predecir", id="typo"),
        pytest.param("/evaluate", "POST /evaluar", id="evaluate"),
        pytest.param("/invocations", "POST /predecir/lote", id="mlflow-habit"),
    ],
)
def test_a_path_that_does_not_exist_names_the_route_meant(
    client: TestClient, formulario: dict[str, Any], path: str, meant: str
) -> None:
    response = client.post(path, json=formulario)

    assert response.status_code == 404
    error = first_error(response)
    assert error["msg"] == f"Not Found: no route {path}; did you mean {meant}?"
    assert error["ctx"] == {"sugerencia": meant}


def test_a_path_like_no_route_is_a_plain_not_found(client: TestClient) -> None:
    error = first_error(client.get("/zzzzzzzz"))

    assert error["msg"] == "Not Found"
    assert "ctx" not in error


def test_a_wrong_method_names_the_one_that_works(client: TestClient) -> None:
    response = client.get("/predecir")

    assert response.status_code == 405
    assert first_error(response)["msg"] == "Method Not Allowed: /predecir takes POST"
    spanish = client.get("/predecir", headers={"Accept-Language": "es"})
    assert first_error(spanish)["msg"] == "Método no permitido: esta ruta admite POST"


def test_a_list_sent_as_a_batch_names_no_internal_class(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    response = client.post("/predecir/lote", json=[formulario])

    assert response.status_code == 422
    assert "Ignore" not in response.text
    assert first_error(response)["msg"] == "Input should be an object"
