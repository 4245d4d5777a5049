"""Serving a registered model: ONNX bytes in, P(up) per feature row out.

Built-in baselines and user models are both ONNX, loaded here into an onnxruntime session
and called the same way. The contract for a model brought by a user (docs/models.md):
one float32 input of shape [N, k], k the number of features it was registered with (names
from `FEATURES`, in that order); an output that is either [N] or [N, 1] (the probability of
"up") or [N, 2] (probabilities of down and up). An output named ``probability`` or
``probabilities`` is preferred, else the first float output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cryptopulse.ml.features import FEATURES

__all__ = ["InvalidModel", "OnnxModel"]

_PREFERRED = ("probability", "probabilities")


class InvalidModel(ValueError):
    """The bytes are not an ONNX model that honours the contract above."""


def _columns(features: Sequence[str]) -> npt.NDArray[np.intp]:
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise InvalidModel(
            f"unknown features: {', '.join(unknown)}" if unknown else "no features given"
        )
    if len(set(features)) != len(features):
        raise InvalidModel("a feature is named twice")
    return np.asarray([FEATURES.index(f) for f in features], dtype=np.intp)


class OnnxModel:
    """An onnxruntime session over a model and the columns of its features.

    `predict` is thread-safe (onnxruntime sessions are) and releases the GIL while the
    graph runs, so it belongs in a worker thread, called with many rows at once.
    """

    def __init__(self, onnx: bytes, features: Sequence[str], threads: int = 1) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        self.features = tuple(features)
        self._columns = _columns(self.features)
        self._all = bool(np.array_equal(self._columns, np.arange(len(FEATURES))))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for bad bytes
            raise InvalidModel(f"not a loadable ONNX model: {exc}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            raise InvalidModel("the model needs exactly one float32 input [N, k]")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(self.features)):
            raise InvalidModel(f"the input must be [N, {len(self.features)}], not {shape}")
        self._input = inputs[0].name
        self._output = self._pick_output()
        self.check()

    def _pick_output(self) -> str:
        outputs = [o for o in self._session.get_outputs() if o.type == "tensor(float)"]
        if not outputs:
            raise InvalidModel("the model has no float32 output")
        for name in _PREFERRED:
            for output in outputs:
                if output.name == name:
                    return name
        return str(outputs[0].name)

    def check(self) -> None:
        """Run two zero rows: the output must be two probabilities."""
        try:
            out = self.predict(np.zeros((2, len(FEATURES)), dtype=np.float32))
        except InvalidModel:
            raise
        except Exception as exc:
            raise InvalidModel(f"the model failed on a test batch: {exc}") from None
        if out.shape != (2,) or not np.all((out >= 0.0) & (out <= 1.0)):
            raise InvalidModel("the output must be probabilities in [0, 1], one per row")

    def predict(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """P(up) for each row of `FEATURES`-ordered features, shape [N]."""
        x = rows if self._all else rows[:, self._columns]
        (out,) = self._session.run([self._output], {self._input: np.ascontiguousarray(x)})
        arr = np.asarray(out, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 2:
            arr = arr[:, 1]
        arr = arr.reshape(-1)
        if arr.shape[0] != rows.shape[0]:
            raise InvalidModel(f"{arr.shape[0]} outputs for {rows.shape[0]} rows")
        return arr
