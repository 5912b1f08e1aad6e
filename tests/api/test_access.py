"""Who may call what: API keys, the model loaded, the body size; one check for every route."""

import json
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
from tests.helpers import ClientFactory, first_error, make_client, sample_homes

KEY = "s3cret"
ACCESS = {(r.method, r.path): r for r in API_ROUTES}
ROUTES = sorted(ACCESS)


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
