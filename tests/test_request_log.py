"""Each request's id, echoed on every answer, and its JSON log line (never its body)."""

import json
import os
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.request_log import request_id
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import UVICORN, ClientFactory, post_json
from tools.process import TASADOR_SERVE, ServerProcess

GENERATED = re.compile(r"[0-9a-f]{32}")
HOME = FORMULARIO_EJEMPLO
# Every kind of answer: served, refused by a check, by validation, unknown, wrong method.
REQUESTS = [
    pytest.param("POST", "/predecir", HOME, {}, 200, id="predecir"),
    pytest.param("POST", "/predecir/lote", {"formularios": [HOME]}, {}, 200, id="lote"),
    pytest.param("POST", "/predecir", {**HOME, "baños": 0}, {}, 422, id="invalid"),
    pytest.param("POST", "/predecir", HOME, {"content-type": "text/plain"}, 415, id="not-json"),
    pytest.param("GET", "/predecir", None, {}, 405, id="wrong-method"),
    pytest.param("GET", "/health", None, {}, 200, id="health"),
    pytest.param("GET", "/metrics", None, {}, 200, id="metrics"),
    pytest.param("GET", "/docs", None, {}, 200, id="docs"),
    pytest.param("GET", "/no/such/page", None, {}, 404, id="unknown"),
]


def _send(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    content = json.dumps(body).encode() if body is not None else None
    sent = {"content-type": "application/json", **headers}
    return client.request(method, path, content=content, headers=sent)


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), REQUESTS)
def test_every_answer_echoes_the_request_id(
    client: TestClient,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    given = _send(client, method, path, body, {**headers, "X-Request-ID": "abc.DEF_12-3"})
    made = _send(client, method, path, body, headers)

    assert given.status_code == made.status_code == status
    assert given.headers["x-request-id"] == "abc.DEF_12-3"
    assert GENERATED.fullmatch(made.headers["x-request-id"])


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("x" * 65, id="too-long"),
        pytest.param("a b", id="space"),
        pytest.param('"><script>', id="markup"),
        pytest.param("línea", id="not-ascii"),
        pytest.param("", id="empty"),
    ],
)
def test_a_request_id_that_is_not_short_and_plain_is_replaced(
    client: TestClient, sent: str
) -> None:
    answer = client.get("/health", headers={b"X-Request-ID": sent.encode()})

    assert GENERATED.fullmatch(answer.headers["x-request-id"])


def test_each_request_without_an_id_gets_its_own(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(20)}

    assert len(ids) == 20


def test_a_forked_worker_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent, and out whatever happens
        try:
            os.write(write, b"".join(request_id({"headers": []}) for _ in range(3)))
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024)
    os.close(read)
    parent = b"".join(request_id({"headers": []}) for _ in range(3))

    assert len(child) == len(parent) == 96
    assert {child[i : i + 32] for i in range(0, 96, 32)}.isdisjoint(
        {parent[i : i + 32] for i in range(0, 96, 32)}
    )


def test_an_error_the_app_did_not_expect_still_carries_the_id(client: TestClient) -> None:
    def fail() -> None:
        raise RuntimeError("a bug")

    client.app.add_api_route("/boom", fail)  # type: ignore[attr-defined]
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        answer = failing.get("/boom", headers={"X-Request-ID": "bug-1"})

    assert answer.status_code == 500
    assert answer.text == "Internal Server Error"
    assert answer.headers["x-request-id"] == "bug-1"


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_line_per_request_and_never_the_body(
    client_factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = {**HOME, "superficie_construida": 123.456}
    with client_factory(log_format="json") as client:
        capsys.readouterr()
        served = client.post(
            "/predecir?explicar=false", json=secret, headers={"X-Request-ID": "r-1"}
        )
        client.post("/predecir", json={**secret, "baños": 0}, headers={"X-Request-ID": "r-2"})
        client.get("/no/such/page?token=hunter2", headers={"X-Request-ID": "r-3"})
        model = client.get("/modelo").json()["version"]
    out = capsys.readouterr().out
    ok, invalid, unknown, _ = _lines(out)

    assert ok == {
        "time": ok["time"],
        "level": "info",
        "logger": "tasador.requests",
        "message": "POST /predecir 200",
        "method": "POST",
        "path": "/predecir",
        "route": "/predecir",
        "status": 200,
        "duration_ms": ok["duration_ms"],
        "bytes": len(served.content),
        "request_id": "r-1",
        "model": model,
        "client": "testclient",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ok["time"])
    assert 0 < ok["duration_ms"] < 60_000
    assert (invalid["status"], invalid["request_id"]) == (422, "r-2")
    assert (unknown["route"], unknown["path"], unknown["status"]) == (
        "unmatched",
        "/no/such/page",
        404,
    )
    for absent in ("123.456", "hunter2", "explicar", "superficie"):
        assert absent not in out


def test_text_format_leaves_the_log_to_uvicorn(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.get("/health")
    client.post("/predecir", json=HOME)

    assert capsys.readouterr().out == ""


def test_the_warning_level_silences_the_request_log(
    client_factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with client_factory(log_format="json", log_level="warning") as client:
        client.post("/predecir", json=HOME)

    assert capsys.readouterr().out == ""


def test_a_path_made_up_by_a_client_is_escaped_and_cut(
    client_factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = '/a"b\\c' + "x" * 1000
    with client_factory(log_format="json") as client:
        capsys.readouterr()
        client.get(path)
    (line,) = _lines(capsys.readouterr().out)

    assert line["path"] == path[:256]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(list(TASADOR_SERVE), id="tasador-serve"),
        pytest.param([*UVICORN, "app.main:app"], id="uvicorn"),
        pytest.param([*TASADOR_SERVE, "--port", "{port}", "--workers", "2"], id="two-workers"),
    ],
)
def test_the_json_format_writes_only_json_lines_one_per_request(
    tiny_bundle: Path, command: list[str]
) -> None:
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle), "TASADOR_LOG_FORMAT": "json"}
    with ServerProcess(command, env=env) as server:
        request = urllib.request.Request(
            f"{server.url}/predecir",
            data=json.dumps(FORMULARIO_EJEMPLO).encode(),
            headers={"content-type": "application/json", "x-request-id": "json-1"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
            echoed = response.headers["x-request-id"]
        server.stop()
        output = server.output()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    version = answer["modelo"]

    assert echoed == "json-1"
    (logged,) = [line for line in lines if line["logger"] == "tasador.requests"
                 and line["path"] == "/predecir"]  # fmt: skip
    assert (logged["request_id"], logged["status"], logged["model"]) == ("json-1", 200, version)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(
        line["logger"] == "tasador" and line["message"].startswith(f"serving model {version}")
        for line in lines
    )


def test_by_default_the_log_has_no_line_per_request(tiny_bundle: Path) -> None:
    with ServerProcess(env={"TASADOR_MODEL_DIR": str(tiny_bundle)}) as server:
        post_json(f"{server.url}/predecir", FORMULARIO_EJEMPLO)
        server.stop()
        output = server.output()

    assert "serving model" in output
    assert "Uvicorn running on" in output
    assert "/predecir" not in output
