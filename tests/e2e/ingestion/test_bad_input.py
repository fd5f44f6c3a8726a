"""Bad input: clear INVALID_ARGUMENT naming field and index; good rows of a mixed batch are kept."""

from __future__ import annotations

import math
import time
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, telemetry_pb2

NOW_NS = time.time_ns()


def ts(ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def flat(**fields: Any) -> telemetry_pb2.TelemetryEvent:
    fields.setdefault("model_name", "gpt-4o")
    fields.setdefault("service_name", "bad-input")
    return telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent(**fields))


BAD_EVENTS = [
    (flat(latency_ms=math.nan), "latency_ms"),
    (flat(latency_ms=math.inf), "latency_ms"),
    (flat(latency_ms=-1.0), "latency_ms"),
    (flat(latency_ms=600_001.0), "latency_ms"),
    (flat(prompt_tokens=10_000_001), "prompt_tokens"),
    (flat(completion_tokens=-5), "completion_tokens"),
    (flat(cost_usd=10_001.0), "cost_usd"),
    (flat(cost_usd=math.nan), "cost_usd"),
    (flat(event_time=ts(NOW_NS + 3600 * 10**9)), "time"),
    (flat(event_time=ts(NOW_NS - 30 * 86400 * 10**9)), "time"),
    (flat(model_name=""), "model"),
    (flat(model_name="m" * 5000), "model"),
    (flat(service_name="s" * 5000), "service"),
    (telemetry_pb2.TelemetryEvent(), "form"),
]


@pytest.mark.parametrize(
    ("event", "field"), BAD_EVENTS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_EVENTS)]
)
async def test_mixed_batch_keeps_good_rows_and_reports_the_bad_one(
    pipeline: Any, event: Any, field: str
) -> None:
    good = flat(latency_ms=100.0, event_time=ts(NOW_NS))
    request = ingestion_service_pb2.IngestEventsRequest(events=[good, event, good])

    response = await pipeline.ingestion.IngestEvents(request)

    assert response.accepted_count == 2
    assert len(response.rejected_rows) == 1
    rejected = response.rejected_rows[0]
    assert rejected.index == 1
    assert field in rejected.field
    assert rejected.reason


async def test_a_batch_whose_every_row_fails_is_invalid_argument_naming_index_and_field(
    pipeline: Any,
) -> None:
    request = ingestion_service_pb2.IngestEventsRequest(events=[flat(latency_ms=math.nan)] * 3)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await pipeline.ingestion.IngestEvents(request)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("events[0].flat.latency_ms: ")


async def test_empty_and_oversize_batches_are_refused(pipeline: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await pipeline.ingestion.IngestEvents(ingestion_service_pb2.IngestEventsRequest())
    too_many = ingestion_service_pb2.IngestEventsRequest(events=[flat(latency_ms=1.0)] * 10_001)
    with pytest.raises(grpc.aio.AioRpcError) as oversize:
        await pipeline.ingestion.IngestEvents(too_many)

    assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "events" in empty.value.details()
    assert oversize.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "10000" in oversize.value.details().replace(",", "")


def columnar(values: list[float], times: list[int] | None = None, **fields: Any) -> Any:
    count = len(values)
    batch = common_pb2.SampleBatch(
        batch_id=fields.pop("batch_id", f"bad-{time.time_ns()}"),
        series=fields.pop("series", [common_pb2.SeriesKey(name="bad.metric", labels={"k": "v"})]),
        series_index=fields.pop("series_index", [0] * count),
        time_unix_nano=times if times is not None else [NOW_NS + i for i in range(count)],
        value=values,
    )
    return ingestion_service_pb2.WriteSamplesRequest(batch=batch)


async def test_columnar_nan_and_inf_points_are_rejected_by_index_and_the_rest_stored(pipeline: Any) -> None:
    values = [float(i) for i in range(40)]
    values[17] = math.nan
    values[23] = -math.inf

    response = await pipeline.ingestion.WriteSamples(columnar(values))

    assert response.accepted_count == 38
    assert [(r.index, r.field) for r in response.rejected_rows] == [(17, "value"), (23, "value")]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"series": [common_pb2.SeriesKey(name="")]}, "series[0].name"),
        (
            {"series": [common_pb2.SeriesKey(name="x", labels={f"l{i}": "v" for i in range(40)})]},
            "series[0].labels",
        ),
        ({"series": [common_pb2.SeriesKey(name="bad name with spaces")]}, "series[0].name"),
    ],
)
async def test_columnar_batch_level_problems_name_the_field(
    pipeline: Any, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await pipeline.ingestion.WriteSamples(columnar([1.0, 2.0], **request_fields))

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in raised.value.details()


async def test_a_point_naming_a_missing_series_is_rejected_by_index(pipeline: Any) -> None:
    response = await pipeline.ingestion.WriteSamples(columnar([1.0, 2.0], series_index=[0, 5]))

    assert response.accepted_count == 1
    assert [(r.index, r.field) for r in response.rejected_rows] == [(1, "series_index")]


async def test_mismatched_column_lengths_are_invalid_argument(pipeline: Any) -> None:
    request = columnar([1.0, 2.0, 3.0], times=[NOW_NS])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await pipeline.ingestion.WriteSamples(request)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "batch." in raised.value.details()


async def test_out_of_order_points_are_accepted_and_stored(pipeline: Any) -> None:
    times = [NOW_NS + 3, NOW_NS + 1, NOW_NS + 2]
    response = await pipeline.ingestion.WriteSamples(columnar([3.0, 1.0, 2.0], times=times, batch_id="ooo"))

    assert response.accepted_count == 3
