"""Where the bundle comes from, without MLflow installed: a folder by default, and clear
one-line refusals for an MLflow URI that cannot work. (With MLflow: tests/deploy/test_mlflow.py.)"""

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main


@pytest.fixture
def without_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if MLflow were not installed, whether it is or not."""
    monkeypatch.setitem(sys.modules, "mlflow", None)


@pytest.mark.usefixtures("without_mlflow")
def test_serving_a_model_uri_without_mlflow_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["serve", "--model-uri", "models:/tasador@champion"])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert lines == [
        "tasador: cannot start: --model-uri models:/tasador@champion needs MLflow, which is "
        "not installed: uv sync --extra mlflow (or pip install 'tasador[mlflow]')"
    ]


@pytest.mark.usefixtures("without_mlflow")
def test_training_with_mlflow_without_mlflow_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--rows", "50", "--out", str(tmp_path / "b"), "--mlflow"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "tasador train: --mlflow needs MLflow, which is not installed: "
        "uv sync --extra mlflow-train (or pip install 'tasador[mlflow-train]')"
    )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("s3://bucket/models/tasador", id="not-mlflow"),
        pytest.param("models:/tasador", id="no-version-or-alias"),
        pytest.param("runs:/abc123", id="run-without-path"),
    ],
)
def test_a_malformed_model_uri_is_refused_in_one_line(
    uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--model-uri", uri])

    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "tasador: invalid setting --model-uri: Value error, expected models:/NAME@ALIAS, "
        "models:/NAME/VERSION or runs:/RUN_ID/PATH"
    )


@pytest.mark.parametrize(
    "args", [["--registrar", "tasador"], ["--mlflow", "--alias", "champion"]], ids=str
)
def test_registering_needs_mlflow_and_an_alias_needs_a_name(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--rows", "50", "--out", str(tmp_path / "b"), *args])

    assert code == 2
    assert capsys.readouterr().err.strip().startswith("tasador train: --")


def test_a_bundle_from_a_folder_has_no_origin(client: TestClient) -> None:
    assert client.get("/modelo").json()["origen"] is None
