"""Bring-your-own ONNX models: the contract, checked when loaded."""

from __future__ import annotations

import numpy as np
import pytest

from cryptopulse.ml.features import FEATURES
from cryptopulse.ml.models import InvalidModel, OnnxModel

from .factories import logistic_onnx


def rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, len(FEATURES))).astype(np.float32)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_a_subset_of_features_in_its_order() -> None:
    model = OnnxModel(logistic_onnx([2.0, -1.0], 0.25), ["rsi", "ret_1"])
    x = rows(5)
    want = sigmoid(2 * x[:, FEATURES.index("rsi")] - x[:, FEATURES.index("ret_1")] + 0.25)
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-6)


def test_two_column_output_means_down_up() -> None:
    model = OnnxModel(logistic_onnx([1.0], 0.0, two_columns=True, output="probs"), ["ret_3"])
    x = rows(4)
    np.testing.assert_allclose(model.predict(x), sigmoid(x[:, FEATURES.index("ret_3")]),
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize(
    ("onnx", "features", "message"),
    [
        (b"not onnx at all", ["rsi"], "not a loadable"),
        (logistic_onnx([1.0, 1.0], 0.0), ["rsi"], "input must be"),
        (logistic_onnx([1.0], 0.0), ["no_such_feature"], "unknown features"),
        (logistic_onnx([1.0, 1.0], 0.0), ["rsi", "rsi"], "named twice"),
        (logistic_onnx([1.0], 0.0), [], "no features"),
    ],
)
def test_models_that_break_the_contract_are_refused(
    onnx: bytes, features: list[str], message: str
) -> None:
    with pytest.raises(InvalidModel, match=message):
        OnnxModel(onnx, features)


def test_an_output_that_is_not_a_probability_is_refused() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "ten"], ["probability"])],
        "scores",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        initializer=[helper.make_tensor("ten", TensorProto.FLOAT, [1], [10.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(InvalidModel, match="probabilities"):
        OnnxModel(model.SerializeToString(), ["rsi"])
