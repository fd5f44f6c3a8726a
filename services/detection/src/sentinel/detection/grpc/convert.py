"""Protobuf <-> domain. Protobuf types stop here (and in the adapters that send them)."""

from __future__ import annotations

import math

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2, detection_service_pb2
from sentinel.detection.domain.batch import OutOfOrder, ScoreRequest
from sentinel.detection.domain.detectors import DetectorInfo, DetectorKind
from sentinel.detection.domain.episodes import Episode
from sentinel.detection.domain.explain import explain
from sentinel.detection.domain.results import ScoreOutcome, SeriesOutcome
from sentinel.detection.domain.series import SeriesKey
from sentinel.detection.engine import DETECTOR_NAMES, EngineConfig
from sentinel.detection.service import Explanation, SeriesStateView
from sentinel.runtime.errors import InvalidArgumentError

_POLICIES = {
    detection_pb2.OUT_OF_ORDER_POLICY_UNSPECIFIED: OutOfOrder.REJECT,
    detection_pb2.OUT_OF_ORDER_POLICY_REJECT: OutOfOrder.REJECT,
    detection_pb2.OUT_OF_ORDER_POLICY_SKIP: OutOfOrder.SKIP,
}

ScoreCall = detection_service_pb2.ScoreSamplesRequest | detection_service_pb2.StreamScoreSamplesRequest


