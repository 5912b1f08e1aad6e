"""Fixtures: a tiny bundle trained once per session, and clients serving it."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.schemas import FORMULARIO_EJEMPLO
from app.training.pipeline import TrainingConfig, train
from app.training.synthetic import generate

TINY = TrainingConfig(seed=7, n_estimators=6, n_jobs=1)


def train_quietly(out: Path, config: TrainingConfig = TINY, rows: int = 400) -> Path:
    """Train a small forest on synthetic rows into ``out``, with no terminal output."""
    train(generate(rows, config.seed), out, config, say=lambda _: None, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained once per session; tests must not modify it."""
    return train_quietly(tmp_path_factory.mktemp("tiny") / "bundle")


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny bundle, for tests that tamper with it."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def make_client(model_dir: Path, **settings: Any) -> TestClient:
    """A client for an app serving ``model_dir``; use it as a context manager."""
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)))


@pytest.fixture(
    params=[pytest.param(True, id="fast-path"), pytest.param(False, id="fastapi-route")]
)
def fast_path(request: pytest.FixtureRequest) -> bool:
    """Each test using it runs through the /predecir fast path and the plain FastAPI route."""
    enabled: bool = request.param
    return enabled


@pytest.fixture
def client(tiny_bundle: Path, fast_path: bool) -> Iterator[TestClient]:
    """A started app (lifespan run) serving the tiny bundle, fast path on and off."""
    with make_client(tiny_bundle, fast_path=fast_path) as started:
        yield started


@pytest.fixture
def formulario() -> dict[str, Any]:
    """A valid home, as a client would send it."""
    return dict(FORMULARIO_EJEMPLO)
