"""The fast transport answers exactly as FastAPI's documented routes do.

Every request below goes to two apps serving the same bundle, one with the fast transport
(as deployed) and one without (``TASADOR_FAST_PATH=false``, FastAPI's routes); status,
the headers a client relies on and the body must be the same, apart from the time stamp.
"""

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import make_client, sample_homes

JSON = {"content-type": "application/json"}
HOME = FORMULARIO_EJEMPLO
KEY = "s3cret"


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with(**changes: Any) -> bytes:
    return _body({**HOME, **changes})


def _without(field: str) -> bytes:
    return _body({k: v for k, v in HOME.items() if k != field})


def _muestras(*prices: Any) -> bytes:
    homes = sample_homes(len(prices))
    return _body({"muestras": [{**h, "precio": p} for h, p in zip(homes, prices, strict=True)]})


# (path, body, headers); a list body is sent chunked, with no Content-Length.
REQUESTS: list[Any] = [
    pytest.param("/predecir", _body(HOME), JSON, id="valid"),
    pytest.param("/predecir", _with(banos=2, **{"baños": 2}), JSON, id="both-banos"),
    pytest.param("/predecir", _with(latitud="40.4"), JSON, id="string-number"),
    pytest.param("/predecir", _with(latitud=0), JSON, id="out-of-range"),
    pytest.param("/predecir", _with(habitaciones=2.5), JSON, id="fraction"),
    pytest.param("/predecir", _with(habitaciones=3.0), JSON, id="whole-float"),
    pytest.param("/predecir", _with(habitaciones=True), JSON, id="boolean-count"),
    pytest.param("/predecir", _with(superficie_util=96.0), JSON, id="util-gt-built"),
    pytest.param("/predecir", _with(condicion="Nuevo", habitaciones=-1), JSON, id="two-errors"),
    pytest.param("/predecir", _with(piscina=True), JSON, id="unknown-field"),
    pytest.param("/predecir", _without("garaje"), JSON, id="missing-field"),
    pytest.param("/predecir", _with(latitud=1).replace(b"1", b"NaN", 1), JSON, id="nan"),
    pytest.param("/predecir", _with(latitud=12345).replace(b"12345", b"1e400"), JSON, id="huge"),
    pytest.param("/predecir", b'{"latitud": 40.4,', JSON, id="truncated"),
    pytest.param("/predecir", b"{latitud: 40.4}", JSON, id="not-json"),
    pytest.param("/predecir", b"\xff\xfe", JSON, id="not-utf8"),
    pytest.param("/predecir", b"[]", JSON, id="array"),
    pytest.param("/predecir", b'"casa"', JSON, id="string"),
    pytest.param("/predecir", b"", JSON, id="empty"),
    pytest.param("/predecir", _body(HOME), {"content-type": "text/plain"}, id="text-plain"),
    pytest.param("/predecir", _body(HOME), {}, id="no-content-type"),
    pytest.param(
        "/predecir", _body(HOME), {**JSON, "content-encoding": "gzip"}, id="gzip-encoding"
    ),
    pytest.param(
        "/predecir", _body(HOME), {"content-type": "application/json; charset=utf-8"}, id="charset"
    ),
    pytest.param("/predecir", [_body(HOME)[:20], _body(HOME)[20:]], JSON, id="chunked"),
    pytest.param("/predecir", _body(HOME) + b" " * 5000, JSON, id="over-limit"),
    pytest.param("/predecir", [_body(HOME), b" " * 5000], JSON, id="over-limit-chunked"),
    pytest.param("/predecir/lote", _body({"formularios": sample_homes(7)}), JSON, id="lote"),
    pytest.param("/predecir/lote", _body({"formularios": []}), JSON, id="lote-empty"),
    pytest.param("/predecir/lote", _body({"formularios": sample_homes(4)}), JSON, id="lote-limit"),
    pytest.param(
        "/predecir/lote",
        _body({"formularios": [HOME, {**HOME, "superficie_util": 500.0}]}),
        JSON,
        id="lote-row-error",
    ),
    pytest.param("/predecir/lote", _body({"homes": [HOME]}), JSON, id="lote-wrong-key"),
    pytest.param("/predecir?explicar=true", _body(HOME), JSON, id="explicar"),
    pytest.param("/predecir?explicar=no", _body(HOME), JSON, id="explicar-false"),
    pytest.param("/predecir?explicar=quizas", _body(HOME), JSON, id="explicar-bad"),
    pytest.param("/predecir?piscina=1", _body(HOME), JSON, id="unknown-parameter"),
    pytest.param("/predecir?explicar=x", _with(latitud=0), JSON, id="bad-body-and-query"),
    pytest.param(
        "/predecir",
        _with(superficie_construida=4000.0, superficie_util=3000.0),
        {**JSON, "accept-language": "es"},
        id="warnings-in-spanish",
    ),
    pytest.param(
        "/predecir",
        _with(latitud=0, condicion="Nuevo"),
        {**JSON, "accept-language": "es"},
        id="errors-in-spanish",
    ),
    pytest.param(
        "/predecir/lote?detalle=true&explicar=true",
        _body({"formularios": sample_homes(3)}),
        JSON,
        id="lote-detalle-explicar",
    ),
    pytest.param("/evaluar", _muestras(3e5, 4e5, 2e5), JSON, id="evaluar"),
    pytest.param("/evaluar", _muestras(3e5), JSON, id="evaluar-one-row"),
    pytest.param("/evaluar", _muestras(3e5, -1), JSON, id="evaluar-negative"),
    pytest.param("/evaluar", _muestras(3e5, 3e5), JSON, id="evaluar-equal-prices"),
]
KEYED_REQUESTS: list[Any] = [
    pytest.param([], id="no-key"),
    pytest.param([("x-api-key", "nope")], id="wrong-key"),
    pytest.param([("x-api-key", KEY)], id="key"),
    pytest.param([("x-api-key", KEY), ("x-api-key", "nope")], id="key-then-wrong"),
    pytest.param([("x-api-key", "nope"), ("x-api-key", KEY)], id="wrong-then-key"),
]


