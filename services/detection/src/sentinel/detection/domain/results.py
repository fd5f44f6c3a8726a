"""Scoring results as the service returns them: columns aligned with the request's points."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentinel.detection.domain.episodes import Episode
from sentinel.detection.engine import AnomalyType, Detector, Severity, anomaly_type_for

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
I8Array = npt.NDArray[np.int8]


@dataclass(frozen=True)
class Scores:
    """Engine output for some points, in their order (a slice of one kernel call)."""

    score: FloatArray
    is_anomaly: BoolArray
    severity: I8Array
    detector: I8Array
    direction: I8Array
    baseline: FloatArray
    contributions: FloatArray  # (n, n_detectors)

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class ScoreOutcome:
    """The answer to one ScoreSamples request.

    Per-point columns are aligned with the request; skipped points hold NaN score and baseline,
    is_anomaly false, severity and anomaly_type 0.
    """

    batch_id: str
    score: FloatArray
    is_anomaly: BoolArray
    severity: I8Array
    anomaly_type: I8Array
    baseline: FloatArray
    contributions: FloatArray | None
    threshold: float
    weights: tuple[float, ...]
    skipped_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reported_anomaly_count: int = 0


@dataclass(frozen=True)
class SeriesOutcome:
    """The answer to ScoreSeries: columns plus the episodes found."""

    outcome: ScoreOutcome
    episodes: tuple[Episode, ...]


@functools.lru_cache(maxsize=4096)
def anomaly_type_of(metric: str, direction: int, detector: int) -> int:
    """The anomaly type (proto value) of an anomalous point of `metric` (cached)."""
    return int(anomaly_type_for(metric, direction, Detector(detector)))


def anomaly_types(
    metrics: Sequence[str],
    series_index: IntArray,
    is_anomaly: BoolArray,
    direction: I8Array,
    detector: I8Array,
) -> I8Array:
    """Per point: the anomaly type of anomalous points (by metric name), 0 elsewhere.

    Python work happens only for anomalous points, which are rare.
    """
    out = np.zeros(len(is_anomaly), dtype=np.int8)
    for i in np.flatnonzero(is_anomaly).tolist():
        out[i] = anomaly_type_of(metrics[int(series_index[i])], int(direction[i]), int(detector[i]))
    return out


def visible_severity(severity: I8Array, is_anomaly: BoolArray) -> I8Array:
    """Severity as the contract shows it: UNSPECIFIED unless the point is anomalous."""
    return np.where(is_anomaly, severity, np.int8(Severity.UNSPECIFIED)).astype(np.int8)


UNSPECIFIED_TYPE = int(AnomalyType.UNSPECIFIED)
