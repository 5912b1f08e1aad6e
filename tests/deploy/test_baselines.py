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
