"""Compiles a fitted scikit-learn forest into an ONNX graph the service runs instead.

The graph is a single ``ai.onnx.ml`` opset-5 ``TreeEnsemble`` node with float64
thresholds and leaf values, averaged over trees. Fed inputs rounded to float32 (as
scikit-learn rounds them before walking its trees), ONNX Runtime then gives the same
answers as scikit-learn bit for bit. An unknown value (NaN) follows the branch scikit-learn
learnt for it at each split (``missing_go_to_left``), through the node's
``nodes_missing_value_tracks_true``. skl2onnx was measured and not used: its float32
export differs from scikit-learn by up to ~1e-6 relative, and its float64 export
(``TreeEnsembleRegressor`` with double output) does not load in ONNX Runtime 1.32.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET_ML = 5
OPSET_DEFAULT = 21
IR_VERSION = 10  # what ONNX Runtime >= 1.20 reads
AGGREGATE_AVERAGE = 0
AGGREGATE_SUM = 1
BRANCH_LEQ = 0  # scikit-learn goes left when x <= threshold
INPUT, OUTPUT = "X", "Y"


@dataclass
class _Trees:
    """A forest's trees laid out as one ensemble: interior nodes and leaves numbered
    across all trees, each tree's leaves in node order (the order of ``leaf_values``)."""

    features: np.ndarray
    splits: np.ndarray
    true_ids: np.ndarray
    true_leaf: np.ndarray
    false_ids: np.ndarray
    false_leaf: np.ndarray
    missing_true: np.ndarray  # 1 where NaN goes left (the true branch)
    roots: list[int]
    leaf_values: np.ndarray  # each leaf's value (its tree's prediction there)
    leaf_tree: np.ndarray  # each leaf's tree index


def _trees(forest: Any) -> _Trees:
    if getattr(forest, "n_outputs_", 1) != 1:
        raise ValueError("only single-target forests can be compiled")
    features: list[np.ndarray] = []
    splits: list[np.ndarray] = []
    true_ids: list[np.ndarray] = []
    true_leaf: list[np.ndarray] = []
    false_ids: list[np.ndarray] = []
    false_leaf: list[np.ndarray] = []
    missing_true: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    roots: list[int] = []
    n_interior = n_leaves = 0
    for index, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        left, right = tree.children_left, tree.children_right
        is_leaf = left == -1
        interior = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        if len(interior) == 0:
            # A one-leaf tree: a dummy split whose both branches reach that leaf.
            interior = np.array([0])
            left, right = np.array([0]), np.array([0])
        # Positions of this tree's nodes in the ensemble-wide interior and leaf arrays.
        position = np.empty(tree.node_count, dtype=np.int64)
        position[interior] = n_interior + np.arange(len(interior))
        position[leaves] = n_leaves + np.arange(len(leaves))
        roots.append(n_interior)
        features.append(np.maximum(tree.feature[interior], 0))
        missing_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, np.uint8))
        missing_true.append(np.asarray(missing_left)[interior].astype(np.int64))
        splits.append(tree.threshold[interior])
        for children, ids, leaf in ((left, true_ids, true_leaf), (right, false_ids, false_leaf)):
            child = children[interior]
            ids.append(position[child])
            leaf.append(is_leaf[child].astype(np.int64))
        weights.append(tree.value[leaves, 0, 0])
        owners.append(np.full(len(leaves), index, dtype=np.int64))
        n_interior += len(interior)
        n_leaves += len(leaves)
    return _Trees(
        np.concatenate(features),
        np.concatenate(splits),
        np.concatenate(true_ids),
        np.concatenate(true_leaf),
        np.concatenate(false_ids),
        np.concatenate(false_leaf),
        np.concatenate(missing_true),
        roots,
        np.concatenate(weights),
        np.concatenate(owners),
    )


def forest_to_onnx(forest: Any, n_features: int) -> bytes:
    """The serialised ONNX model of a fitted ``RandomForestRegressor`` (one target): the
    average of its trees' predictions."""
    trees = _trees(forest)
    n_leaves = len(trees.leaf_values)
    return _model(trees, n_features, AGGREGATE_AVERAGE, 1, [0] * n_leaves, trees.leaf_values)


def forest_to_leaf_onnx(forest: Any, n_features: int) -> bytes:
    """An ONNX model answering, for each tree (one output column per tree), the index of
    the leaf a row reaches, in the order of ``leaf_contributions``' rows."""
    trees = _trees(forest)
    leaf_ids = np.arange(len(trees.leaf_values), dtype=np.float64)  # exact in float64
    return _model(
        trees,
        n_features,
        AGGREGATE_SUM,
        len(trees.roots),
        [int(t) for t in trees.leaf_tree],
        leaf_ids,
    )


def leaf_contributions(forest: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf (``forest_to_leaf_onnx`` order), the Saabas contribution of each feature:
    the moves in expected price of the splits on it, from the root to that leaf; and the
    value of each tree's root. ``root + Σ contributions = leaf value`` in every tree."""
    tables: list[np.ndarray] = []
    roots = np.empty(len(forest.estimators_))
    for index, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        left, right, feature = tree.children_left, tree.children_right, tree.feature
        value = tree.value[:, 0, 0]
        roots[index] = value[0]
        table = np.zeros((tree.node_count, n_features))
        # scikit-learn numbers nodes depth first: a parent comes before its children.
        for node in np.flatnonzero(left != -1):
            for child in (left[node], right[node]):
                table[child] = table[node]
                table[child, feature[node]] += value[child] - value[node]
        tables.append(table[left == -1])
    return np.vstack(tables), roots


def _model(
    trees: _Trees,
    n_features: int,
    aggregate: int,
    n_targets: int,
    leaf_targets: list[int],
    leaf_weights: np.ndarray,
) -> bytes:
    def ints(values: np.ndarray) -> list[int]:
        return [int(v) for v in values]

    n_interior = len(trees.splits)
    node = helper.make_node(
        "TreeEnsemble",
        [INPUT],
        [OUTPUT],
        domain="ai.onnx.ml",
        aggregate_function=aggregate,
        n_targets=n_targets,
        post_transform=0,
        tree_roots=trees.roots,
        nodes_featureids=ints(trees.features),
        nodes_splits=numpy_helper.from_array(trees.splits.astype(np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(n_interior, BRANCH_LEQ, dtype=np.uint8)),
        nodes_truenodeids=ints(trees.true_ids),
        nodes_trueleafs=ints(trees.true_leaf),
        nodes_falsenodeids=ints(trees.false_ids),
        nodes_falseleafs=ints(trees.false_leaf),
        nodes_missing_value_tracks_true=ints(trees.missing_true),
        leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(leaf_weights.astype(np.float64)),
    )
    graph = helper.make_graph(
        [node],
        "tasador_forest",
        [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, [None, n_features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, [None, n_targets])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", OPSET_DEFAULT),
            helper.make_opsetid("ai.onnx.ml", OPSET_ML),
        ],
        producer_name="tasador",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized
