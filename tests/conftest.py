"""Fixtures: a tiny bundle trained once per session, and clients of apps serving it."""

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import EMBEDDED_MODEL_DIR
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import ClientFactory, make_client, train_quietly


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained once per session; tests must not modify it."""
    return train_quietly(tmp_path_factory.mktemp("tiny") / "bundle")


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny bundle, for tests that tamper with it."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


@pytest.fixture
def client_factory(tiny_bundle: Path) -> ClientFactory:
    """``client_factory(**settings)``: a client (use it with ``with``) of an app serving the
    tiny bundle (or ``model_dir=``) with those settings."""

    def factory(**settings: Any) -> AbstractContextManager[TestClient]:
        return make_client(settings.pop("model_dir", tiny_bundle), **settings)

    return factory


@pytest.fixture
def client(client_factory: ClientFactory) -> Iterator[TestClient]:
    """A started app (lifespan run) serving the tiny bundle, as deployed."""
    with client_factory() as started:
        yield started


@pytest.fixture(scope="module")
def embedded() -> Iterator[TestClient]:
    """A client of the embedded bundle (the full model, trained on 20,000 homes)."""
    with make_client(EMBEDDED_MODEL_DIR) as started:
        yield started


@pytest.fixture
def formulario() -> dict[str, Any]:
    """A valid home, as a client would send it."""
    return dict(FORMULARIO_EJEMPLO)
