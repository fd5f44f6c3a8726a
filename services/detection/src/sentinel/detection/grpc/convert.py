"""Protobuf <-> domain. Protobuf types stop here (and in the adapters that send them)."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2, detection_service_pb2
from sentinel.detection.domain.batch import OutOfOrder, ScoreRequest
from sentinel.detection.domain.detectors import DetectorInfo, DetectorKind
from sentinel.detection.domain.episodes import Episode
from sentinel.detection.domain.explain import explain
from sentinel.detection.domain.results import ScoreOutcome, SeriesOutcome
from sentinel.detection.domain.series import SeriesKey, validate_series_key
from sentinel.detection.engine import DETECTOR_NAMES, EngineConfig
from sentinel.detection.service import Explanation, SeriesStateView
from sentinel.runtime.errors import InvalidArgumentError
from sentinel.runtime.wire import length_delimited, varint

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


def _field_size(payload_len: int) -> int:
    """Bytes of a length-delimited field with a one-byte tag (0 when empty: proto3 omits it)."""
    return 1 + len(varint(payload_len)) + payload_len if payload_len else 0


def _split_entries(region: bytes, tag: int) -> list[bytes] | None:
    """The payloads of consecutive length-delimited fields `tag`, or None if `region` is not that."""
    out: list[bytes] = []
    pos, end = 0, len(region)
    while pos < end:
        if region[pos] != tag:
            return None
        pos += 1
        length = shift = 0
        while True:
            if pos >= end:
                return None
            byte = region[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        out.append(region[pos : pos + length])
        pos += length
    return out if pos == end else None


class SeriesKeyCache:
    """Series keys by the wire bytes of their SeriesKey message, validated once.

    Turning a SeriesKey message into the domain key (label map, sort) and validating it cost more
    per series than scoring its points; callers send the same series again and again, so the
    message bytes identify a key already built (equal bytes are an equal key; a key whose bytes
    differ, e.g. labels in another order, is only a miss). A whole series table is cached too, by
    the bytes of its run of SeriesKey fields, so a repeated table costs one dict lookup.

    Args:
        max_keys: keys remembered (the oldest dropped first).
        max_tables: whole tables remembered (least recently used dropped first).
        max_table_bytes: wire bytes of all remembered tables together (bounds memory when tables
            are large); a table larger than this is never remembered whole.
    """

    def __init__(
        self, *, max_keys: int = 200_000, max_tables: int = 256, max_table_bytes: int = 16 << 20
    ) -> None:
        self.max_keys = max_keys
        self.max_tables = max_tables
        self.max_table_bytes = max_table_bytes
        self._keys: dict[bytes, tuple[SeriesKey, bool]] = {}
        self._tables: OrderedDict[bytes, tuple[tuple[SeriesKey, ...], bool]] = OrderedDict()
        self._table_bytes = 0

    def table(self, batch: common_pb2.SampleBatch) -> tuple[tuple[SeriesKey, ...], bool]:
        """The batch's series table and whether every key in it is valid."""
        messages = batch.series
        if not messages:
            return (), True
        region = self._region(batch)
        if region is None:
            return self._build(messages, None)
        known = self._tables.get(region)
        if known is not None and len(known[0]) == len(messages):
            self._tables.move_to_end(region)
            return known
        entries = _split_entries(region, 0x12)
        if entries is None or len(entries) != len(messages):
            return self._build(messages, None)
        table = self._build(messages, entries)
        if len(region) <= self.max_table_bytes:
            self._tables[region] = table
            self._table_bytes += len(region)
            while len(self._tables) > self.max_tables or self._table_bytes > self.max_table_bytes:
                self._table_bytes -= len(self._tables.popitem(last=False)[0])
        return table

    def _build(
        self, messages: Sequence[common_pb2.SeriesKey], entries: list[bytes] | None
    ) -> tuple[tuple[SeriesKey, ...], bool]:
        keys: list[SeriesKey] = []
        all_valid = True
        cache = self._keys
        for i, message in enumerate(messages):
            wire = entries[i] if entries is not None else message.SerializeToString()
            known = cache.get(wire)
            if known is None:
                key = series_key(message)
                try:
                    validate_series_key(key, "series")
                    known = (key, True)
                except InvalidArgumentError:
                    known = (key, False)  # validate_request reports it, naming the field
                if len(cache) >= self.max_keys:
                    del cache[next(iter(cache))]
                cache[wire] = known
            keys.append(known[0])
            all_valid = all_valid and known[1]
        return tuple(keys), all_valid

    @staticmethod
    def _region(batch: common_pb2.SampleBatch) -> bytes | None:
        """The bytes of the batch's run of `series` fields, cut out of its serialisation.

        Known fields serialise in field-number order (unknown ones after them), so the run sits
        between `batch_id` (field 1) and the packed columns (fields 3-5), whose sizes follow from
        their lengths. Anything unexpected returns None (the per-key path).
        """
        data = batch.SerializeToString()
        head = _field_size(len(batch.batch_id.encode("utf-8")))
        n_index, n_time, n_value = len(batch.series_index), len(batch.time_unix_nano), len(batch.value)
        tail = _field_size(4 * n_index) + _field_size(8 * n_time) + _field_size(8 * n_value)
        end = len(data) - tail
        if end <= head or data[head] != 0x12:
            return None
        if tail:
            first_tag = 0x1A if n_index else 0x22 if n_time else 0x2A
            if data[end] != first_tag:
                return None
        return data[head:end]


