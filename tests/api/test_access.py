"""Who may call what: API keys, the model loaded, the body size and type, the budget of
bodies in flight; one check for every route, in process and against a live `tasador serve`
as an attacker would send it (every socket with a timeout, every loop bounded)."""

import http.client
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from app.api.routes import ROUTES as API_ROUTES
from app.config import Settings
from app.keys import ApiKeys, digest
from app.main import create_app
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import (
    ClientFactory,
    ServerFactory,
    assert_still_serving,
    first_error,
    guarded_server,
    http_request,
    make_client,
    post_raw,
    raw_socket,
    sample_homes,
)
from tools.process import ServerProcess

KEY = "s3cret"
ACCESS = {(r.method, r.path): r for r in API_ROUTES}
ROUTES = sorted(ACCESS)
HOME = FORMULARIO_EJEMPLO


def _request(route: tuple[str, str], formulario: dict[str, Any]) -> dict[str, Any]:
    """A valid request for ``route``: method, path and body."""
    method, path = route
    bodies = {
        "/predecir": formulario,
        "/predecir/lote": {"formularios": [formulario]},
        "/evaluar": {"muestras": [{**formulario, "precio": 3e5}, {**formulario, "precio": 4e5}]},
    }
    return {"method": method, "url": path, "json": bodies.get(path)}


def _api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app documents, from its OpenAPI paths."""
    spec = app.openapi()
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


def test_every_route_is_documented() -> None:
    app = create_app()

    assert _api_routes(app) == set(ACCESS)


@pytest.mark.parametrize("configured", [KEY, digest(KEY)], ids=["plain", "digest"])
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_api_keys_on_every_route(
    client_factory: ClientFactory,
    formulario: dict[str, Any],
    route: tuple[str, str],
    configured: str,
) -> None:
    request = _request(route, formulario)
    with client_factory(api_keys=[configured, digest("another")]) as client:
        missing = client.request(**request)
        wrong = client.request(**request, headers={"X-API-Key": "nope"})
        right = client.request(**request, headers={"X-API-Key": KEY})
        other = client.request(**request, headers={"X-API-Key": "another"})

    assert right.status_code == other.status_code == 200, right.text
    if ACCESS[route].key:
        assert missing.status_code == 401
        assert wrong.status_code == 403
        assert first_error(missing)["loc"] == first_error(wrong)["loc"] == ["header", "X-API-Key"]
        assert missing.headers["www-authenticate"] == "X-API-Key"
    else:
        assert missing.status_code == wrong.status_code == 200


def test_open_routes_stay_open_with_keys(client_factory: ClientFactory) -> None:
    with client_factory(api_keys=[KEY], open_routes=["/metrics"]) as client:
        metrics = client.get("/metrics")
        modelo = client.get("/modelo")
        spec = client.get("/openapi.json").json()

    assert metrics.status_code == 200
    assert modelo.status_code == 401
    assert "security" not in spec["paths"]["/metrics"]["get"]
    assert spec["paths"]["/modelo"]["get"]["security"] == [{"APIKey": []}]


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        pytest.param("k1,k2", ("k1", "k2"), id="comma-separated"),
        pytest.param('["k1", "k2"]', ("k1", "k2"), id="json"),
        pytest.param(" k1 ", ("k1",), id="spaces"),
    ],
)
def test_keys_are_read_from_a_list_or_json(
    monkeypatch: pytest.MonkeyPatch, variable: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("TASADOR_API_KEYS", variable)

    assert Settings().api_keys == expected


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        pytest.param("[]", "empty", id="empty-list"),
        pytest.param("", "empty", id="empty-value"),
        pytest.param("k1,,k2", "empty", id="empty-key"),
        pytest.param("sha256:abc", "64 hexadecimal digits", id="short-digest"),
    ],
)
def test_useless_keys_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, message: str
) -> None:
    monkeypatch.setenv("TASADOR_API_KEYS", variable)

    with pytest.raises(ValueError, match=message):
        Settings()


def test_a_key_is_compared_by_digest_and_not_stored_in_clear() -> None:
    keys = ApiKeys([digest(KEY)])

    assert keys.accepts(KEY)
    assert not keys.accepts(KEY + " ")
    assert not keys.accepts(digest(KEY))


def test_protected_routes_say_so_in_the_openapi_document(client_factory: ClientFactory) -> None:
    with client_factory(api_keys=[KEY]) as client:
        spec = client.get("/openapi.json").json()

    for (method, path), access in ACCESS.items():
        security = spec["paths"][path][method.lower()].get("security")
        assert security == ([{"APIKey": []}] if access.key else None), path


def test_without_keys_nothing_asks_for_one(client_factory: ClientFactory) -> None:
    with client_factory() as client:
        spec = client.get("/openapi.json").json()

    assert "securitySchemes" not in spec.get("components", {})


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_not_ready_before_the_bundle_is_loaded(
    tiny_bundle: Path, formulario: dict[str, Any], route: tuple[str, str]
) -> None:
    # Without entering the context manager the lifespan has not run: nothing is loaded.
    client = make_client(tiny_bundle)

    response = client.request(**_request(route, formulario))

    if ACCESS[route].model or route[1] == "/ready":
        assert response.status_code == 503
    else:
        assert response.status_code == 200
    if ACCESS[route].model:
        assert response.json()["detail"][0]["type"] == "not_ready"
        assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_body_over_the_size_limit_is_a_413(
    client_factory: ClientFactory, declared: bool, formulario: dict[str, Any]
) -> None:
    big = json.dumps({"formularios": sample_homes(40)}).encode()
    padded = json.dumps(formulario).encode() + b" " * 5000

    def send(path: str, body: bytes) -> Any:
        # A generator body is sent chunked, with no Content-Length to check up front.
        content = body if declared else iter([body[:1000], body[1000:]])
        return client.post(path, content=content, headers={"content-type": "application/json"})

    with client_factory(max_body_bytes=4096) as client:
        responses = [send("/predecir/lote", big), send("/predecir", padded)]
        ok = client.post("/predecir", json=formulario)

    for response in responses:
        assert response.status_code == 413
        assert first_error(response)["type"] == "body_too_large"
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/docs", "/openapi.json"])
def test_head_is_answered_where_get_is(client: Any, path: str) -> None:
    get, head = client.get(path), client.head(path)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_no_redirect_is_built_from_the_host_header(client: Any, formulario: dict[str, Any]) -> None:
    response = client.post(
        "/predecir/", json=formulario, headers={"host": "evil.example"}, follow_redirects=False
    )

    assert response.status_code == 404
    assert "location" not in response.headers


def test_large_bodies_in_flight_are_bounded(tiny_bundle: Path, formulario: dict[str, Any]) -> None:
    # Three 1,000-row batches at once against a budget of two of them: one is told to
    # come back, the service stays up, and once they are answered it takes them again.
    body = json.dumps({"formularios": [formulario] * 1000}).encode()
    limit = 2 * len(body) + 100
    app = create_app(Settings(model_dir=tiny_bundle, max_bodies_in_flight_bytes=limit))

    async def scenario() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
                release = anyio.Event()

                async def slow_body() -> AsyncIterator[bytes]:
                    yield body[:100]
                    await release.wait()
                    yield body[100:]

                headers = {"content-type": "application/json", "content-length": str(len(body))}
                statuses: list[int] = []

                async def post(content: Any) -> None:
                    r = await client.post("/predecir/lote", content=content, headers=headers)
                    statuses.append(r.status_code)

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(post, slow_body())
                    tasks.start_soon(post, slow_body())
                    await anyio.sleep(0.2)
                    third = await client.post("/predecir/lote", content=body, headers=headers)
                    statuses.append(third.status_code)
                    assert third.headers["retry-after"] == "1"
                    release.set()
                after = await client.post("/predecir/lote", content=body, headers=headers)
                return [*statuses, after.status_code]

    statuses = anyio.run(scenario)

    assert statuses == [503, 200, 200, 200]


@pytest.mark.parametrize("precio", [5e-324, 999.0, 1e308, 2e9])
def test_true_prices_are_bounded(client: Any, formulario: dict[str, Any], precio: float) -> None:
    muestras = [{**formulario, "precio": 3e5}, {**formulario, "precio": precio}]

    error = first_error(client.post("/evaluar", json={"muestras": muestras}))

    assert error["loc"] == ["body", "muestras", 1, "precio"]


def test_a_browser_front_end_on_an_allowed_origin_may_call(
    client_factory: ClientFactory, formulario: dict[str, Any]
) -> None:
    origin = "https://tasador.example"
    with client_factory(api_keys=[KEY], cors_origins=origin) as client:
        preflight = client.options(
            "/predecir",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-api-key",
            },
        )
        answer = client.post(
            "/predecir", json=formulario, headers={"Origin": origin, "X-API-Key": KEY}
        )
        stranger = client.options(
            "/predecir",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )

    # The preflight carries no key and is still answered; the call itself needs one.
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


def test_without_cors_origins_no_cors_headers_are_sent(
    client: Any, formulario: dict[str, Any]
) -> None:
    answer = client.post("/predecir", json=formulario, headers={"Origin": "https://a.example"})

    assert answer.status_code == 200
    assert not any(name.startswith("access-control-") for name in answer.headers)


def test_cors_origins_are_read_from_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASADOR_CORS_ORIGINS", "https://a.example, https://b.example")

    assert Settings().cors_origins == ("https://a.example", "https://b.example")


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` as the hardening review attacked it: an API key, a small budget."""
    return guarded_server(server_factory, KEY)


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
    got, answer = post_raw(
        server, "/predecir", json.dumps(HOME).encode(), {"x-api-key": KEY, **headers}
    )

    assert got == status
    assert answer["detail"][0]["type"] == kind
    if kind == "unsupported_media_type":
        assert "Content-Type: application/json" in answer["detail"][0]["msg"]


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

    assert status == (expected if ACCESS[route].key else 200)


