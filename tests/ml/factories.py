"""Plain factories for the ML tests: real candles from the shared files, small ONNX models."""

from __future__ import annotations

import math
import random
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from cryptopulse.domain.models import Candle
from cryptopulse.importer import read_candles

CANDLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "candles"
STEP = 300_000


def real_candles(symbol: str = "ETH", n: int | None = None) -> list[Candle]:
    """Closed 5m candles of `binance:<symbol>-BTC` from the shared files (the first `n`)."""
    path = CANDLES / f"{symbol}-BTC-5m.csv.gz"
    assert path.is_file(), f"shared candles not found at {path}"
    candles = list(read_candles(path, f"binance:{symbol}-BTC", "5m"))
    return candles[:n] if n is not None else candles


def walk_candles(n: int, seed: int = 1, instrument: str = "sim:AAA-USD") -> list[Candle]:
    """A driftless random walk: no model should find an edge in it."""
    rng = random.Random(seed)
    price, out = 100.0, []
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % STEP
    for i in range(n):
        start = price
        price *= math.exp(rng.gauss(0, 0.002))
        high, low = max(start, price) * 1.0005, min(start, price) * 0.9995
        volume = rng.uniform(5, 15)
        out.append(Candle(instrument, "5m", t0 + i * STEP, start, high, low, price, volume,
                          volume * price, 1, True))  # fmt: skip
    return out


def logistic_onnx(weights: list[float], bias: float, *, two_columns: bool = False,
                  output: str = "probability") -> bytes:  # fmt: skip
    """sigmoid(x @ weights + bias): float32 [N, k] -> [N, 1] (or [N, 2]: down, up)."""
    k = len(weights)
    w = helper.make_tensor("w", TensorProto.FLOAT, [k, 1], weights)
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [bias])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["z0"]),
        helper.make_node("Add", ["z0", "b"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["up" if two_columns else output]),
    ]
    if two_columns:
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        nodes += [
            helper.make_node("Sub", ["one", "up"], ["down"]),
            helper.make_node("Concat", ["down", "up"], [output], axis=1),
        ]
    inits = [w, b] + ([one] if two_columns else [])
    width = 2 if two_columns else 1
    graph = helper.make_graph(
        nodes,
        "logistic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def pairs_only_onnx(k: int) -> bytes:
    """Answers 0.5 per row but reshapes to [2, 1]: fine on the 2-row check, and an
    onnxruntime error on any batch that is not exactly 2 rows (a model that breaks)."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 1])
    half = helper.make_tensor("half", TensorProto.FLOAT, [1], [0.5])
    nodes = [
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["col"]),
        helper.make_node("Mul", ["col", "zero"], ["z"]),
        helper.make_node("Add", ["z", "half"], ["p0"]),
        helper.make_node("Reshape", ["p0", "shape"], ["probability"]),
    ]
    inits = [
        shape,
        half,
        helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        nodes,
        "pairs_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [2, 1])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()
