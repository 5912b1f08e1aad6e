"""The compiled engine: identical to scikit-learn, or scikit-learn serves instead."""

import logging
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from app.bundle.loader import load_bundle
from app.engines import priced
from app.engines.onnx import PARALLEL_FROM_ROWS, OnnxEngine
from app.engines.sklearn import SklearnEngine
from app.features import FEATURES
from app.training.compile import forest_to_onnx
from tests.helpers import ClientFactory, rehash


def _inputs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)) * [1, 10, 100, 0.001]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"n_estimators": 7, "min_samples_leaf": 1}, id="deep"),
        pytest.param({"n_estimators": 5, "max_depth": 1}, id="stumps"),
        pytest.param({"n_estimators": 3, "min_samples_leaf": 1000}, id="single-leaf-trees"),
    ],
)
def test_compiled_forest_equals_sklearn_bit_for_bit(params: dict[str, int]) -> None:
    x = _inputs(600)
    y = x @ [3.0, -1.0, 0.5, 2000.0] + np.sin(x[:, 0]) * 50
    forest = RandomForestRegressor(random_state=0, **params).fit(x, y)
    # Inputs at training values sit exactly on the float32 side of a split.
    probe = np.vstack([x, _inputs(PARALLEL_FROM_ROWS * 3, seed=1)])

    engine = OnnxEngine(forest_to_onnx(forest, 4))

    # Large batches are cut into chunks run at once; each sums its trees in
    # scikit-learn's order, so every answer has the same bits.
    assert len(probe) >= 2 * PARALLEL_FROM_ROWS
    assert np.array_equal(engine.predict(probe), forest.predict(probe))
    singles = np.array([engine.predict(row[None, :])[0] for row in probe[:50]])
    assert np.array_equal(singles, forest.predict(probe[:50]))


def test_bundle_engine_matches_sklearn_on_many_rows(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    sklearn = priced(SklearnEngine(joblib.load(tiny_bundle / "model.pkl")), "log")
    with np.load(tiny_bundle / "check.npz") as check:
        x = check["x"]

    assert bundle.engine.name == "onnxruntime"
    assert bundle.manifest.target_scale == "log"
    assert np.isnan(x).any()  # unknown fields take the branch scikit-learn learnt for them
    assert len(x) >= 1000
    assert np.array_equal(bundle.engine.predict(x), sklearn.predict(x))


def _replace_artefact(bundle: Path, name: str, content: bytes) -> None:
    (bundle / name).write_bytes(content)
    rehash(bundle, name)


def test_engine_that_disagrees_falls_back_to_sklearn(
    bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = len(FEATURES)
    other = RandomForestRegressor(n_estimators=2, random_state=0).fit(
        _inputs(50, 3).repeat(n, axis=1)[:, :n], np.arange(50.0)
    )
    _replace_artefact(bundle_copy, "forest.onnx", forest_to_onnx(other, n))

    with caplog.at_level(logging.WARNING, logger="tasador"):
        bundle = load_bundle(bundle_copy)

    assert bundle.engine.name == "scikit-learn"
    (record,) = caplog.records
    assert "differs from scikit-learn" in record.getMessage()
    assert "serving with scikit-learn" in record.getMessage()


def test_engine_that_does_not_load_falls_back_to_sklearn(
    bundle_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _replace_artefact(bundle_copy, "forest.onnx", b"not an onnx model")

    with caplog.at_level(logging.WARNING, logger="tasador"):
        bundle = load_bundle(bundle_copy)

    assert bundle.engine.name == "scikit-learn"
    (record,) = caplog.records
    assert "forest.onnx unusable" in record.getMessage()
    assert "\n" not in record.getMessage()


def test_operator_can_force_sklearn(client_factory: ClientFactory) -> None:
    with client_factory(engine="scikit-learn") as client:
        assert client.get("/modelo").json()["engine"] == "scikit-learn"
