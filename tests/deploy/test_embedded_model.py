"""The committed bundle in models/ loads, verifies and predicts."""

from typing import Any

from fastapi.testclient import TestClient

from app.bundle.loader import load_bundle
from app.config import EMBEDDED_MODEL_DIR, Settings
from app.main import create_app
from app.training.pipeline import FEATURES, TrainingConfig
from tests.helpers import sklearn_prices

MAX_MODEL_BYTES = 20 * 1024 * 1024


def test_embedded_bundle_is_the_default_training_output() -> None:
    bundle = load_bundle(EMBEDDED_MODEL_DIR)
    manifest = bundle.manifest
    defaults = TrainingConfig()

    assert manifest.features == list(FEATURES)
    assert manifest.data.synthetic is True
    assert manifest.data.rows == 20_000
    assert manifest.params["seed"] == defaults.seed
    assert manifest.params["search"] is True
    # The forest the grouped cross-validation chose is the one served.
    validation = manifest.validation
    assert validation is not None
    assert manifest.params["n_estimators"] == validation.chosen.n_estimators
    assert manifest.params["min_samples_leaf"] == validation.chosen.min_samples_leaf
    assert manifest.target_scale == validation.chosen.target_scale
    assert len(validation.candidates) == 2 * 3 * 2 * 2
    assert manifest.data.unknown["antiguedad"] > 0.4 * manifest.data.rows
    assert manifest.metrics.r2 is not None
    assert manifest.metrics.r2 > 0.75
    assert any(None in r.formulario.values() for r in manifest.reference)
    assert any(None not in r.formulario.values() for r in manifest.reference)
    assert (EMBEDDED_MODEL_DIR / "model.pkl").stat().st_size < MAX_MODEL_BYTES


def test_default_settings_serve_the_embedded_bundle(formulario: dict[str, Any]) -> None:
    assert Settings().model_dir == EMBEDDED_MODEL_DIR

    with TestClient(create_app(Settings())) as client:
        response = client.post("/predecir", json=formulario)

    assert response.status_code == 200
    precio = response.json()["precio"]
    assert precio == round(float(sklearn_prices(EMBEDDED_MODEL_DIR, [formulario])[0]), 2)
    assert 150_000 < precio < 1_500_000  # 95 m² by Puerta del Sol