_KEYS = SeriesKeyCache()


def score_request(request: ScoreCall, keys: SeriesKeyCache | None = None) -> ScoreRequest:
    """A ScoreSamples (or stream) request as the domain sees it (keys from `keys`, or a shared cache)."""
    policy = _POLICIES.get(request.out_of_order_policy)
    if policy is None:
        raise InvalidArgumentError("out_of_order_policy", f"unknown value {request.out_of_order_policy}")
    batch = request.batch
    series, keys_valid = (keys or _KEYS).table(batch)
    return ScoreRequest(
        batch_id=batch.batch_id,
        series=series,
        series_index=np.array(batch.series_index, dtype=np.int64),
        time_unix_nano=np.array(batch.time_unix_nano, dtype=np.int64),
        value=np.array(batch.value, dtype=np.float64),
        out_of_order=policy,
        report_anomalies=request.report_anomalies,
        include_detector_scores=request.include_detector_scores,
        keys_valid=keys_valid,
    )


def _packed(field: int, data: bytes) -> bytes:
    return length_delimited(field, data) if data else b""


def _small_enums(values: npt.NDArray[np.int8]) -> bytes | None:
    """Packed varints of values in 0..127 (one byte each), or None if some value is outside."""
    if len(values) and (int(values.min()) < 0 or int(values.max()) > 127):
        return None
    return values.astype(np.uint8).tobytes()


def score_columns(outcome: ScoreOutcome) -> detection_pb2.ScoreColumns:
    """The score columns, built from the arrays' bytes.

    The per-point columns are packed fields whose wire form is the little-endian array itself
    (doubles; bools and small enums one byte each), so the message is parsed from those bytes in
    one call instead of appending one Python object per point.
    """
    severity = _small_enums(outcome.severity)
    types = _small_enums(outcome.anomaly_type)
    if severity is None or types is None:
        return _score_columns_slow(outcome)
    wire = b"".join(
        (
            _packed(1, outcome.score.astype("<f8", copy=False).tobytes()),
            _packed(2, outcome.is_anomaly.astype(np.uint8).tobytes()),
            _packed(3, severity),
            _packed(4, types),
            _packed(5, outcome.baseline.astype("<f8", copy=False).tobytes()),
        )
    )
    columns = detection_pb2.ScoreColumns.FromString(wire)
    columns.threshold = outcome.threshold
    if outcome.contributions is not None:
        contrib = np.ascontiguousarray(outcome.contributions.T, dtype="<f8")
        for d, name in enumerate(DETECTOR_NAMES):
            column = columns.detectors.add(detector=name, weight=outcome.weights[d])
            column.MergeFromString(_packed(2, contrib[d].tobytes()))
    return columns


def _score_columns_slow(outcome: ScoreOutcome) -> detection_pb2.ScoreColumns:
    """:func:`score_columns` one element at a time (enum values outside one varint byte)."""
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
