"""Compiles a fitted scikit-learn forest into an ONNX graph the service runs instead.

The graph is a single ``ai.onnx.ml`` opset-5 ``TreeEnsemble`` node with float64
thresholds and leaf values, averaged over trees. Fed inputs rounded to float32 (as
scikit-learn rounds them before walking its trees), ONNX Runtime then gives the same
answers as scikit-learn bit for bit. skl2onnx was measured and not used: its float32
export differs from scikit-learn by up to ~1e-6 relative, and its float64 export
(``TreeEnsembleRegressor`` with double output) does not load in ONNX Runtime 1.32.
"""

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET_ML = 5
OPSET_DEFAULT = 21
IR_VERSION = 10  # what ONNX Runtime >= 1.20 reads
AGGREGATE_AVERAGE = 0
BRANCH_LEQ = 0  # scikit-learn goes left when x <= threshold
INPUT, OUTPUT = "X", "Y"


def forest_to_onnx(forest: Any, n_features: int) -> bytes:
    """The serialised ONNX model of a fitted ``RandomForestRegressor`` (one target)."""
    if getattr(forest, "n_outputs_", 1) != 1:
        raise ValueError("only single-target forests can be compiled")
    features: list[np.ndarray] = []
    splits: list[np.ndarray] = []
    true_ids: list[np.ndarray] = []
    true_leaf: list[np.ndarray] = []
    false_ids: list[np.ndarray] = []
    false_leaf: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    roots: list[int] = []
    n_interior = n_leaves = 0
    for estimator in forest.estimators_:
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
        splits.append(tree.threshold[interior])
        for children, ids, leaf in ((left, true_ids, true_leaf), (right, false_ids, false_leaf)):
            child = children[interior]
            ids.append(position[child])
            leaf.append(is_leaf[child].astype(np.int64))
        weights.append(tree.value[leaves, 0, 0])
        n_interior += len(interior)
        n_leaves += len(leaves)

    def ints(parts: list[np.ndarray]) -> list[int]:
        return [int(v) for v in np.concatenate(parts)]

    node = helper.make_node(
        "TreeEnsemble",
        [INPUT],
        [OUTPUT],
        domain="ai.onnx.ml",
        aggregate_function=AGGREGATE_AVERAGE,
        n_targets=1,
        post_transform=0,
        tree_roots=roots,
        nodes_featureids=ints(features),
        nodes_splits=numpy_helper.from_array(np.concatenate(splits).astype(np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(n_interior, BRANCH_LEQ, dtype=np.uint8)),
        nodes_truenodeids=ints(true_ids),
        nodes_trueleafs=ints(true_leaf),
        nodes_falsenodeids=ints(false_ids),
        nodes_falseleafs=ints(false_leaf),
        leaf_targetids=[0] * n_leaves,
        leaf_weights=numpy_helper.from_array(np.concatenate(weights).astype(np.float64)),
    )
    graph = helper.make_graph(
        [node],
        "tasador_forest",
        [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, [None, n_features])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, [None, 1])],
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
