"""POST /evaluar: metrics on labelled homes, beside the hold-out metrics."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score

from tests.helpers import ClientFactory, first_error, sample_homes, sklearn_prices


def _samples(bundle: Path, n: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    homes = sample_homes(n)
    truth = sklearn_prices(bundle, homes) * np.linspace(0.8, 1.25, n)
    return [{**h, "precio": float(p)} for h, p in zip(homes, truth, strict=True)], truth


def test_evaluar_scores_the_rows_sent(client: TestClient, tiny_bundle: Path) -> None:
    muestras, truth = _samples(tiny_bundle, 12)
    predicted = sklearn_prices(
        tiny_bundle, [{k: v for k, v in m.items() if k != "precio"} for m in muestras]
    )

    response = client.post("/evaluar", json={"muestras": muestras})

    assert response.status_code == 200
    body = response.json()
    assert body["filas"] == 12
    assert "n" not in body
    assert body["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert body["rmse"] == pytest.approx(float(np.sqrt(np.mean((truth - predicted) ** 2))))
    assert body["r2"] == pytest.approx(r2_score(truth, predicted))
    assert body["mape"] == pytest.approx(mean_absolute_percentage_error(truth, predicted))
    assert body["validacion"] == client.get("/modelo").json()["metrics"]
    assert "holdout" not in body
    assert body["modelo"] == client.get("/modelo").json()["version"]


def test_r2_is_null_when_true_prices_are_all_equal(client: TestClient) -> None:
    muestras = [{**h, "precio": 300_000.0} for h in sample_homes(3)]

    body = client.post("/evaluar", json={"muestras": muestras}).json()

    assert body["r2"] is None
    assert body["mae"] > 0


def test_one_row_is_not_enough(client: TestClient, tiny_bundle: Path) -> None:
    muestras, _ = _samples(tiny_bundle, 1)

    error = first_error(client.post("/evaluar", json={"muestras": muestras}))

    assert error["loc"] == ["body", "muestras"]
    assert error["type"] == "too_short"


@pytest.mark.parametrize("precio", [0, -100_000, "caro", None])
def test_true_price_must_be_a_positive_number(
    client: TestClient, tiny_bundle: Path, precio: Any
) -> None:
    muestras, _ = _samples(tiny_bundle, 3)
    muestras[1]["precio"] = precio

    error = first_error(client.post("/evaluar", json={"muestras": muestras}))

    assert error["loc"] == ["body", "muestras", 1, "precio"]


def test_missing_true_price_is_named(client: TestClient, tiny_bundle: Path) -> None:
    muestras, _ = _samples(tiny_bundle, 3)
    del muestras[0]["precio"]

    error = first_error(client.post("/evaluar", json={"muestras": muestras}))

    assert error == {**error, "loc": ["body", "muestras", 0, "precio"], "type": "missing"}


def test_evaluar_respects_the_row_limit(client_factory: ClientFactory, tiny_bundle: Path) -> None:
    muestras, _ = _samples(tiny_bundle, 4)
    with client_factory(max_batch_rows=3) as client:
        error = first_error(client.post("/evaluar", json={"muestras": muestras}))

    assert error["loc"] == ["body", "muestras"]
    assert "at most 3" in error["msg"]
