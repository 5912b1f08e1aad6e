"""Fixtures: a tiny bundle trained once per session, clients of apps serving it, and
`tasador serve` processes serving it."""

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import EMBEDDED_MODEL_DIR
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import ClientFactory, ServerFactory, make_client, train_quietly
from tools.process import TASADOR_SERVE, ServerProcess


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
def server_factory(tiny_bundle: Path) -> Iterator[ServerFactory]:
    """``server_factory(*flags, model_dir=..., **env)``: `tasador serve` with those flags and
    ``TASADOR_*`` variables, serving the tiny bundle (or ``model_dir``) on a free port of
    127.0.0.1, ready; every server it started is stopped when the module ends."""
    started: list[ServerProcess] = []

    def factory(*flags: str, model_dir: Path | None = None, **env: str) -> ServerProcess:
        env = {"TASADOR_MODEL_DIR": str(model_dir or tiny_bundle), **env}
        started.append(ServerProcess([*TASADOR_SERVE, *flags], env=env))
        return started[-1].start()

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
            server.log.close()


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` with its defaults on the tiny bundle, shared by a module's tests; a
    module that needs other settings overrides it with ``server_factory(...)``."""
    return server_factory()


@pytest.fixture(scope="module")
def embedded() -> Iterator[TestClient]:
    """A client of the embedded bundle (the full model, trained on 20,000 homes)."""
    with make_client(EMBEDDED_MODEL_DIR) as started:
        yield started


@pytest.fixture
def formulario() -> dict[str, Any]:
    """A valid home, as a client would send it."""
    return dict(FORMULARIO_EJEMPLO)
