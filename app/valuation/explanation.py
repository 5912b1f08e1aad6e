"""What drives a price: path-based (Saabas) contributions, exact and additive.

In one tree, the way from the root to the leaf a home reaches passes splits on features;
each split moves the expected price from its node's value to its child's. Adding, per
feature, those moves along the way and averaging over the trees gives contributions with
``base + Σ contributions = prediction`` exactly, where ``base`` is the forest's average
price (its roots'). Training stores each leaf's vector of contributions; serving needs the
leaf a home reaches in each tree, which a second compiled graph gives (``leaves.onnx``:
each tree's output is the index of its leaf). TreeSHAP is the better-known standard, but
costs tens of milliseconds per row for a forest this deep (README, Explanations).

A forest fitted on log prices gives contributions in log price, which add up to the log
of the price. Each home's are turned into euros in proportion to their share of the move
from the base (``exp(base)``) to the price, which keeps ``base + Σ contributions = price``
exact and each feature's sign and relative weight. An unknown field's contribution is what
not knowing it did to the price: the splits on it sent the home the way training homes
without that value went.

This engine is built on the first request that asks for an explanation, not at start-up:
it holds a second ONNX Runtime session (~33 MB) most deployments never use.
"""

import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.engines.onnx import OnnxEngine
from app.features import LOCATION, LOCATION_FIELDS

LEAVES_FILE = "leaves.onnx"  # the leaf-index graph
CONTRIBUTIONS_FILE = "contributions.npz"  # per leaf: its contribution vector
# Features explained together: the coordinates and every column computed from them.
GROUPS = {"ubicacion": LOCATION_FIELDS + tuple(f.name for f in LOCATION)}
ROWS_PER_BLOCK = 256  # rows explained at once: (rows, trees, features) float64 at a time


@dataclass(frozen=True)
class Explanation:
    """Contributions of each feature (model order) for each row, and the base price."""

    base: float
    contributions: npt.NDArray[np.float64]  # (rows, features)


class LeafTable:
    """Each leaf's contribution vector and each tree's root: what turns the leaves a home
    reaches into its explanation, in euros."""

    def __init__(
        self,
        contributions: npt.NDArray[np.float64],
        roots: npt.NDArray[np.float64],
        log_price: bool,
    ) -> None:
        self._contributions = contributions
        self._roots = roots
        self._log_price = log_price
        self._base = float(np.cumsum(roots)[-1] / len(roots))
        self.base = math.exp(self._base) if log_price else self._base
        self.trees = len(roots)

    @classmethod
    def load(cls, table: bytes, n_features: int, log_price: bool) -> "LeafTable":
        """The table in ``contributions.npz``'s bytes, checked for ``n_features``."""
        with np.load(io.BytesIO(table), allow_pickle=False) as arrays:
            contributions = arrays["contributions"].astype(np.float64)
            roots = arrays["roots"].astype(np.float64)
        if contributions.ndim != 2 or contributions.shape[1] != n_features:
            raise ValueError(
                f"{CONTRIBUTIONS_FILE} holds {contributions.shape} contributions "
                f"for {n_features} features"
            )
        return cls(contributions, roots, log_price)

    def explain(self, leaf_ids: npt.NDArray[np.intp]) -> Explanation:
        """The contributions for rows that reach ``leaf_ids`` (rows, trees)."""
        if leaf_ids.shape[1] != self.trees:
            raise ValueError("the leaf graph and the table disagree on the number of trees")
        total = np.empty((len(leaf_ids), self._contributions.shape[1]))
        # By blocks of rows: the (rows, trees, features) gather of a whole 10,000-row batch
        # at once took ~70 MB.
        for start in range(0, len(leaf_ids), ROWS_PER_BLOCK):
            block = leaf_ids[start : start + ROWS_PER_BLOCK]
            total[start : start + len(block)] = self._contributions[block].sum(axis=1)
        total /= self.trees
        if self._log_price:
            moved = total.sum(axis=1)
            price = np.exp(self._base + moved)
            safe = np.where(moved == 0, 1.0, moved)
            # Where the log contributions cancel out, their first-order size in euros.
            total *= np.where(moved == 0, self.base, (price - self.base) / safe)[:, None]
        return Explanation(self.base, total)


class Explainer:
    """Saabas contributions from the leaf-index graph and the per-leaf table."""

    def __init__(
        self, leaves_onnx: bytes, table: bytes, n_features: int, log_price: bool = False
    ) -> None:
        self._table = LeafTable.load(table, n_features, log_price)
        self.base = self._table.base
        self._leaves = OnnxEngine(leaves_onnx)

    def explain(self, x: npt.NDArray[np.float64]) -> Explanation:
        """The contributions for the rows of ``x`` (features in model order)."""
        return self._table.explain(self._leaves.outputs(x).astype(np.intp))


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
