"""The OpenAPI document describes bodies exactly as FastAPI would for declared parameters."""

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from app.schemas.evaluacion import Evaluacion, PeticionEvaluacion
from app.schemas.formulario import Formulario
from app.schemas.prediccion import (
    Lote,
    ParametrosLote,
    ParametrosPrediccion,
    Prediccion,
    PrediccionLote,
    PrediccionLoteDetalle,
)


def _reference_spec() -> dict[str, Any]:
    """What FastAPI generates when the bodies are ordinary declared parameters."""
    ref = FastAPI()

    @ref.post("/predecir")
    def predecir(
        formulario: Formulario, params: Annotated[ParametrosPrediccion, Query()]
    ) -> Prediccion:
        raise NotImplementedError

    @ref.post("/predecir/lote")
    def predecir_lote(
        lote: Lote, params: Annotated[ParametrosLote, Query()]
    ) -> PrediccionLote | PrediccionLoteDetalle:
        raise NotImplementedError

    @ref.post("/evaluar")
    def evaluar(peticion: PeticionEvaluacion) -> Evaluacion:
        raise NotImplementedError

    return ref.openapi()


@pytest.mark.parametrize("path", ["/predecir", "/predecir/lote", "/evaluar"])
def test_request_and_response_bodies_match_fastapis(client: TestClient, path: str) -> None:
    ours = client.get("/openapi.json").json()
    reference = _reference_spec()
    mine, theirs = ours["paths"][path]["post"], reference["paths"][path]["post"]

    assert mine["requestBody"] == theirs["requestBody"]
    assert mine.get("parameters") == theirs.get("parameters")
    assert mine["responses"]["200"] == theirs["responses"]["200"]
    assert "422" in mine["responses"]
    for name, schema in reference["components"]["schemas"].items():
        if name not in ("HTTPValidationError", "ValidationError"):
            assert ours["components"]["schemas"][name] == schema, name


def test_swagger_example_is_accepted(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, model in (
        ("/predecir", "Formulario"),
        ("/predecir/lote", "Lote"),
        ("/evaluar", "PeticionEvaluacion"),
    ):
        example = spec["components"]["schemas"][model]["examples"][0]
        assert client.post(path, json=example).status_code == 200, path