def nanos(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos


def timestamp(unix_nano: int) -> Timestamp:
    return Timestamp(seconds=unix_nano // 1_000_000_000, nanos=unix_nano % 1_000_000_000)


def series_key(message: common_pb2.SeriesKey) -> SeriesKey:
    return SeriesKey.of(message.name, dict(message.labels))


def series_key_message(key: SeriesKey) -> common_pb2.SeriesKey:
    return common_pb2.SeriesKey(name=key.name, labels=key.label_map)


def score_request(request: ScoreCall) -> ScoreRequest:
    """A ScoreSamples (or stream) request as the domain sees it."""
    policy = _POLICIES.get(request.out_of_order_policy)
    if policy is None:
        raise InvalidArgumentError("out_of_order_policy", f"unknown value {request.out_of_order_policy}")
    batch = request.batch
    return ScoreRequest(
        batch_id=batch.batch_id,
        series=tuple(series_key(key) for key in batch.series),
        series_index=np.array(batch.series_index, dtype=np.int64),
        time_unix_nano=np.array(batch.time_unix_nano, dtype=np.int64),
        value=np.array(batch.value, dtype=np.float64),
        out_of_order=policy,
        report_anomalies=request.report_anomalies,
        include_detector_scores=request.include_detector_scores,
    )


def score_columns(outcome: ScoreOutcome) -> detection_pb2.ScoreColumns:
    columns = detection_pb2.ScoreColumns(
        score=outcome.score.tolist(),
        is_anomaly=outcome.is_anomaly.tolist(),
        severity=outcome.severity.tolist(),
        anomaly_type=outcome.anomaly_type.tolist(),
        baseline=outcome.baseline.tolist(),
        threshold=outcome.threshold,
    )
    if outcome.contributions is not None:
        columns.detectors.extend(
            detection_pb2.DetectorColumn(
                detector=name, score=outcome.contributions[:, d].tolist(), weight=outcome.weights[d]
            )
            for d, name in enumerate(DETECTOR_NAMES)
        )
    return columns


def score_response(outcome: ScoreOutcome) -> detection_service_pb2.ScoreSamplesResponse:
    return detection_service_pb2.ScoreSamplesResponse(
        batch_id=outcome.batch_id,
        scores=score_columns(outcome),
        skipped_index=outcome.skipped_index.tolist(),
        reported_anomaly_count=outcome.reported_anomaly_count,
    )


def stream_response(outcome: ScoreOutcome) -> detection_service_pb2.StreamScoreSamplesResponse:
    return detection_service_pb2.StreamScoreSamplesResponse(
        batch_id=outcome.batch_id,
        scores=score_columns(outcome),
        skipped_index=outcome.skipped_index.tolist(),
        reported_anomaly_count=outcome.reported_anomaly_count,
    )


def anomaly_message(
    episode: Episode, *, weights: tuple[float, ...], half_surprise: float, threshold: float
) -> common_pb2.Anomaly:
    """The contract's Anomaly for an episode (end_time unset while it is open)."""
    message = common_pb2.Anomaly(
        anomaly_id=episode.anomaly_id,
        series=series_key_message(episode.ref.key),
        start_time=timestamp(episode.start_unix_nano),
        peak_time=timestamp(episode.peak_unix_nano),
        value=episode.value,
        baseline=episode.baseline,
        score=episode.score,
        severity=episode.severity,  # type: ignore[arg-type]
        anomaly_type=episode.anomaly_type,  # type: ignore[arg-type]
        contributions=[
            common_pb2.DetectorContribution(
                detector=DETECTOR_NAMES[d],
                score=c,
                weight=weights[d],
                statistic=half_surprise * c / (1.0 - c) if c < 1.0 else math.inf,
            )
            for d, c in enumerate(episode.contributions)
        ],
        explanation=explain(
            metric=episode.ref.key.name,
            value=episode.value,
            baseline=episode.baseline,
            score=episode.score,
            threshold=threshold,
            severity=episode.severity,
            detector=episode.detector,
            direction=episode.direction,
        ),
        point_count=episode.point_count,
    )
    if episode.end_unix_nano is not None:
        message.end_time.CopyFrom(timestamp(episode.end_unix_nano))
    return message


def series_inputs(
    request: detection_service_pb2.ScoreSeriesRequest,
) -> tuple[SeriesKey | None, np.ndarray, np.ndarray, float | None]:
    key = series_key(request.series) if request.HasField("series") else None
    threshold = request.threshold if request.HasField("threshold") else None
    return (
        key,
        np.array(request.time_unix_nano, dtype=np.int64),
        np.array(request.value, dtype=np.float64),
        threshold,
    )


def series_response(
    outcome: SeriesOutcome, config: EngineConfig
) -> detection_service_pb2.ScoreSeriesResponse:
    return detection_service_pb2.ScoreSeriesResponse(
        scores=score_columns(outcome.outcome),
        anomalies=[
            anomaly_message(
                e,
                weights=outcome.outcome.weights,
                half_surprise=config.half_surprise,
                threshold=outcome.outcome.threshold,
            )
            for e in outcome.episodes
        ],
    )


def detector_kind(value: int) -> DetectorKind:
    try:
        return DetectorKind(value)
    except ValueError:
        raise InvalidArgumentError("kind", f"unknown value {value}") from None


def list_detectors_response(
    detectors: list[DetectorInfo], config: EngineConfig
) -> detection_service_pb2.ListDetectorsResponse:
    return detection_service_pb2.ListDetectorsResponse(
        detectors=[
            detection_pb2.Detector(
                name=d.name,
                description=d.description,
                kind=int(d.kind),  # type: ignore[arg-type]
                parameters=[
                    detection_pb2.Parameter(name=p.name, value=p.value, description=p.description)
                    for p in d.parameters
                ],
                weight=d.weight,
                threshold=d.threshold,
                warmup_points=d.warmup_points,
                anomaly_types=[int(t) for t in d.anomaly_types],  # type: ignore[misc]
            )
            for d in detectors
        ],
        threshold=config.threshold,
        warmup_points=config.warmup_points,
    )


def series_state_response(view: SeriesStateView) -> detection_service_pb2.GetSeriesStateResponse:
    response = detection_service_pb2.GetSeriesStateResponse(
        series=series_key_message(view.key),
        sample_count=view.sample_count,
        last_sample_time=timestamp(view.last_sample_unix_nano),
        last_value=view.last_value,
        baseline=view.baseline,
        last_score=view.last_score,
        warming_up=view.warming_up,
        window_points=view.window_points,
        detectors=[
            detection_pb2.DetectorState(detector=d.detector, values=d.values, last_score=d.last_score)
            for d in view.detectors
        ],
    )
    if view.checkpoint_unix_nano:
        response.checkpoint_time.CopyFrom(timestamp(view.checkpoint_unix_nano))
    return response


def explain_response(explanation: Explanation) -> detection_service_pb2.ExplainScoreResponse:
    p = explanation.point
    return detection_service_pb2.ExplainScoreResponse(
        series=series_key_message(explanation.key),
        sample_time=timestamp(p.time_unix_nano),
        value=p.value,
        baseline=p.baseline,
        score=p.score,
        is_anomaly=explanation.is_anomaly,
        severity=explanation.severity,  # type: ignore[arg-type]
        anomaly_type=explanation.anomaly_type,  # type: ignore[arg-type]
        threshold=explanation.threshold,
        contributions=[
            common_pb2.DetectorContribution(detector=name, score=score, weight=weight, statistic=stat)
            for name, score, weight, stat in explanation.contributions
        ],
        explanation=explanation.text,
    )
