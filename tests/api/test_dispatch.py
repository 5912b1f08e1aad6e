"""Every kind of body the API takes or refuses, and what a client is answered: the status,
and the first problem's type and place; a client hanging up mid-body is no server error."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import (
    ServerFactory,
    assert_still_serving,
    guarded_server,
    http_request,
    make_client,
    raw_socket,
    sample_homes,
)
from tools.process import ServerProcess

JSON = {"content-type": "application/json"}
HOME = FORMULARIO_EJEMPLO
KEY = "llave-de-prueba"


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with(**changes: Any) -> bytes:
    return _body({**HOME, **changes})


def _without(field: str) -> bytes:
    return _body({k: v for k, v in HOME.items() if k != field})


def _muestras(*prices: Any) -> bytes:
    homes = sample_homes(len(prices))
    return _body({"muestras": [{**h, "precio": p} for h, p in zip(homes, prices, strict=True)]})


# (path, body, headers, status, first problem's type and loc); a list body is sent chunked,
# with no Content-Length. The limits are the ``limited`` client's.
ES = {**JSON, "accept-language": "es"}
LOTE_ROW_ERROR = _body({"formularios": [HOME, {**HOME, "superficie_util": 500.0}]})
REQUESTS: list[Any] = [
    pytest.param("/predecir", _body(HOME), JSON, 200, None, None, id="valid"),
    pytest.param("/predecir", _with(banos=2, **{"baños": 2}), JSON, 422, "extra_forbidden",
                 ["body", "banos"], id="both-banos"),
    pytest.param("/predecir", _with(latitud="40.4"), JSON, 422, "float_type", ["body", "latitud"],
                 id="string-number"),
    pytest.param("/predecir", _with(latitud=0), JSON, 422, "greater_than_equal",
                 ["body", "latitud"], id="out-of-range"),
    pytest.param("/predecir", _with(habitaciones=2.5), JSON, 422, "int_from_float",
                 ["body", "habitaciones"], id="fraction"),
    pytest.param("/predecir", _with(habitaciones=3.0), JSON, 200, None, None, id="whole-float"),
    pytest.param("/predecir", _with(habitaciones=True), JSON, 422, "int_type",
                 ["body", "habitaciones"], id="boolean-count"),
    pytest.param("/predecir", _with(superficie_util=96.0), JSON, 422, "superficie_util_too_large",
                 ["body", "superficie_util"], id="util-gt-built"),
    pytest.param("/predecir", _with(condicion="Nuevo", habitaciones=-1), JSON, 422,
                 "greater_than_equal", ["body", "habitaciones"], id="two-errors"),
    pytest.param("/predecir", _with(piscina=True), JSON, 422, "extra_forbidden",
                 ["body", "piscina"], id="unknown-field"),
    pytest.param("/predecir", _without("garaje"), JSON, 422, "missing", ["body", "garaje"],
                 id="missing-field"),
    pytest.param("/predecir", _with(latitud=1).replace(b"1", b"NaN", 1), JSON, 422,
                 "finite_number", ["body", "latitud"], id="nan"),
    pytest.param("/predecir", _with(latitud=12345).replace(b"12345", b"1e400"), JSON, 422,
                 "finite_number", ["body", "latitud"], id="huge"),
    pytest.param("/predecir", b'{"latitud": 40.4,', JSON, 422, "json_invalid", ["body"],
                 id="truncated"),
    pytest.param("/predecir", b"{latitud: 40.4}", JSON, 422, "json_invalid", ["body"],
                 id="not-json"),
    pytest.param("/predecir", b"\xff\xfe", JSON, 422, "json_invalid", ["body"], id="not-utf8"),
    pytest.param("/predecir", b"[]", JSON, 422, "model_type", ["body"], id="array"),
    pytest.param("/predecir", b'"casa"', JSON, 422, "model_type", ["body"], id="string"),
    pytest.param("/predecir", b"", JSON, 422, "missing", ["body"], id="empty"),
    pytest.param("/predecir", _body(HOME), {"content-type": "text/plain"}, 415,
                 "unsupported_media_type", ["header", "Content-Type"], id="text-plain"),
    pytest.param("/predecir", _body(HOME), {}, 415, "unsupported_media_type",
                 ["header", "Content-Type"], id="no-content-type"),
    pytest.param("/predecir", _body(HOME), {**JSON, "content-encoding": "gzip"}, 415,
                 "unsupported_content_encoding", ["header", "Content-Encoding"],
                 id="gzip-encoding"),
    pytest.param("/predecir", _body(HOME), {"content-type": "application/json; charset=utf-8"},
                 200, None, None, id="charset"),
    pytest.param("/predecir", [_body(HOME)[:20], _body(HOME)[20:]], JSON, 200, None, None,
                 id="chunked"),
    pytest.param("/predecir", _body(HOME) + b" " * 5000, JSON, 413, "body_too_large", ["body"],
                 id="over-limit"),
    pytest.param("/predecir", [_body(HOME), b" " * 5000], JSON, 413, "body_too_large", ["body"],
                 id="over-limit-chunked"),
    pytest.param("/predecir/lote", _body({"formularios": sample_homes(7)}), JSON, 422,
                 "too_long", ["body", "formularios"], id="lote-over-the-row-limit"),
    pytest.param("/predecir/lote", _body({"formularios": []}), JSON, 422, "too_short",
                 ["body", "formularios"], id="lote-empty"),
    pytest.param("/predecir/lote", _body({"formularios": sample_homes(4)}), JSON, 200, None, None,
                 id="lote"),
    pytest.param("/predecir/lote", LOTE_ROW_ERROR, JSON, 422, "superficie_util_too_large",
                 ["body", "formularios", 1, "superficie_util"], id="lote-row-error"),
    pytest.param("/predecir/lote", _body({"homes": [HOME]}), JSON, 422, "missing",
                 ["body", "formularios"], id="lote-wrong-key"),
    pytest.param("/predecir?explicar=true", _body(HOME), JSON, 200, None, None, id="explicar"),
    pytest.param("/predecir?explicar=no", _body(HOME), JSON, 200, None, None,
                 id="explicar-false"),
    pytest.param("/predecir?explicar=quizas", _body(HOME), JSON, 422, "bool_parsing",
                 ["query", "explicar"], id="explicar-bad"),
    pytest.param("/predecir?piscina=1", _body(HOME), JSON, 422, "extra_forbidden",
                 ["query", "piscina"], id="unknown-parameter"),
    pytest.param("/predecir?explicar=x", _with(latitud=0), JSON, 422, "greater_than_equal",
                 ["body", "latitud"], id="bad-body-and-query"),
    pytest.param("/predecir", _with(superficie_construida=4000.0, superficie_util=3000.0), ES,
                 200, None, None, id="warnings-in-spanish"),
    pytest.param("/predecir", _with(latitud=0, condicion="Nuevo"), ES, 422, "greater_than_equal",
                 ["body", "latitud"], id="errors-in-spanish"),
    pytest.param("/predecir/lote?detalle=true&explicar=true",
                 _body({"formularios": sample_homes(3)}), JSON, 200, None, None,
                 id="lote-detalle-explicar"),
    pytest.param("/evaluar", _muestras(3e5, 4e5, 2e5), JSON, 200, None, None, id="evaluar"),
    pytest.param("/evaluar", _muestras(3e5), JSON, 422, "too_short", ["body", "muestras"],
                 id="evaluar-one-row"),
    pytest.param("/evaluar", _muestras(3e5, -1), JSON, 422, "greater_than_equal",
                 ["body", "muestras", 1, "precio"], id="evaluar-negative"),
    pytest.param("/evaluar", _muestras(3e5, 3e5), JSON, 200, None, None,
                 id="evaluar-equal-prices"),
]  # fmt: skip


@pytest.fixture(scope="module")
def limited(tiny_bundle: Path) -> Iterator[TestClient]:
    """A client of the tiny bundle with limits the table reaches: 5 rows, 4 KiB bodies."""
    with make_client(tiny_bundle, max_batch_rows=5, max_body_bytes=4096) as client:
        yield client


@pytest.mark.parametrize(("path", "body", "headers", "status", "kind", "loc"), REQUESTS)
def test_each_body_gets_its_answer(
    limited: TestClient,
    path: str,
    body: bytes | list[bytes],
    headers: dict[str, str],
    status: int,
    kind: str | None,
    loc: list[Any] | None,
) -> None:
    content = iter(body) if isinstance(body, list) else body

    answer = limited.post(path, content=content, headers=headers)

    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    if kind is None:
        assert "detail" not in answer.json()
    else:
        first = answer.json()["detail"][0]
        assert (first["type"], first["loc"]) == (kind, loc)


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` as the hardening review attacked it: an API key, a small budget."""
    return guarded_server(server_factory, KEY)


def test_a_client_hanging_up_mid_body_is_not_a_server_error(server: ServerProcess) -> None:
    before = http_request(server, "GET", "/metrics", headers={"x-api-key": KEY})[2].decode()
    with raw_socket(server.port) as sock:
        sock.sendall(
            b"POST /predecir HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + KEY.encode() + b'\r\ncontent-length: 400\r\n\r\n{"latitud": 40.4'
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = http_request(server, "GET", "/metrics", headers={"x-api-key": KEY})[2].decode()
        if _count(metrics, "499") > _count(before, "499"):
            break
        time.sleep(0.05)

    assert _count(metrics, "499") == _count(before, "499") + 1
    assert _count(metrics, "500") == _count(before, "500") == 0
    output = server.output()
    assert "Traceback" not in output
    assert output.count("hung up before sending its whole request") >= 1
    assert_still_serving(server, {"x-api-key": KEY})


def _count(metrics: str, status: str) -> float:
    prefix = 'tasador_requests_total{method="POST",route="/predecir",status="' + status + '"} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0
