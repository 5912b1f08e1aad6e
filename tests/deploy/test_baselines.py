"""The benchmark's baseline servers answer what tasador answers (a broken baseline makes
every ratio in the benchmark table meaningless: it happened when the model gained columns)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


@pytest.mark.parametrize("server", ["seed", "sklearn_once"])
@pytest.mark.parametrize("unknown", [{}, {"antiguedad": None}], ids=["known", "unknown-age"])
def test_a_baseline_prices_the_home_as_tasador_does(
    formulario: dict[str, Any], server: str, unknown: dict[str, Any]
) -> None:
    import importlib

    baseline = importlib.import_module(f"benchmarks.servers.{server}")
    home = {**formulario, **unknown}

    with TestClient(baseline.app) as client:
        theirs = client.post("/predecir", json=home)
    with TestClient(create_app(Settings())) as client:
        ours = client.post("/predecir", json=home).json()["precio"]

    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["precio"] == pytest.approx(ours, abs=0.01)


def test_the_in_process_benchmark_serves_its_part_then_the_ceilings_constant(
    formulario: dict[str, Any],
) -> None:
    from app.bundle.loader import load_bundle
    from app.config import EMBEDDED_MODEL_DIR
    from app.schemas import Formulario
    from benchmarks.asgi import _answering
    from benchmarks.servers.ceiling import CONSTANT

    done: list[Formulario] = []
    app = _answering(load_bundle(EMBEDDED_MODEL_DIR), done.append)

    with TestClient(app) as client:
        answer = client.post("/predecir", json=formulario)
        refused = client.post("/predecir", json={**formulario, "habitaciones": -1})

    assert answer.status_code == 200, answer.text
    assert answer.json() == CONSTANT.model_dump(mode="json")
    assert [home.latitud for home in done] == [formulario["latitud"]]
    assert refused.status_code == 422  # the body is still validated
