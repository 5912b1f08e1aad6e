"""/metrics: requests counted by route template and status."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from app.bundle.loader import BundleError
from app.reload import reload_bundle
from tests.helpers import TINY, ClientFactory, train_quietly


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


def test_a_client_hanging_up_mid_body_is_counted_apart_and_logged_once(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Message] = []
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"latitud": 40.4', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predecir", "raw_path": b"/predecir", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    with caplog.at_level("INFO", "tasador"):
        assert client.portal is not None
        client.portal.call(cast(FastAPI, client.app), scope, receive, send)
        metrics = client.get("/metrics").text

    assert not [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
    assert 'route="/predecir",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics
    (line,) = [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()]
    assert "127.0.0.1:5555" in line
    assert "POST /predecir" in line


def _sample(text: str, name: str) -> float:
    """The value of the one sample named ``name`` (with its labels) in ``text``."""
    (value,) = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


def test_metrics_tell_batch_sizes_and_the_prices_answered(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    single = client.post("/predecir", json=formulario).json()["precio"]
    batch = client.post("/predecir/lote", json={"formularios": [formulario] * 3}).json()
    detailed = client.post(
        "/predecir/lote?detalle=true", json={"formularios": [formulario] * 2}
    ).json()
    muestras = [{**formulario, "precio": 400_000}, {**formulario, "precio": 500_000}]
    client.post("/evaluar", json={"muestras": muestras})

    text = client.get("/metrics").text
    prices = [single, *batch["precios"], *(r["precio"] for r in detailed["resultados"])]

    assert _sample(text, 'tasador_batch_rows_count{route="/predecir/lote"}') == 2
    assert _sample(text, 'tasador_batch_rows_sum{route="/predecir/lote"}') == 5
    assert _sample(text, 'tasador_batch_rows_bucket{le="2.0",route="/predecir/lote"}') == 1
    assert _sample(text, 'tasador_batch_rows_count{route="/evaluar"}') == 1
    assert _sample(text, "tasador_predicted_price_euros_count") == 6
    assert _sample(text, "tasador_predicted_price_euros_sum") == pytest.approx(sum(prices))
    below = sum(p <= 500_000 for p in prices)
    assert _sample(text, 'tasador_predicted_price_euros_bucket{le="500000.0"}') == below


def test_metrics_name_the_model_served_and_count_reloads(
    bundle_copy: Path, client_factory: ClientFactory
) -> None:
    with client_factory(model_dir=bundle_copy) as client:
        first = client.get("/modelo").json()
        assert client.portal is not None
        train_quietly(bundle_copy, replace(TINY, seed=99))
        client.portal.call(reload_bundle, cast(FastAPI, client.app))
        second = client.get("/modelo").json()
        (bundle_copy / "model.pkl").write_bytes(b"tampered")
        with pytest.raises(BundleError):
            client.portal.call(reload_bundle, cast(FastAPI, client.app))
        text = client.get("/metrics").text

    def info(manifest: dict[str, Any]) -> str:
        engine, version = manifest["engine"], manifest["version"]
        return f'tasador_model_info{{engine="{engine}",version="{version}"}}'

    assert _sample(text, info(second)) == 1
    assert _sample(text, info(first)) == 0
    assert _sample(text, 'tasador_model_reloads_total{outcome="success"}') == 1
    assert _sample(text, 'tasador_model_reloads_total{outcome="failure"}') == 1
