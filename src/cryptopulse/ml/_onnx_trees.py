"""Export a fitted binary `HistGradientBoostingClassifier` as an ONNX graph.

The built-in model is stored and served as ONNX, like a model a user brings, so there is
one serving path and nothing is unpickled from the store. The graph is one
`ai.onnx.ml.TreeEnsembleRegressor` (the sum of the trees' leaf values plus the baseline
log-odds) followed by a `Sigmoid`: input ``features`` float32 [N, k], output
``probability`` float32 [N, 1], the probability of the positive class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = ["hgb_to_onnx"]

_ML_OPSET = 3
_OPSET = 17


def _floor32(value: float) -> float:
    """The largest float32 not above `value`: for float32 x, x <= t iff x <= floor32(t),
    so the exported splits send every float32 input where the float64 model does."""
    f = np.float32(value)
    if float(f) > value:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def _tree_attributes(predictors: list[Any]) -> dict[str, Any]:
    attrs: dict[str, list[Any]] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for tree_id, predictor in enumerate(predictors):
        for node_id, node in enumerate(predictor.nodes):
            leaf = bool(node["is_leaf"])
            if bool(node["is_categorical"]):
                raise ValueError("categorical splits are not supported")
            attrs["nodes_treeids"].append(tree_id)
            attrs["nodes_nodeids"].append(node_id)
            attrs["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
            attrs["nodes_values"].append(0.0 if leaf else _floor32(float(node["num_threshold"])))
            attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
            attrs["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
            attrs["nodes_missing_value_tracks_true"].append(int(bool(node["missing_go_to_left"])))
            if leaf:
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(node_id)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(float(node["value"]))
    return attrs


def hgb_to_onnx(model: Any, n_features: int) -> bytes:
    """The ONNX bytes of a fitted binary HistGradientBoostingClassifier."""
    if len(model.classes_) != 2:
        raise ValueError("only binary classifiers are exported")
    predictors = [iteration[0] for iteration in model._predictors]
    baseline = float(np.ravel(model._baseline_prediction)[0])
    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        ["features"],
        ["logit"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[baseline],
        **_tree_attributes(predictors),
    )
    sigmoid = helper.make_node("Sigmoid", ["logit"], ["probability"])
    graph = helper.make_graph(
        [ensemble, sigmoid],
        "cryptopulse_baseline",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="cryptopulse",
    )
    proto.ir_version = 8  # readable by any onnxruntime >= 1.10
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())
