"""Liveness, readiness, /modelo, the docs and their examples."""

import json
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import BaseModel

from app import schemas
from app.schemas import estado, manifest, prediccion
from tests.helpers import make_client


def test_health_and_ready(client: TestClient) -> None:
    version = client.get("/modelo").json()["version"]

    assert client.get("/health").json() == {"estado": "ok", "modelo": version}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"estado": "ready", "modelo": version}


def test_before_the_model_is_loaded_health_names_no_model(tiny_bundle: Path) -> None:
    client = make_client(tiny_bundle)  # the lifespan has not run

    assert client.get("/health").json() == {"estado": "ok"}
    assert client.get("/ready").json() == {"estado": "loading"}


def test_modelo_is_the_manifest_and_the_engine(client: TestClient, tiny_bundle: Path) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())

    body = client.get("/modelo").json()

    assert body["engine"] == "onnxruntime"
    assert body["version"] == manifest["version"]
    assert body["features"] == manifest["features"]
    assert body["metrics"] == manifest["metrics"]
    assert body["data"]["synthetic"] is True


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
        schemas.Errores, schemas.Problema, schemas.Estado, schemas.Modelo, estado.Origen,
        estado.Firma, manifest.Versions, manifest.Candidate, manifest.CrossValidation,
        manifest.FeatureRange, manifest.TrainingData, manifest.Reference,
        manifest.IntervalSummary, manifest.ZonesSummary, prediccion.Intervalo, prediccion.Zona,
        prediccion.Advertencia, prediccion.Contribucion, prediccion.PrediccionLoteDetalle,
        prediccion.Testigo, prediccion.Testigos, manifest.TestigosSummary,
        manifest.GradeSummary, manifest.ConfianzaSummary,
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


def test_formulario_example_has_every_field() -> None:
    example = schemas.FORMULARIO_EJEMPLO

    assert list(example) == [f.alias or name for name, f in schemas.Formulario.model_fields.items()]
    assert schemas.Formulario.model_validate(example)


def test_the_root_leads_to_the_interactive_documentation(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)

    assert answer.status_code == 307
    assert answer.headers["location"] == "/docs"
    assert "Swagger" in client.get("/").text
