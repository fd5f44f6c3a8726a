"""Protobuf <-> domain. Protobuf types stop here."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2
from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.anomalies import (
    AnomalyListing,
    AnomalyPage,
    AnomalyRecord,
    AnomalyWriteResult,
    Contribution,
)
from sentinel.storage.domain.batch import SampleBatch
from sentinel.storage.domain.partitions import Partition
from sentinel.storage.domain.query import (
    Aggregation,
    ById,
    ByKey,
    ByMatchers,
    LabelMatcher,
    MatchOperator,
    SampleQuery,
    Selector,
    SeriesListing,
)
from sentinel.storage.domain.results import QueryPage, RetentionOutcome, SeriesPage, WriteResult
from sentinel.storage.domain.retention import RetentionData, RetentionRequest
from sentinel.storage.domain.series import SeriesKey

_AGGREGATIONS = {
    resources_pb2.AGGREGATION_UNSPECIFIED: Aggregation.NONE,
    resources_pb2.AGGREGATION_AVG: Aggregation.AVG,
    resources_pb2.AGGREGATION_MIN: Aggregation.MIN,
    resources_pb2.AGGREGATION_MAX: Aggregation.MAX,
    resources_pb2.AGGREGATION_SUM: Aggregation.SUM,
    resources_pb2.AGGREGATION_COUNT: Aggregation.COUNT,
    resources_pb2.AGGREGATION_P50: Aggregation.P50,
    resources_pb2.AGGREGATION_P95: Aggregation.P95,
    resources_pb2.AGGREGATION_P99: Aggregation.P99,
    resources_pb2.AGGREGATION_LAST: Aggregation.LAST,
}
_OPERATORS = {
    common_pb2.MATCH_OPERATOR_EQUAL: MatchOperator.EQUAL,
    common_pb2.MATCH_OPERATOR_NOT_EQUAL: MatchOperator.NOT_EQUAL,
    common_pb2.MATCH_OPERATOR_REGEX: MatchOperator.REGEX,
    common_pb2.MATCH_OPERATOR_NOT_REGEX: MatchOperator.NOT_REGEX,
}
_RETENTION_DATA = {
    resources_pb2.RETENTION_DATA_SAMPLES: RetentionData.SAMPLES,
    resources_pb2.RETENTION_DATA_ROLLUPS: RetentionData.ROLLUPS,
    resources_pb2.RETENTION_DATA_ANOMALIES: RetentionData.ANOMALIES,
}


def series_key(message: common_pb2.SeriesKey) -> SeriesKey:
    return SeriesKey.of(message.name, dict(message.labels))


def series_key_message(key: SeriesKey) -> common_pb2.SeriesKey:
    return common_pb2.SeriesKey(name=key.name, labels=key.label_map)


def sample_batch(request: storage_service_pb2.WriteSamplesRequest) -> SampleBatch:
    batch = request.batch
    return SampleBatch(
        batch_id=batch.batch_id,
        series=tuple(series_key(key) for key in batch.series),
        series_index=np.array(batch.series_index, dtype=np.uint32),
        time_unix_nano=np.array(batch.time_unix_nano, dtype=np.int64),
        value=np.array(batch.value, dtype=np.float64),
    )


def write_response(result: WriteResult) -> storage_service_pb2.WriteSamplesResponse:
    return storage_service_pb2.WriteSamplesResponse(
        points_written=result.points_written,
        duplicate=result.duplicate,
        points_dropped=result.points_dropped,
        series_created=result.series_created,
        batch_id=result.batch_id,
    )


def _nanos(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos


def _timestamp(unix_nano: int) -> Timestamp:
    return Timestamp(seconds=unix_nano // 1_000_000_000, nanos=unix_nano % 1_000_000_000)


def _matchers(messages: Iterable[common_pb2.LabelMatcher], field: str) -> tuple[LabelMatcher, ...]:
    matchers = []
    for i, message in enumerate(messages):
        operator = _OPERATORS.get(message.operator)
        if operator is None:
            raise InvalidArgumentError(f"{field}[{i}].operator", f"unknown or unset value {message.operator}")
        matchers.append(LabelMatcher(message.name, operator, message.value))
    return tuple(matchers)


def _range(message: common_pb2.TimeRange) -> tuple[int | None, int | None]:
    start = _nanos(message.start_time) if message.HasField("start_time") else None
    end = _nanos(message.end_time) if message.HasField("end_time") else None
    return start, end


def sample_query(request: storage_service_pb2.QuerySamplesRequest) -> SampleQuery:
    selector: Selector | None = None
    which = request.WhichOneof("selector")
    if which == "series":
        selector = ByKey(series_key(request.series))
    elif which == "matchers":
        selector = ByMatchers(_matchers(request.matchers.matchers, "matchers.matchers"))
    elif which == "series_id":
        if not request.series_id.isdigit() or len(request.series_id) > 18:
            raise InvalidArgumentError("series_id", "must be a series id as returned by storage")
        selector = ById(int(request.series_id))
    aggregation = _AGGREGATIONS.get(request.aggregation)
    if aggregation is None:
        raise InvalidArgumentError("aggregation", f"unknown value {request.aggregation}")
    start, end = _range(request.time_range)
    step = None
    if request.HasField("step"):
        step = request.step.seconds * 1_000_000_000 + request.step.nanos
    return SampleQuery(
        selector=selector,
        start_unix_nano=start,
        end_unix_nano=end,
        step_nano=step,
        aggregation=aggregation,
        max_series=request.max_series,
        max_points=request.max_points,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def query_response(page: QueryPage) -> storage_service_pb2.QuerySamplesResponse:
    return storage_service_pb2.QuerySamplesResponse(
        results=[
            resources_pb2.SeriesResult(
                series=series_key_message(result.key),
                series_id=str(result.series_id),
                time_unix_nano=result.time_unix_nano.tolist(),
                value=result.value.tolist(),
            )
            for result in page.results
        ],
        next_page_token=page.next_page_token,
    )


def series_listing(request: storage_service_pb2.ListSeriesRequest) -> SeriesListing:
    start, end = _range(request.time_range)
    return SeriesListing(
        matchers=_matchers(request.matchers, "matchers"),
        start_unix_nano=start,
        end_unix_nano=end,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def list_response(page: SeriesPage) -> storage_service_pb2.ListSeriesResponse:
    infos = []
    for info in page.series:
        message = resources_pb2.SeriesInfo(series_id=str(info.series_id), series=series_key_message(info.key))
        if info.first_sample_unix_nano is not None:
            message.first_sample_time.CopyFrom(_timestamp(info.first_sample_unix_nano))
        if info.last_sample_unix_nano is not None:
            message.last_sample_time.CopyFrom(_timestamp(info.last_sample_unix_nano))
        infos.append(message)
    return storage_service_pb2.ListSeriesResponse(series=infos, next_page_token=page.next_page_token)


def retention_request(request: storage_service_pb2.ApplyRetentionRequest) -> RetentionRequest:
    data = None
    if request.data != resources_pb2.RETENTION_DATA_UNSPECIFIED:
        data = _RETENTION_DATA.get(request.data)
        if data is None:
            raise InvalidArgumentError("data", f"unknown value {request.data}")
    return RetentionRequest(
        data=data,
        cutoff_unix_nano=_nanos(request.cutoff_time) if request.HasField("cutoff_time") else None,
        dry_run=request.dry_run,
    )


def _partition(partition: Partition) -> resources_pb2.Partition:
    return resources_pb2.Partition(
        name=partition.name,
        time_range=common_pb2.TimeRange(
            start_time=_timestamp(partition.start_unix_micro * 1_000),
            end_time=_timestamp(partition.end_unix_micro * 1_000),
        ),
        approximate_rows=partition.approximate_rows,
        size_bytes=partition.size_bytes,
    )


def retention_response(outcome: RetentionOutcome) -> storage_service_pb2.ApplyRetentionResponse:
    return storage_service_pb2.ApplyRetentionResponse(
        dropped_partitions=[_partition(partition) for partition in outcome.partitions]
    )


def _optional_nanos(message: common_pb2.Anomaly, field: str) -> int | None:
    return _nanos(getattr(message, field)) if message.HasField(field) else None  # type: ignore[arg-type]


def anomaly_records(request: storage_service_pb2.WriteAnomaliesRequest) -> tuple[AnomalyRecord, ...]:
    return tuple(
        AnomalyRecord(
            anomaly_id=a.anomaly_id,
            series=series_key(a.series),
            start_unix_nano=_optional_nanos(a, "start_time"),
            peak_unix_nano=_optional_nanos(a, "peak_time"),
            end_unix_nano=_optional_nanos(a, "end_time"),
            value=a.value,
            baseline=a.baseline,
            score=a.score,
            severity=int(a.severity),
            anomaly_type=int(a.anomaly_type),
            contributions=tuple(
                Contribution(c.detector, c.score, c.weight, c.statistic) for c in a.contributions
            ),
            explanation=a.explanation,
            point_count=a.point_count,
        )
        for a in request.anomalies
    )


def write_anomalies_response(result: AnomalyWriteResult) -> storage_service_pb2.WriteAnomaliesResponse:
    return storage_service_pb2.WriteAnomaliesResponse(inserted=result.inserted, updated=result.updated)


def anomaly_listing(request: storage_service_pb2.ListAnomaliesRequest) -> AnomalyListing:
    start, end = _range(request.time_range)
    return AnomalyListing(
        matchers=_matchers(request.matchers, "matchers"),
        series_id=request.series_id,
        start_unix_nano=start,
        end_unix_nano=end,
        severities=tuple(int(s) for s in request.severities),
        anomaly_types=tuple(int(t) for t in request.anomaly_types),
        min_score=request.min_score,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def anomaly_message(record: AnomalyRecord) -> common_pb2.Anomaly:
    message = common_pb2.Anomaly(
        anomaly_id=record.anomaly_id,
        series=series_key_message(record.series),
        value=record.value,
        baseline=record.baseline,
        score=record.score,
        severity=record.severity,  # type: ignore[arg-type]
        anomaly_type=record.anomaly_type,  # type: ignore[arg-type]
        contributions=[
            common_pb2.DetectorContribution(
                detector=c.detector, score=c.score, weight=c.weight, statistic=c.statistic
            )
            for c in record.contributions
        ],
        explanation=record.explanation,
        point_count=record.point_count,
    )
    for field, value in (
        ("start_time", record.start_unix_nano),
        ("peak_time", record.peak_unix_nano),
        ("end_time", record.end_unix_nano),
    ):
        if value is not None:
            getattr(message, field).CopyFrom(_timestamp(value))
    return message


def list_anomalies_response(page: AnomalyPage) -> storage_service_pb2.ListAnomaliesResponse:
    return storage_service_pb2.ListAnomaliesResponse(
        anomalies=[anomaly_message(record) for record in page.anomalies], next_page_token=page.next_page_token
    )