@pytest.mark.parametrize("path", ["/health", "/ready", "/docs", "/openapi.json"])
def test_what_stays_open_with_keys(server: ServerProcess, path: str) -> None:
    assert http_request(server, "GET", path)[0] == 200
    status, _, body = http_request(server, "HEAD", path)
    assert status == 200
    assert body == b""


def test_no_redirect_built_from_host(server: ServerProcess) -> None:
    status, headers, _ = http_request(
        server, "POST", "/predecir/", json.dumps(HOME).encode(), {"host": "evil.example"}
    )

    assert status == 404
    assert "location" not in headers


def test_extreme_true_prices_are_refused(server: ServerProcess) -> None:
    for precio in (5e-324, 1e308):
        body = {"muestras": [{**HOME, "precio": 3e5}, {**HOME, "precio": precio}]}
        status, answer = post_raw(server, "/evaluar", json.dumps(body).encode(), {"x-api-key": KEY})
        assert status == 422
        assert answer["detail"][0]["loc"] == ["body", "muestras", 1, "precio"]


def test_more_large_batches_than_the_budget_are_told_to_come_back(
    server: ServerProcess,
) -> None:
    # Eight 10,000-row batches at once against a budget of about three of them.
    body = json.dumps({"formularios": sample_homes(1) * 10_000}).encode()
    results: list[tuple[int, str | None]] = []

    def post() -> None:
        status, headers, _ = http_request(
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
    assert_still_serving(server, {"x-api-key": KEY})
