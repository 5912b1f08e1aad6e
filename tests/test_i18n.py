"""Messages in Spanish for a request that prefers it; names (loc, type) never change."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.i18n import PROBLEMS_ES, negotiate
from tests.helpers import ClientFactory, first_error, make_client

ES = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}


@pytest.mark.parametrize(
    ("field", "value", "english", "spanish"),
    [
        pytest.param(
            "latitud", 0, "greater than or equal to 40.31", "mayor o igual que 40.31", id="range"
        ),
        pytest.param("habitaciones", 2.5, "whole number, got 2.5", "entero, no 2.5", id="fraction"),
        pytest.param("jardin", 1, "valid boolean", "true o false", id="boolean"),
        pytest.param("condicion", "Nuevo", "'A reformar'", "o 'En buen estado'", id="enum"),
        pytest.param("superficie_util", 500.0, "cannot exceed", "no puede superar", id="util"),
        pytest.param("piscina", True, "Extra inputs", "campos que no estén", id="unknown"),
    ],
)
def test_validation_messages_follow_accept_language(
    client: TestClient,
    formulario: dict[str, Any],
    field: str,
    value: Any,
    english: str,
    spanish: str,
) -> None:
    body = {**formulario, field: value}

    en = first_error(client.post("/predecir", json=body))
    es = first_error(client.post("/predecir", json=body, headers=ES))

    assert english in en["msg"]
    assert spanish in es["msg"]
    assert (en["loc"], en["type"]) == (es["loc"], es["type"])


def test_a_missing_field_in_spanish(client: TestClient, formulario: dict[str, Any]) -> None:
    del formulario["garaje"]

    error = first_error(client.post("/predecir", json=formulario, headers=ES))

    assert error == {"loc": ["body", "garaje"], "msg": "Campo obligatorio", "type": "missing"}


def test_refusals_of_the_gate_in_spanish(
    client_factory: ClientFactory, formulario: dict[str, Any]
) -> None:
    with client_factory(api_keys=["k"], max_body_bytes=2048) as client:
        missing = client.post("/predecir", json=formulario, headers=ES)
        wrong = client.post("/predecir", json=formulario, headers={**ES, "X-API-Key": "x"})
        big = client.post(
            "/predecir/lote",
            json={"formularios": [formulario] * 20},
            headers={**ES, "X-API-Key": "k"},
        )
        form = client.post(
            "/predecir",
            content=b"a=1",
            headers={**ES, "X-API-Key": "k", "content-type": "application/x-www-form-urlencoded"},
        )

    assert "necesita una clave" in missing.json()["detail"][0]["msg"]
    assert "no es de este servicio" in wrong.json()["detail"][0]["msg"]
    assert "supera el límite de 2048 bytes" in big.json()["detail"][0]["msg"]
    assert "Content-Type: application/json" in form.json()["detail"][0]["msg"]
    assert form.json()["detail"][0]["msg"].startswith("envía JSON")


def test_not_ready_in_spanish(tiny_bundle: Path, formulario: dict[str, Any]) -> None:
    client = make_client(tiny_bundle)  # the lifespan has not run: no model
    answer = client.post("/predecir", json=formulario, headers=ES)

    assert answer.status_code == 503
    assert answer.json()["detail"][0]["msg"] == "el modelo aún no está cargado"


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        pytest.param("GET", "/no/such/page", 404, "not_found", id="404"),
        pytest.param("DELETE", "/predecir", 405, "method_not_allowed", id="405"),
    ],
)
def test_unknown_pages_and_methods_answer_in_the_same_shape(
    client: TestClient, method: str, path: str, status: int, kind: str
) -> None:
    answer = client.request(method, path, headers=ES)

    assert answer.status_code == status
    (problem,) = answer.json()["detail"]
    assert problem["type"] == kind
    assert problem["msg"].startswith(("No existe", "Método no permitido"))


@pytest.mark.parametrize(
    ("header", "language"),
    [
        pytest.param(None, "en", id="none"),
        pytest.param("es", "es", id="es"),
        pytest.param("es-ES", "es", id="es-ES"),
        pytest.param("en-US,es;q=0.9", "en", id="english-first"),
        pytest.param("fr,es;q=0.8,en;q=0.5", "es", id="best-known"),
        pytest.param("es;q=0", "en", id="refused"),
        pytest.param("x" * 5000, "en", id="garbage"),
        pytest.param("es;q=1e309", "en", id="infinite-weight"),
        pytest.param("es;q=1e309,en;q=0.5", "en", id="infinite-weight-beside-a-valid-one"),
        pytest.param("es;q=nan", "en", id="nan-weight"),
        pytest.param("en;q=0.1,es;q=0.25", "es", id="weights"),
    ],
)
def test_accept_language_negotiation(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_every_spanish_template_has_a_kind_we_raise_or_pydantic_does() -> None:
    # Guards typos in the catalogue: each key is a kind of problem, or one of its forms.
    assert all(key.replace(".", "_").replace("_", "").isalpha() for key in PROBLEMS_ES)
