"""/metrics: requests counted by route template and status, whichever transport served."""

from typing import Any

from fastapi.testclient import TestClient


def test_metrics_count_requests_by_route(client: TestClient, formulario: dict[str, Any]) -> None:
    client.post("/predecir", json=formulario)
    client.post("/predecir", json={})
    client.post("/predecir/lote", json={"formularios": [formulario]})
    client.request("BREW", "/predecir")
    client.get("/no/such/page")
    client.get("/modelo")

    text = client.get("/metrics").text

    assert 'tasador_requests_total{method="POST",route="/predecir",status="200"} 1.0' in text
    assert 'tasador_requests_total{method="POST",route="/predecir",status="422"} 1.0' in text
    assert 'tasador_requests_total{method="POST",route="/predecir/lote",status="200"} 1.0' in text
    assert 'tasador_requests_total{method="other",route="/predecir",status="405"} 1.0' in text
    assert 'tasador_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'tasador_requests_total{method="GET",route="/modelo",status="200"} 1.0' in text
    assert "tasador_request_seconds_bucket" in text
