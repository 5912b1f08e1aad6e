"""MLflow end to end: `tasador train --mlflow` logs and registers, `tasador serve
--model-uri` downloads, verifies and serves, and moving the alias plus SIGHUP swaps the
model with no dropped request. Against the embedded store and a real `mlflow server`."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.service.tables import OUTPUT_COLUMNS
from app.training.tracking import APPRAISAL_REQUIREMENTS
from tests.helpers import answers_across_a_swap, post_json, require, train_quietly
from tools.process import TASADOR_SERVE, ServerProcess

pytestmark = [
    pytest.mark.mlflow,
    # MLflow 3.17's SQLite store uses a loader strategy SQLAlchemy 2.1 deprecates.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
    # MLflow 3.17 warns about one of its own type hints when mlflow.pyfunc is imported.
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]

# Imported when installed, by pandas (pyarrow) and pyarrow (cloudpickle), never required.
OPTIONAL_IMPORTS = {"pyarrow", "cloudpickle"}

INSTALL = "uv sync --extra mlflow-train --group mlflow-server"
TRAIN = (sys.executable, "-m", "app.cli", "train", "--rows", "400", "--trees", "6")
SERVER_READY_S = 300  # mlflow server took 14-68 s to answer /health on a busy 2-core machine
MLFLOW_ENV = {
    # No lookup of MLflow's telemetry host, in this process and in every child.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # An unreachable server fails in seconds, not after minutes of retries.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "TASADOR_LOG_LEVEL": "info",
}


@pytest.fixture(autouse=True)
def mlflow_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail, saying what to install, where MLflow is missing."""
    require("mlflow", INSTALL)
    require("skops", INSTALL)
    for name, value in MLFLOW_ENV.items():
        monkeypatch.setenv(name, value)


def _env(tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return {**env, **MLFLOW_ENV, **extra}


def _train(cwd: Path, out: str, *args: str, tracking_uri: str | None = None) -> str:
    """`tasador train --mlflow ...` in a process of its own; what it printed."""
    done = subprocess.run(
        [*TRAIN, "--out", out, "--mlflow", *args],
        cwd=cwd,
        env=_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _manifest(bundle: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())
    return manifest


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_train_logs_everything_and_serve_fetches_from_the_embedded_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import get_model_info

    printed = _train(tmp_path, "bundle", "--registrar", "tasador", "--alias", "champion")
    manifest = _manifest(tmp_path / "bundle")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # where MLflow puts it with no URI set
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # for this process only
    monkeypatch.chdir(tmp_path)
    client = MlflowClient()
    version = client.get_model_version_by_alias("tasador", "champion")
    assert version.run_id is not None
    run = client.get_run(version.run_id)

    assert "Registered as models:/tasador/1, alias champion" in printed
    assert "serve it with: tasador serve --model-uri models:/tasador@champion" in printed
    assert str(version.version) == "1"
    assert run.data.tags["tasador.version"] == manifest["version"]
    validation = manifest["validation"]
    assert run.data.metrics == pytest.approx(
        {
            **{k: v for k, v in manifest["metrics"].items() if v is not None},
            **{
                f"cv.{k}": float(v)
                for k, v in validation.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            },
            **{
                f"confianza.{grade}.{k}": float(v)
                for grade, figures in manifest["confianza"]["grades"].items()
                for k, v in figures.items()
                if k != "rows" and v is not None
            },
        }
    )
    assert run.data.metrics["cv.mape"] == validation["mape"]
    assert (
        run.data.metrics["confianza.baja.share"] == manifest["confianza"]["grades"]["baja"]["share"]
    )
    assert run.data.params["target_scale"] == manifest["target_scale"]
    assert run.data.params["data.sha256"] == manifest["data"]["sha256"]
    assert run.data.params["data.synthetic"] == "True"
    assert run.data.params["n_estimators"] == "6"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert logged == {"bundle", "manifest.json"}
    in_run = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert in_run == {"manifest.json", *manifest["artefacts"]}
    # The registered model is the whole appraisal (pyfunc); the forest stays in the run.
    model = get_model_info(f"models:/tasador/{version.version}")
    assert set(model.flavors) == {"python_function"}
    assert model.signature is not None
    assert model.signature.inputs is None  # each row is validated by tasador itself
    assert model.signature.outputs.input_names() == list(OUTPUT_COLUMNS)
    assert model.saved_input_example_info is not None
    models = {
        m.name: m
        for m in mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id], output_format="list"
        )
    }
    assert set(models) == {"tasador", "forest"}
    assert models["forest"].source_run_id == run.info.run_id
    forest = get_model_info(f"models:/{models['forest'].model_id}")
    assert forest.flavors.keys() >= {"sklearn", "python_function"}
    assert forest.signature is not None
    assert [c.name for c in forest.signature.inputs.inputs] == manifest["features"]

    # It appraises as the service does, from the store, with the bundle it carries.
    homes = pd.DataFrame([r["formulario"] for r in manifest["reference"]])
    answers = mlflow.pyfunc.load_model("models:/tasador@champion").predict(homes)
    assert answers["precio"].tolist() == pytest.approx(
        [r["precio"] for r in manifest["reference"]], abs=0.005
    )
    assert set(answers["motivo"]) == {""}
    downloaded = Path(mlflow.artifacts.download_artifacts("models:/tasador/1", dst_path="m"))
    assert sorted(p.name for p in (downloaded / "bundle").iterdir()) == sorted(
        ["manifest.json", *manifest["artefacts"]]
    )
    assert (downloaded / "code" / "app" / "mlflow_model.py").is_file()
    requirements = (downloaded / "requirements.txt").read_text().split()
    assert requirements == [f"mlflow=={mlflow.__version__}", *_pinned(APPRAISAL_REQUIREMENTS)]

    with ServerProcess(
        [*TASADOR_SERVE, "--model-uri", "models:/tasador@champion", "--model-cache", "cache"],
        cwd=tmp_path,
        env=_env(),
    ) as server:
        served = _get(f"{server.url}/modelo")
        reference = manifest["reference"][0]
        answer = post_json(f"{server.url}/predecir", reference["formulario"])

    assert served["version"] == manifest["version"]
    assert served["origen"] == {
        "uri": "models:/tasador@champion",
        "run_id": run.info.run_id,
        "nombre": "tasador",
        "version": "1",
    }
    assert answer["precio"] == pytest.approx(reference["precio"], abs=0.005)  # in cents
    assert (tmp_path / "cache" / manifest["version"] / "manifest.json").is_file()