@pytest.fixture(scope="module")
def transports(tiny_bundle: Path) -> Iterator[list[TestClient]]:
    """The same bundle behind each transport, with the limits the table probes."""
    limits = {"max_batch_rows": 5, "max_body_bytes": 4096}
    with ExitStack() as stack:
        yield [
            stack.enter_context(make_client(tiny_bundle, fast_path=fast, **limits))
            for fast in (True, False)
        ]


def _seen(response: Any) -> tuple[int, dict[str, str], Any]:
    """What a client sees: status, the headers it relies on, and the body (no times)."""
    relied_on = ("content-type", "retry-after")
    headers = {k: response.headers[k] for k in relied_on if k in response.headers}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return response.status_code, headers, _timeless(body)


def _timeless(value: Any) -> Any:
    """``value`` without its time stamps, at any depth."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "timestamp"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


@pytest.mark.parametrize(("path", "body", "headers"), REQUESTS)
def test_both_transports_answer_the_same(
    transports: list[TestClient], path: str, body: bytes | list[bytes], headers: dict[str, str]
) -> None:
    answers = []
    for client in transports:
        content = iter(body) if isinstance(body, list) else body
        answers.append(_seen(client.post(path, content=content, headers=headers)))

    fast, fastapi = answers
    assert fast == fastapi
    assert fast[0] < 500


@pytest.mark.parametrize("headers", KEYED_REQUESTS)
def test_both_transports_check_keys_the_same(
    tiny_bundle: Path, headers: list[tuple[str, str]]
) -> None:
    answers = []
    for fast in (True, False):
        with make_client(tiny_bundle, fast_path=fast, api_keys=[KEY]) as client:
            sent = [*JSON.items(), *headers]
            response = client.post("/predecir", content=_body(HOME), headers=sent)
            answers.append(_seen(response))

    assert answers[0] == answers[1]


@pytest.mark.parametrize("path", ["/predecir", "/predecir/lote", "/evaluar"])
def test_both_transports_refuse_the_same_before_the_model_is_loaded(
    tiny_bundle: Path, path: str
) -> None:
    # Clients whose lifespan has not run: no bundle is loaded.
    answers = [
        _seen(make_client(tiny_bundle, fast_path=fast).post(path, json=HOME))
        for fast in (True, False)
    ]

    assert answers[0] == answers[1]
    assert answers[0][0] == 503
