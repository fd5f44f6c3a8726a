"""Multivariate episodes as the contract's Anomaly (metric `llm.multivariate`)."""

from __future__ import annotations

import math

from google.protobuf.timestamp_pb2 import Timestamp

from sentinel.api.common.v1 import common_pb2
from sentinel.detection.domain.multivariate import DETECTORS, MultivariateAnomaly


def _timestamp(unix_nano: int) -> Timestamp:
    return Timestamp(seconds=unix_nano // 1_000_000_000, nanos=unix_nano % 1_000_000_000)


def multivariate_anomaly_message(change: MultivariateAnomaly, *, threshold: float) -> common_pb2.Anomaly:
    """The Anomaly of a multivariate episode, as of its peak bucket.

    `value` and `baseline` are those of the most deviating feature (named in the explanation);
    each detector's contribution carries its own calibrated score, its weight in the Cauchy
    combination and, as statistic, its surprise -log10 p.
    """
    peak = change.peak
    top = peak.top_feature
    message = common_pb2.Anomaly(
        anomaly_id=change.anomaly_id,
        series=common_pb2.SeriesKey(name=change.group.key.name, labels=dict(change.group.labels)),
        start_time=_timestamp(change.start_unix_nano),
        peak_time=_timestamp(peak.start_unix_nano),
        value=peak.values[top] if not math.isnan(peak.values[top]) else 0.0,
        baseline=peak.baselines[top] if not math.isnan(peak.baselines[top]) else 0.0,
        score=peak.score,
        severity=peak.severity,  # type: ignore[arg-type]
        anomaly_type=peak.anomaly_type,  # type: ignore[arg-type]
        contributions=[
            common_pb2.DetectorContribution(
                detector=name, score=score, weight=1.0 / len(DETECTORS), statistic=-math.log10(p)
            )
            for name, score, p in zip(DETECTORS, peak.detector_scores, peak.detector_p, strict=True)
        ],
        explanation=peak.explanation,
        point_count=change.point_count,
    )
    if change.end_unix_nano is not None:
        message.end_time.CopyFrom(_timestamp(change.end_unix_nano))
    return message
