"""Predictions: features from candles, walk-forward baselines, ONNX models, batching."""

from cryptopulse.ml.batcher import BatchFailed, MicroBatcher, Overloaded
from cryptopulse.ml.features import FEATURE_SET, FEATURES, FeatureState, feature_matrix
from cryptopulse.ml.models import InvalidModel, OnnxModel
from cryptopulse.ml.service import NoPrediction, Prediction, PredictionService

__all__ = [
    "FEATURES",
    "FEATURE_SET",
    "BatchFailed",
    "FeatureState",
    "InvalidModel",
    "MicroBatcher",
    "NoPrediction",
    "OnnxModel",
    "Overloaded",
    "Prediction",
    "PredictionService",
    "feature_matrix",
]
