"""Liveness, readiness, /modelo, /metrics, docs and API keys."""

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel

from app import manifest, schemas
from app.routers import health
from tests.conftest import make_client


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "modelo": None}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_not_ready_before_the_bundle_is_loaded(
    tiny_bundle: Path, formulario: dict[str, Any], fast_path: bool
) -> None:
    # Without entering the context manager the lifespan has not run: nothing is loaded.
    client = make_client(tiny_bundle, fast_path=fast_path)

    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 503
    response = client.post("/predecir", json=formulario)
    assert response.status_code == 503
    assert response.json()["detail"][0]["type"] == "not_ready"
    assert response.headers["retry-after"] == "1"


def test_modelo_is_the_manifest_and_the_engine(client: TestClient, tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())

    body = client.get("/modelo").json()

    assert body["engine"] == "onnxruntime"
    assert body["version"] == manifest["version"]
    assert body["features"] == manifest["features"]
    assert body["metrics"] == manifest["metrics"]
    assert body["data"]["synthetic"] is True


def test_metrics_count_requests_by_route(client: TestClient, formulario: dict[str, Any]) -> None:
    client.post("/predecir", json=formulario)
    client.post("/predecir", json={})
    client.request("BREW", "/predecir")
    client.get("/no/such/page")

    text = client.get("/metrics").text

    assert 'tasador_requests_total{method="POST",route="/predecir",status="200"} 1.0' in text
    assert 'tasador_requests_total{method="POST",route="/predecir",status="422"} 1.0' in text
    assert 'tasador_requests_total{method="other",route="/predecir",status="405"} 1.0' in text
    assert 'tasador_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "tasador_request_seconds_bucket" in text


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn" not in html.lower()
        assets = [part.split('"')[0] for part in html.split('="')[1:] if part.startswith("/static")]
        assert assets, page
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset


MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        schemas.Formulario, schemas.Lote, schemas.Muestra, schemas.PeticionEvaluacion,
        schemas.Prediccion, schemas.PrediccionLote, schemas.Metricas, schemas.Evaluacion,
        schemas.Errores, schemas.Problema, health.Estado, health.Modelo, manifest.Versions,
        manifest.FeatureRange, manifest.TrainingData, manifest.Reference,
    )
}  # fmt: skip


def test_every_schema_has_an_example_that_validates(client: TestClient) -> None:
    components = client.get("/openapi.json").json()["components"]["schemas"]

    for name, schema in components.items():
        if "enum" in schema:
            continue  # the allowed values are the documentation
        assert schema.get("examples"), name
        for example in schema["examples"]:
            MODELS[name].model_validate(example)
    assert "banos" in components["Formulario"]["properties"]["baños"]["description"]


def test_api_keys_protect_prediction_routes(
    tiny_bundle: Path, formulario: dict[str, Any], fast_path: bool
) -> None:
    keys = frozenset({"s3cret"})
    with make_client(tiny_bundle, api_keys=keys, fast_path=fast_path) as client:
        refused = client.post("/predecir", json=formulario)
        wrong = client.post("/predecir", json=formulario, headers={"X-API-Key": "nope"})
        allowed = client.post("/predecir", json=formulario, headers={"X-API-Key": "s3cret"})
        health = client.get("/health")
        lote = client.post("/predecir/lote", json={"formularios": [formulario]})
        spec = client.get("/openapi.json").json()

    assert refused.status_code == 401
    assert lote.status_code == 401
    assert spec["paths"]["/predecir/lote"]["post"]["security"] == [{"APIKey": []}]
    assert refused.json()["detail"][0]["loc"] == ["header", "X-API-Key"]
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert health.status_code == 200
