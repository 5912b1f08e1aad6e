"""/metrics: requests counted by route template and status, whichever transport served."""

from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from tests.helpers import ClientFactory


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


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "fastapi"])
def test_a_client_hanging_up_mid_body_is_counted_apart_and_logged_once(
    client_factory: ClientFactory, fast_path: bool, caplog: pytest.LogCaptureFixture
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
    with client_factory(fast_path=fast_path) as client, caplog.at_level("INFO", "tasador"):
        assert client.portal is not None
        client.portal.call(cast(FastAPI, client.app), scope, receive, send)
        metrics = client.get("/metrics").text

    assert not [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
    assert 'route="/predecir",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics
    (line,) = [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()]
    assert "127.0.0.1:5555" in line
    assert "POST /predecir" in line
