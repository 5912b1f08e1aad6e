"""The OpenAPI document describes bodies exactly as FastAPI would for declared parameters."""

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from app.schemas.errores import Errores
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
from tests.helpers import ClientFactory


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


def test_documented_errors_are_the_ones_sent(
    client_factory: ClientFactory, formulario: dict[str, Any]
) -> None:
    """Each status a body route documents has examples of its own, in the error shape, and
    the examples are what the service really answers."""
    with client_factory(api_keys=["k"], max_body_bytes=4194304) as client:
        responses = client.get("/openapi.json").json()["paths"]["/predecir"]["post"]["responses"]
        sent = {
            "api_key_missing": client.post("/predecir", json=formulario),
            "api_key_unknown": client.post(
                "/predecir", json=formulario, headers={"X-API-Key": "nope"}
            ),
            "unsupported_media_type": client.post(
                "/predecir",
                content=b"{}",
                headers={"X-API-Key": "k", "Content-Type": "text/plain"},
            ),
            "body_too_large": client.post(
                "/predecir",
                content=b" " * 4194305,
                headers={"X-API-Key": "k", "Content-Type": "application/json"},
            ),
            "enum": client.post(
                "/predecir", json={**formulario, "condicion": "Nuevo"}, headers={"X-API-Key": "k"}
            ),
        }

    seen: set[str] = set()
    for status in ("401", "403", "413", "415", "422", "503"):
        examples = responses[status]["content"]["application/json"]["examples"]
        assert examples, status
        for name, example in examples.items():
            problem = Errores.model_validate(example["value"]).detail[0]
            assert problem.type == name
            assert name not in seen
            seen.add(name)
            if name in sent:
                answer = sent[name]
                assert str(answer.status_code) == status, name
                assert answer.json()["detail"][0]["type"] == name
                assert answer.json()["detail"][0]["msg"] == problem.msg
