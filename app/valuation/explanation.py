"""What drives a price: path-based (Saabas) contributions, exact and additive.

In one tree, the way from the root to the leaf a home reaches passes splits on features;
each split moves the expected price from its node's value to its child's. Adding, per
feature, those moves along the way and averaging over the trees gives contributions with
``base + Σ contributions = prediction`` exactly, where ``base`` is the forest's average
price (its roots'). Training stores each leaf's vector of contributions; serving needs the
leaf a home reaches in each tree, which a second compiled graph gives (``leaves.onnx``:
each tree's output is the index of its leaf). TreeSHAP is the better-known standard, but
costs tens of milliseconds per row for a forest this deep (README, Explanations).

This engine is built on the first request that asks for an explanation, not at start-up:
it holds a second ONNX Runtime session (~33 MB) most deployments never use.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.engines.onnx import OnnxEngine

LEAVES_FILE = "leaves.onnx"  # the leaf-index graph
CONTRIBUTIONS_FILE = "contributions.npz"  # per leaf: its contribution vector
GROUPS = {"ubicacion": ("latitud", "longitud")}  # features explained together
ROWS_PER_BLOCK = 256  # rows explained at once: (rows, trees, features) float64 at a time


@dataclass(frozen=True)
class Explanation:
    """Contributions of each feature (model order) for each row, and the base price."""

    base: float
    contributions: npt.NDArray[np.float64]  # (rows, features)


class Explainer:
    """Saabas contributions from the leaf-index graph and the per-leaf table."""

    def __init__(self, leaves_onnx: bytes, table: bytes, n_features: int) -> None:
        import io

        with np.load(io.BytesIO(table), allow_pickle=False) as arrays:
            self._contributions = arrays["contributions"].astype(np.float64)
            self._roots = arrays["roots"].astype(np.float64)
        if self._contributions.ndim != 2 or self._contributions.shape[1] != n_features:
            raise ValueError(
                f"{CONTRIBUTIONS_FILE} holds {self._contributions.shape} contributions "
                f"for {n_features} features"
            )
        self.base = float(np.cumsum(self._roots)[-1] / len(self._roots))
        self._leaves = OnnxEngine(leaves_onnx)

    def explain(self, x: npt.NDArray[np.float64]) -> Explanation:
        """The contributions for the rows of ``x`` (features in model order)."""
        leaf_ids = self._leaves.outputs(x).astype(np.intp)  # (rows, trees)
        if leaf_ids.shape[1] != len(self._roots):
            raise ValueError("the leaf graph and the table disagree on the number of trees")
        total = np.empty((len(leaf_ids), self._contributions.shape[1]))
        # By blocks of rows: the (rows, trees, features) gather of a whole 10,000-row batch
        # took ~70 MB at once (the reliability benchmark's detalle&explicar row).
        for start in range(0, len(leaf_ids), ROWS_PER_BLOCK):
            block = leaf_ids[start : start + ROWS_PER_BLOCK]
            total[start : start + len(block)] = self._contributions[block].sum(axis=1)
        return Explanation(self.base, total / len(self._roots))


class LazyExplainer:
    """Builds the ``Explainer`` on first use, once, and remembers why it could not."""

    def __init__(self, build: Callable[[], Explainer]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._explainer: Explainer | None = None
        self._error: str | None = None

    def get(self) -> Explainer:
        """The explainer; ``ExplanationsUnavailableError`` when it cannot be built."""
        if self._explainer is None and self._error is None:
            with self._lock:
                if self._explainer is None and self._error is None:
                    try:
                        self._explainer = self._build()
                    except ExplanationsUnavailableError as exc:
                        self._error = str(exc)
        if self._explainer is None:
            raise ExplanationsUnavailableError(self._error or "not built")
        return self._explainer


class ExplanationsUnavailableError(RuntimeError):
    """The bundle's explanation files cannot be used; the message says why, in one line."""