def test_a_bundle_tampered_with_in_mlflow_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    tampered = train_quietly(tmp_path / "tampered")
    with (tampered / "model.pkl").open("ab") as handle:
        handle.write(b"changed after training")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the local store keeps artefacts in ./mlruns
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tampered), "bundle")

    uri = f"runs:/{run.info.run_id}/bundle"
    done = _serve_refused(tmp_path, "--model-uri", uri, "--model-cache", "cache")

    assert done.returncode == 2
    assert "does not match its SHA-256 in the manifest" in done.stderr.splitlines()[-1]


def _pinned(names: tuple[str, ...]) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in names]


def _needed(names: tuple[str, ...]) -> set[str]:
    """The distributions ``names`` need, themselves included (normalised names)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    needed: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            for line in requires(name) or []:
                requirement = Requirement(line)
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(canonicalize_name(requirement.name))
    return needed


def test_the_registered_models_requirements_cover_what_appraising_imports(
    tiny_bundle: Path,
) -> None:
    script = f"""
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
import pandas as pd
from app.bundle.loader import load_bundle
from app.service.tables import appraise_frame
from app.schemas import FORMULARIO_EJEMPLO
appraise_frame(load_bundle(Path({str(tiny_bundle)!r})), pd.DataFrame([FORMULARIO_EJEMPLO]))
found = packages_distributions()
print(" ".join(sorted({{d for m in sys.modules for d in found.get(m.split(".")[0], [])}})))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    from packaging.utils import canonicalize_name

    imported = {canonicalize_name(name) for name in done.stdout.split()}
    assert imported - _needed(APPRAISAL_REQUIREMENTS) - OPTIONAL_IMPORTS == set()


def _serve_refused(cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``tasador serve`` with ``flags``, which must stop before serving."""
    return subprocess.run(
        [*TASADOR_SERVE, *flags],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unknown_model_is_one_line(tmp_path: Path) -> None:
    done = _serve_refused(tmp_path, "--model-uri", "models:/tasador@nadie")

    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("tasador: cannot start: models:/tasador@nadie: ")
    )
    assert "tasador not found" in done.stderr.strip().splitlines()[-1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `mlflow server` on 127.0.0.1: SQLite backend, local artefact root (proxied)."""
    require("mlflow.server", INSTALL)
    binary = Path(sys.executable).parent / "mlflow"
    root = tmp_path / "mlflow-server"
    root.mkdir()
    command = [
        str(binary), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
    ]  # fmt: skip
    with ServerProcess(
        command,
        env=_env(),
        cwd=root,
        ready_path="/health",
        ready_timeout=SERVER_READY_S,
        process_group=True,
    ) as server:
        yield server


def test_moving_the_champion_alias_and_sighup_swap_the_model_without_dropping_a_request(
    tmp_path: Path, mlflow_server: ServerProcess
) -> None:
    from mlflow import MlflowClient

    tracking = mlflow_server.url
    _train(tmp_path, "v1", "--registrar", "tasador", "--alias", "champion", tracking_uri=tracking)
    _train(tmp_path, "v2", "--seed", "99", "--registrar", "tasador", tracking_uri=tracking)
    first: str = _manifest(tmp_path / "v1")["version"]
    second: str = _manifest(tmp_path / "v2")["version"]
    assert first != second
    with ServerProcess(
        [*TASADOR_SERVE, "--model-uri", "models:/tasador@champion"],
        env=_env(tracking, TASADOR_MODEL_CACHE=str(tmp_path / "cache")),
    ) as server:
        before = _get(f"{server.url}/modelo")

        def swap() -> str:
            MlflowClient(tracking_uri=tracking).set_registered_model_alias(
                "tasador", "champion", "2"
            )
            server.send_signal(signal.SIGHUP)
            return second

        answers = answers_across_a_swap(f"{server.url}/predecir", swap, within_s=90)
        after = _get(f"{server.url}/modelo")
        server.stop()
        output = server.output()

    assert [a for a in answers if a[0] != 200] == []
    versions = [v for _, v in answers]
    assert versions[0] == first
    assert versions[-1] == second
    switch = versions.index(second)
    assert set(versions[:switch]) == {first}
    assert set(versions[switch:]) == {second}
    assert (before["origen"]["version"], after["origen"]["version"]) == ("1", "2")
    assert after["origen"]["uri"] == "models:/tasador@champion"
    assert f"model reloaded: now serving {second} (was {first})" in output
