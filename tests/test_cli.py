"""`tasador serve` (and uvicorn given the app): starts, answers, stops; its flags reach
every worker; a busy port is one line."""

import json
from pathlib import Path

import pytest

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import UVICORN, post_json
from tools.process import TASADOR_SERVE, ServerProcess


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
