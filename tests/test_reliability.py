"""Tried as an attacker would: each finding of the hardening review, against a real
``tasador serve`` on 127.0.0.1. Every socket has a timeout and every loop a bound, so each
test stops by itself; memory and timing figures are measured by
``python -m benchmarks.reliability``, not asserted here."""

import http.client
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.api.routes import ROUTES as API_ROUTES
from app.keys import digest
from app.schemas.formulario import FORMULARIO_EJEMPLO
from benchmarks.reliability import HealthWatch
from tests.helpers import ServerFactory, raw_socket, sample_homes
from tools.process import TASADOR_SERVE, ServerProcess

KEY = "llave-de-prueba"
HOME = FORMULARIO_EJEMPLO


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` with an API key and a small budget for bodies in flight."""
    return server_factory(
        TASADOR_API_KEYS=digest(KEY), TASADOR_MAX_BODIES_IN_FLIGHT_BYTES=str(8 * 1024 * 1024)
    )


def _request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _post(
    server: ServerProcess, path: str, body: bytes, **headers: str
) -> tuple[int, dict[str, Any]]:
    sent = {"content-type": "application/json", "x-api-key": KEY, **headers}
    status, _, answer = _request(server, "POST", path, body, sent)
    return status, json.loads(answer)


def _still_serving(server: ServerProcess) -> None:
    status, answer = _post(server, "/predecir", json.dumps(HOME).encode())
    assert status == 200, answer
    assert _request(server, "GET", "/health")[0] == 200


AMPLIFIERS = [
    pytest.param(
        "/predecir/lote", json.dumps({"formularios": [{}] * 10_000}), id="10k-empty-objects"
    ),
    pytest.param(
        "/predecir/lote", json.dumps({"formularios": [{}] * 200_000}), id="200k-empty-objects"
    ),
    pytest.param(
        "/evaluar", json.dumps({"muestras": [{}] * 200_000}), id="evaluar-200k-empty-objects"
    ),
    pytest.param(
        "/predecir", json.dumps({f"k{i}": 1 for i in range(250_000)}), id="250k-unknown-keys"
    ),
    pytest.param(
        "/predecir/lote",
        json.dumps({"formularios": [{f"k{i}": 1 for i in range(250_000)}]}),
        id="250k-unknown-keys-in-a-row",
    ),
    pytest.param("/predecir", json.dumps({**HOME, "x" * 1_000_000: 1}), id="1MB-unknown-key"),
    pytest.param(
        "/predecir", json.dumps({**HOME, "latitud": list(range(300_000))}), id="huge-array-value"
    ),
    pytest.param(
        "/predecir/lote", '{"formularios":' + "[" * 50_000 + "]" * 50_000 + "}", id="deep-nesting"
    ),
]


@pytest.mark.parametrize(("path", "body"), AMPLIFIERS)
def test_a_small_bad_body_gets_a_small_answer(server: ServerProcess, path: str, body: str) -> None:
    status, answer = _post(server, path, body.encode())

    assert status == 422
    assert 1 <= len(answer["detail"]) <= 21  # at most 20 problems and how many more
    assert len(json.dumps(answer)) < 10_000
    assert all(len(str(part)) <= 70 for p in answer["detail"] for part in p["loc"])
    _still_serving(server)


def test_a_body_over_the_limit_is_refused_unread(server: ServerProcess) -> None:
    with raw_socket(server.port) as sock:
        sock.sendall(
            b"POST /predecir/lote HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + KEY.encode() + b"\r\ncontent-length: 1000000000\r\n\r\n"
        )
        answer = sock.recv(65536)

    assert answer.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize(
    ("headers", "status", "kind"),
    [
        pytest.param({"content-type": "text/plain"}, 415, "unsupported_media_type", id="text"),
        pytest.param(
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
            id="form",
        ),
        pytest.param({"content-encoding": "gzip"}, 415, "unsupported_content_encoding", id="gzip"),
    ],
)
def test_only_plain_json_is_taken(
    server: ServerProcess, headers: dict[str, str], status: int, kind: str
) -> None:
    got, answer = _post(server, "/predecir", json.dumps(HOME).encode(), **headers)

    assert got == status
    assert answer["detail"][0]["type"] == kind
    if kind == "unsupported_media_type":
        assert "Content-Type: application/json" in answer["detail"][0]["msg"]


KEYED = {(r.method, r.path): r.key for r in API_ROUTES}
ROUTES = sorted(KEYED)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param([], 401, id="no-key"),
        pytest.param(["wrong"], 403, id="wrong-key"),
        pytest.param([KEY], 200, id="key"),
        pytest.param([KEY, "wrong"], 200, id="key-then-wrong"),
        pytest.param(["wrong", KEY], 403, id="wrong-then-key"),
    ],
)
def test_the_same_headers_get_the_same_answer_on_every_route(
    server: ServerProcess, route: tuple[str, str], keys: list[str], expected: int
) -> None:
    method, path = route
    bodies = {
        "/predecir": {**HOME},
        "/predecir/lote": {"formularios": [HOME]},
        "/evaluar": {"muestras": [{**HOME, "precio": 3e5}, {**HOME, "precio": 4e5}]},
    }
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for key in keys:
            connection.putheader("X-API-Key", key)
        body = json.dumps(bodies[path]).encode() if path in bodies else b""
        if body:
            connection.putheader("content-type", "application/json")
        connection.putheader("content-length", str(len(body)))
        connection.endheaders(body)
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == (expected if KEYED[route] else 200)


@pytest.mark.parametrize("path", ["/health", "/ready", "/docs", "/openapi.json"])
def test_what_stays_open_with_keys(server: ServerProcess, path: str) -> None:
    assert _request(server, "GET", path)[0] == 200
    status, _, body = _request(server, "HEAD", path)
    assert status == 200
    assert body == b""


def test_no_redirect_built_from_host(server: ServerProcess) -> None:
    status, headers, _ = _request(
        server, "POST", "/predecir/", json.dumps(HOME).encode(), {"host": "evil.example"}
    )

    assert status == 404
    assert "location" not in headers


def test_a_client_hanging_up_mid_body_is_not_a_server_error(server: ServerProcess) -> None:
    before = _request(server, "GET", "/metrics", headers={"x-api-key": KEY})[2].decode()
    with raw_socket(server.port) as sock:
        sock.sendall(
            b"POST /predecir HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + KEY.encode() + b'\r\ncontent-length: 400\r\n\r\n{"latitud": 40.4'
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = _request(server, "GET", "/metrics", headers={"x-api-key": KEY})[2].decode()
        if _count(metrics, "499") > _count(before, "499"):
            break
        time.sleep(0.05)

    assert _count(metrics, "499") == _count(before, "499") + 1
    assert _count(metrics, "500") == _count(before, "500") == 0
    output = server.output()
    assert "Traceback" not in output
    assert output.count("hung up before sending its whole request") >= 1
    _still_serving(server)


def _count(metrics: str, status: str) -> float:
    prefix = 'tasador_requests_total{method="POST",route="/predecir",status="' + status + '"} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_extreme_true_prices_are_refused(server: ServerProcess) -> None:
    for precio in (5e-324, 1e308):
        body = {"muestras": [{**HOME, "precio": 3e5}, {**HOME, "precio": precio}]}
        status, answer = _post(server, "/evaluar", json.dumps(body).encode())
        assert status == 422
        assert answer["detail"][0]["loc"] == ["body", "muestras", 1, "precio"]


def test_keep_alive_requests_sent_before_sigterm_are_answered(tiny_bundle: Path) -> None:
    # Keep-alive clients post in a loop; SIGTERM arrives meanwhile. Every request a client
    # managed to send is answered (the last ones with Connection: close); a client learns
    # to stop from that header, or from a refused new connection, never from a reset.
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle)}
    with ServerProcess(TASADOR_SERVE, env=env) as server:
        outcomes: list[str] = []
        body = json.dumps(HOME).encode()

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    connection.request(
                        "POST", "/predecir", body=body, headers={"content-type": "application/json"}
                    )
                except OSError:
                    outcomes.append("not sent")  # the server had closed the connection
                    return
                try:
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    outcomes.append("cut")  # sent, then lost: what must not happen
                    return
                outcomes.append("answered")
                if response.getheader("connection", "").lower() == "close":
                    outcomes.append("told to close")
                    return

        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        for thread in clients:
            thread.join(timeout=30)
        code = server.stop()

    assert outcomes.count("cut") == 0, outcomes[-20:]
    assert outcomes.count("told to close") >= 1
    assert outcomes.count("answered") > 100
    assert code in (0, -signal.SIGTERM)


def test_more_large_batches_than_the_budget_are_told_to_come_back(
    server: ServerProcess,
) -> None:
    # Eight 10,000-row batches at once against a budget of about three of them.
    body = json.dumps({"formularios": sample_homes(1) * 10_000}).encode()
    results: list[tuple[int, str | None]] = []

    def post() -> None:
        status, headers, _ = _request(
            server,
            "POST",
            "/predecir/lote",
            body,
            {"content-type": "application/json", "x-api-key": KEY},
        )
        results.append((status, headers.get("retry-after")))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted(status for status, _ in results)
    assert len(results) == 8
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 1
    assert all(retry == "1" for status, retry in results if status == 503)
    _still_serving(server)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_health_answers_while_explained_batches_are_computed(tiny_bundle: Path) -> None:
    # The review's finding 4: eight clients posting 10,000 homes with detalle and explicar
    # at once (the default budget admits about six) held /health 1.0-1.5 s and kept half a
    # GB. Precise figures: ``python -m benchmarks.reliability --burst``; here only what a
    # load balancer would see: every poll answered, none near a 1 s timeout.
    body = json.dumps({"formularios": sample_homes(1) * 10_000}).encode()
    path = "/predecir/lote?detalle=true&explicar=true"
    headers = {"content-type": "application/json"}
    with ServerProcess(TASADOR_SERVE, env={"TASADOR_MODEL_DIR": str(tiny_bundle)}) as server:
        status, _, _ = _request(server, "POST", path, body, headers)  # builds the explainer
        assert status == 200
        time.sleep(0.5)
        before = _rss_mb(server.pid)
        watch = HealthWatch(server.port)  # the benchmark's poller, in a process of its own
        watch.start()
        statuses: list[int] = []

        def post() -> None:
            statuses.append(_request(server, "POST", path, body, headers)[0])

        clients = [threading.Thread(target=post) for _ in range(8)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=120)
        watch.finish()
        time.sleep(0.5)
        after = _rss_mb(server.pid)
        _still_serving_open(server)

    assert len(statuses) == 8
    assert 200 in statuses
    assert set(statuses) <= {200, 503}, statuses
    assert watch.polls > 10
    assert watch.failures == 0
    assert watch.worst_ms < 500, f"/health took {watch.worst_ms:.0f} ms"
    # Within 50 MB of before (it kept +240-330 MB); the embedded model's figure, within
    # 20 %, is the benchmark's.
    assert after <= before + 50, f"{before:.0f} MB before, {after:.0f} MB after"


def _still_serving_open(server: ServerProcess) -> None:
    status, _, _ = _request(
        server, "POST", "/predecir", json.dumps(HOME).encode(), {"content-type": "application/json"}
    )
    assert status == 200
