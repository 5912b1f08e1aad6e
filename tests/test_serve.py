"""The real server: `tasador serve` and `uvicorn app.main:app` start, answer and stop."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.schemas import FORMULARIO_EJEMPLO
from scaleout.cluster import free_port, wait_ready
from tests.helpers import post_json


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["-m", "app.cli", "serve", "--port", "{port}"], id="tasador-serve"),
        pytest.param(["-m", "uvicorn", "app.main:app", "--port", "{port}"], id="uvicorn"),
        pytest.param(
            ["-m", "app.cli", "serve", "--port", "{port}", "--workers", "2"], id="two-workers"
        ),
    ],
)
def test_server_starts_predicts_and_stops_cleanly(tiny_bundle: Path, command: list[str]) -> None:
    port = free_port()
    env = {**os.environ, "TASADOR_MODEL_DIR": str(tiny_bundle)}
    args = [sys.executable, *(part.format(port=port) for part in command)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/ready", process)
        answer = post_json(f"{base}/predecir", FORMULARIO_EJEMPLO)
        manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()

    assert answer["modelo"] == manifest["version"]
    assert answer["precio"] > 0
    # uvicorn drains, shuts the app down, then re-raises SIGTERM so the exit says why.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
