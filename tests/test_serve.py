"""The real server: `tasador serve` and uvicorn start, answer and stop."""

import json
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import post_json
from tools.process import TASADOR_SERVE, ServerProcess

UVICORN = [sys.executable, "-m", "uvicorn", "--port", "{port}"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(list(TASADOR_SERVE), id="tasador-serve"),
        pytest.param([*UVICORN, "app.main:app"], id="uvicorn"),
        pytest.param([*UVICORN, "--factory", "app.main:create_app"], id="uvicorn-factory"),
        pytest.param([*TASADOR_SERVE, "--port", "{port}", "--workers", "2"], id="two-workers"),
    ],
)
def test_server_starts_predicts_and_stops_cleanly(tiny_bundle: Path, command: list[str]) -> None:
    server = ServerProcess(command, env={"TASADOR_MODEL_DIR": str(tiny_bundle)})
    with server:
        answer = post_json(f"{server.url}/predecir", FORMULARIO_EJEMPLO)
        code = server.stop()
        output = server.output()
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())

    assert answer["modelo"] == manifest["version"]
    assert answer["precio"] > 0
    # uvicorn drains, shuts the app down, then re-raises SIGTERM so the exit says why.
    assert code in (0, -15), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert f"serving model {manifest['version']}" in output


def test_flags_reach_every_worker(tiny_bundle: Path) -> None:
    limit = 3
    command = [*TASADOR_SERVE, "--port", "{port}", "--workers", "2", "--max-batch-rows", str(limit)]
    with ServerProcess(command, env={"TASADOR_MODEL_DIR": str(tiny_bundle)}) as server:
        refusals = []
        for _ in range(6):  # connections land on both workers
            try:
                post_json(f"{server.url}/predecir/lote", {"formularios": [FORMULARIO_EJEMPLO] * 4})
            except OSError as exc:
                refusals.append(str(exc))

    assert len(refusals) == 6
    assert all("422" in r for r in refusals)


def _counted(metrics: str, route: str = "/predecir") -> float:
    """What a scrape says of POST /predecir answered with 200."""
    prefix = f'tasador_requests_total{{method="POST",route="{route}",status="200"}} '
    (line,) = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def _by_worker(folder: Path, method: str, route: str) -> list[float]:
    """How many ``method route`` requests each worker answered (200), from its own file."""
    labels = {"method": method, "route": route, "status": "200"}
    counts = []
    for worker_file in sorted(folder.glob("counter_*.db")):
        count = 0.0
        files = [str(worker_file)]
        for metric in MultiProcessCollector.merge(files):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "tasador_requests_total" and sample.labels == labels:
                    count = float(sample.value)
        counts.append(count)
    return counts


def _both(folder: Path, method: str, route: str) -> bool:
    counts = _by_worker(folder, method, route)
    return len(counts) == 2 and 0 not in counts


def test_metrics_add_up_across_workers(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier server")
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle), "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    command = [*TASADOR_SERVE, "--port", "{port}", "--workers", "2"]
    with ServerProcess(command, env=env) as server:
        assert not (folder / "counter_1.db").exists()
        # A connection each, which either worker accepts (the second may still be
        # starting): on until both have answered some, as each one's own file says, and
        # at least 20 (at most 400).
        sent = 0
        while sent < 20 or (sent < 400 and not _both(folder, "POST", "/predecir")):
            post_json(f"{server.url}/predecir", FORMULARIO_EJEMPLO)
            sent += 1
        scrapes: list[float] = []
        while len(scrapes) < 8 or (len(scrapes) < 400 and not _both(folder, "GET", "/metrics")):
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
                scrapes.append(_counted(response.read().decode()))
        answered = _by_worker(folder, "POST", "/predecir")
        scraped = _by_worker(folder, "GET", "/metrics")
        server.stop()
        output = server.output()

    assert len(answered) == 2
    assert 0 not in answered, answered
    assert 0 not in scraped, scraped
    assert scrapes == [sent] * len(scrapes), output
    assert list(folder.glob("gauge_live*.db")) == []  # each worker said it was gone


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


def test_a_busy_port_is_one_line_before_the_model_loads(
    tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from app.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--model-dir", str(tiny_bundle / "missing"), "--port", str(port)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    # The port is named first: the missing bundle was never looked at.
    assert err == [
        f"tasador: cannot start: 127.0.0.1:{port} is already in use (another tasador?): "
        "stop it, or choose another port with --port"
    ]
