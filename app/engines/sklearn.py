"""The fitted scikit-learn estimator itself: the reference every other engine must match,
and the fallback when no compiled engine reproduces it."""

import io
import pickle
import warnings
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from app.bundle import MODEL_FILE
from app.bundle.versions import installed, minor
from app.engines import EngineName, EngineSpec, EngineUnusableError
from app.schemas.manifest import Versions

NAME: EngineName = "scikit-learn"


class SklearnEngine:
    """Predicts with the estimator's own ``predict``."""

    name = NAME

    def __init__(self, estimator: Any) -> None:
        # One thread: a single request gains nothing from joblib's pool, and replicas
        # scale out by process, not by threads inside one predict.
        if hasattr(estimator, "n_jobs"):
            estimator.n_jobs = 1
        self.estimator = estimator

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        return np.asarray(self.estimator.predict(x), dtype=np.float64)


# The only classes a forest's pickle may name: anything else (os.system, eval, ...) is
# refused before it can run. Found by disassembling model.pkl (pickletools).
ALLOWED_GLOBALS = frozenset(
    {
        ("sklearn.ensemble._forest", "RandomForestRegressor"),
        ("sklearn.tree._classes", "DecisionTreeRegressor"),
        ("sklearn.tree._tree", "Tree"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
    }
)


def unpickle(data: bytes) -> Any:
    """The forest a joblib pickle holds, unpickled with ``ALLOWED_GLOBALS`` only;
    ``EngineUnusableError`` when it cannot be loaded."""
    # Imported here: they cost start-up time and are needed only for this engine.
    from joblib.numpy_pickle import NumpyUnpickler
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    class RestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
        # joblib's unpickler is pickle's pure-Python one: every way a pickle names a
        # class goes through find_class.
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in ALLOWED_GLOBALS:
                raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
            return super().find_class(module, name)

    # scikit-learn warns (InconsistentVersionWarning) when unpickling across versions;
    # a warning is not enough here, it is a reason to refuse.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            with _validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (stream, _):
                return RestrictedUnpickler("", stream, ensure_native_byte_order=True).load()
        except Exception as exc:  # unpickling can raise anything; all mean "unusable"
            raise EngineUnusableError(f"cannot be loaded: {type(exc).__name__}: {exc}") from None


def check_trees(estimator: Any, n_features: int) -> None:
    """Refuse trees whose node arrays scikit-learn would follow out of bounds.

    scikit-learn does not check a loaded tree's arrays: a crafted child index crashes or
    hangs ``predict``, a feature index reads outside the row. It builds trees depth
    first, so every child comes after its parent; requiring that rules out cycles too."""
    for i, member in enumerate(getattr(estimator, "estimators_", [])):
        tree = member.tree_
        n = tree.node_count
        left, right, feature = tree.children_left, tree.children_right, tree.feature
        index = np.arange(n)
        leaf = left == -1
        split = ~leaf
        problems = {
            "node arrays disagree with the node count": not (
                len(left) == len(right) == len(feature) == tree.value.shape[0] == n >= 1
            ),
            "a node has one child": bool(np.any(leaf != (right == -1))),
            "a child is out of range or before its parent": any(
                bool(np.any((c[split] <= index[split]) | (c[split] >= n))) for c in (left, right)
            ),
            "a split names a feature out of range": bool(
                np.any((feature[split] < 0) | (feature[split] >= n_features))
            ),
        }
        reached = np.bincount(np.concatenate([left[split], right[split]]), minlength=n)
        problems["a node is shared or unreachable"] = bool(
            reached[0] != 0 or np.any(reached[1:] != 1)
        )
        for problem, found in problems.items():
            if found:
                raise EngineUnusableError(f"tree {i} is malformed: {problem}")


def build(data: bytes, n_features: int) -> SklearnEngine:
    """The estimator pickled in ``data``, checked to take ``n_features`` columns."""
    estimator = unpickle(data)
    if not hasattr(estimator, "predict"):
        raise EngineUnusableError(f"holds a {type(estimator).__name__}, not a model")
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != n_features:
        raise EngineUnusableError(f"expects {n_in} features but the manifest lists {n_features}")
    check_trees(estimator, n_features)
    return SklearnEngine(estimator)


def unsupported(trained: Versions) -> str | None:
    """Why this scikit-learn cannot unpickle what was trained: it is not installed (the
    serving image leaves it out), or it is another minor release."""
    now = installed("scikit-learn")
    if now is None:
        return (
            f"needs scikit-learn {minor(trained.scikit_learn)}.*, which is not installed "
            "(install tasador[sklearn], or use the image built with it)"
        )
    if minor(now) != minor(trained.scikit_learn):
        return (
            f"was trained with scikit-learn {trained.scikit_learn} but {now} is installed; "
            f"retrain the bundle or install scikit-learn {minor(trained.scikit_learn)}.*"
        )
    return None


def damaged(data: bytes) -> str | None:
    """Why ``data`` cannot be the joblib pickle training writes, found without unpickling
    it (which takes seconds for a forest): compressed (zlib, as training writes it), it must
    decompress whole, and zlib's checksum catches any byte changed or missing; either way,
    the pickle must start and end as pickles do."""
    if data[:1] == _ZLIB:
        inflate = zlib.decompressobj()
        first, last, view = b"", b"", memoryview(data)
        try:
            for start in range(0, len(data), _CHUNK):  # a bounded piece at a time
                out = inflate.decompress(view[start : start + _CHUNK])
                first, last = first or out[:1], (last + out)[-1:]
        except zlib.error as exc:
            return f"is damaged: its compressed stream is corrupt ({exc})"
        if not inflate.eof or inflate.unused_data:
            return "is damaged: its compressed stream is cut short or followed by other bytes"
    else:
        first, last = data[:1], data[-1:]
    if first != _PROTO or last != _STOP:
        return "is not a joblib pickle (as tasador train writes it): damaged or replaced"
    return None


_ZLIB, _PROTO, _STOP = b"\x78", pickle.PROTO, pickle.STOP
_CHUNK = 1 << 16

SPEC = EngineSpec(
    name=NAME,
    artefact=MODEL_FILE,
    tolerance=1e-9,
    build=build,
    unsupported=unsupported,
    damaged=damaged,
)
