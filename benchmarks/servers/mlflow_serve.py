"""``mlflow models serve`` of the registered model: what the MLflow tutorial serves with.

The bundle is logged and registered as ``tasador train --mlflow`` does (the whole appraisal
as an MLflow pyfunc model, ``app.mlflow_model``) in a throwaway local store, then served by
MLflow's own scoring server (one worker, the current environment). It takes the API's
fields as ``dataframe_records`` and answers the price, interval, €/m², warnings and unknown
fields of each home, as ``/predecir/lote?detalle=true`` does.
"""

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.schemas import FORMULARIO_EJEMPLO
from app.schemas.manifest import Manifest
from tools.process import ServerProcess

NAME = "tasador-benchmark"
READY_S = 300


def available() -> bool:
    """Whether MLflow's client and what logging the forest takes (the mlflow-train extra)
    are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("mlflow", "skops"))


def body() -> bytes:
    """The README's example home as MLflow's /invocations takes it (dataframe_records)."""
    return json.dumps({"dataframe_records": [FORMULARIO_EJEMPLO]}).encode()


@contextmanager
def server(model_dir: Path) -> Iterator[tuple[ServerProcess, bytes]]:
    """The forest registered in a temporary store and served on 127.0.0.1 by
    ``mlflow models serve``; with the body one request sends."""
    from app.training.tracking import log_training

    manifest = Manifest.model_validate_json((model_dir / "manifest.json").read_text())
    with tempfile.TemporaryDirectory(prefix="tasador-mlflow-") as store:
        env = {
            "MLFLOW_TRACKING_URI": f"sqlite:///{Path(store) / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # It runs `exec uvicorn` through bash: this environment's bin/ comes first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with contextlib.chdir(store):  # the local store keeps artefacts in ./mlruns
                tracked = log_training(model_dir, manifest, experiment=NAME, register=NAME)
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        command = [
            str(Path(sys.executable).parent / "mlflow"), "models", "serve",
            "-m", f"models:/{NAME}/{tracked.version}", "--env-manager", "local",
            "-h", "127.0.0.1", "-p", "{port}", "-w", "1",
        ]  # fmt: skip
        process = ServerProcess(
            command,
            env=env,
            cwd=Path(store),
            ready_path="/ping",
            ready_timeout=READY_S,
            process_group=True,
        )
        with process:
            yield process, body()
