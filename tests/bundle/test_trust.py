"""A bundle's files cannot run code, even when whoever planted them fixed the hashes."""

import io
import os
import pickle
from pathlib import Path

import joblib
import pytest

from app.bundle.loader import BundleError, load_bundle
from app.engines.sklearn import unpickle
from tests.helpers import rehash


class _Payload:
    """Pickles to a call of os.system that would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _plant(bundle: Path, name: str, content: bytes) -> None:
    """Replace a file and give the manifest its new hash, as an attacker would."""
    (bundle / name).write_bytes(content)
    rehash(bundle, name)


def test_encodings_that_would_run_code_are_refused(bundle_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _plant(bundle_copy, "encodings.pkl", pickle.dumps({"condicion": _Payload(marker)}))

    with pytest.raises(BundleError, match=r"encodings\.pkl cannot be loaded: it names "):
        load_bundle(bundle_copy)
    assert not marker.exists()


@pytest.mark.parametrize("engine", ["auto", "scikit-learn"])
def test_a_model_that_would_run_code_is_refused(
    bundle_copy: Path, tmp_path: Path, engine: str
) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    joblib.dump(_Payload(marker), buffer)
    _plant(bundle_copy, "model.pkl", buffer.getvalue())

    if engine == "auto":  # the compiled engine serves: the pickle is never opened
        assert load_bundle(bundle_copy).engine.name == "onnxruntime"
    else:
        with pytest.raises(BundleError, match=r"refusing to load posix\.system"):
            load_bundle(bundle_copy, "scikit-learn")
    assert not marker.exists()


def test_the_real_forest_loads_through_the_restricted_unpickler(tiny_bundle: Path) -> None:
    forest = unpickle((tiny_bundle / "model.pkl").read_bytes())

    assert type(forest).__name__ == "RandomForestRegressor"
    assert len(forest.estimators_) == 6


def test_a_forest_with_a_child_out_of_bounds_is_refused(bundle_copy: Path) -> None:
    # scikit-learn would follow it out of its arrays (a crash or a hang in predict).
    forest = joblib.load(bundle_copy / "model.pkl")
    state = forest.estimators_[2].tree_.__getstate__()
    state["nodes"]["left_child"][0] = 10**6
    forest.estimators_[2].tree_.__setstate__(state)
    buffer = io.BytesIO()
    joblib.dump(forest, buffer, compress=3)
    _plant(bundle_copy, "model.pkl", buffer.getvalue())

    with pytest.raises(BundleError, match="tree 2 is malformed: a child is out of range"):
        load_bundle(bundle_copy, "scikit-learn")
