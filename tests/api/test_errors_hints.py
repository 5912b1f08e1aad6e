"""A wrong path, a wrong method or a wrong shape of body says what would have worked."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import first_error


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
