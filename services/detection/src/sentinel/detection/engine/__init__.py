"""The pure streaming scoring engine (no gRPC, protobuf, Redis or asyncio)."""

from sentinel.detection.engine.config import EngineConfig
from sentinel.detection.engine.scorer import ScoreBatch, StreamingScorer, rounds_of
from sentinel.detection.engine.state import EngineState
from sentinel.detection.engine.types import (
    DETECTOR_NAMES,
    AnomalyKind,
    AnomalyType,
    Detector,
    Severity,
    anomaly_type_for,
    kind_for,
)

__all__ = [
    "DETECTOR_NAMES",
    "AnomalyKind",
    "AnomalyType",
    "Detector",
    "EngineConfig",
    "EngineState",
    "ScoreBatch",
    "Severity",
    "StreamingScorer",
    "anomaly_type_for",
    "kind_for",
    "rounds_of",
]
