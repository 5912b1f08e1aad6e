"""The real server: `tasador serve` and uvicorn start, answer and stop."""

import json
import sys
from pathlib import Path

import pytest

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
