"""Malformed requests are INVALID_ARGUMENT naming the offending field (and index)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2
from sentinel.storage.domain.batch import MAX_POINTS

from .conftest import DAY0_NS, SECOND_NS, Storage, batch, duration, error_info, matcher, time_range, timestamp

S = [("m", {"k": "v"})]
NAN, INF = float("nan"), float("inf")
RANGE = time_range(DAY0_NS, DAY0_NS + 3600 * SECOND_NS)
BY_NAME = resources_pb2.SeriesMatchers(matchers=[matcher("__name__", "=", "m")])

BAD_BATCHES = {
    "nan": (
        batch(S, [0] * 20, [DAY0_NS] * 20, [1.0] * 17 + [NAN, 1.0, 1.0]),
        "batch.value[17]",
        "must be finite",
    ),
    "inf": (batch(S, [0] * 3, [DAY0_NS] * 3, [1.0, 2.0, -INF]), "batch.value[2]", "must be finite"),
    "index out of range": (
        batch(S, [0, 1], [DAY0_NS] * 2, [1.0, 2.0]),
        "batch.series_index[1]",
        "out of range",
    ),
    "lengths differ": (batch(S, [0, 0], [DAY0_NS], [1.0, 2.0]), "batch.time_unix_nano", "same length"),
    "empty name": (batch([("", {})], [0], [DAY0_NS], [1.0]), "batch.series[0].name", "must not be empty"),
    "bad name": (batch([*S, ("a b", {})], [0], [DAY0_NS], [1.0]), "batch.series[1].name", "[A-Za-z0-9_.:-]"),
    "too many labels": (
        batch([("m", {f"k{i}": "v" for i in range(33)})], [0], [DAY0_NS], [1.0]),
        "batch.series[0].labels",
        "at most 32",
    ),
    "long label value": (
        batch([("m", {"k": "x" * 501})], [0], [DAY0_NS], [1.0]),
        "batch.series[0].labels[k]",
        "at most 500",
    ),
    "long label key": (
        batch([("m", {"k" * 101: "v"})], [0], [DAY0_NS], [1.0]),
        "batch.series[0].labels",
        "1..100",
    ),
    "negative time": (batch(S, [0, 0], [DAY0_NS, -1], [1.0, 2.0]), "batch.time_unix_nano[1]", "1970"),
    "too many points": (
        batch(S, [0] * (MAX_POINTS + 1), [DAY0_NS] * (MAX_POINTS + 1), [1.0] * (MAX_POINTS + 1)),
        "batch.value",
        "at most 100000",
    ),
    "long batch id": (batch(S, [0], [DAY0_NS], [1.0], batch_id="x" * 129), "batch.batch_id", "at most 128"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
async def test_a_bad_batch_is_invalid_argument_naming_the_field(storage: Storage, case: str) -> None:
    sample_batch, field, problem = BAD_BATCHES[case]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.write(sample_batch)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"{field}: ")
    assert problem in raised.value.details()
    assert error_info(raised.value).metadata["field"] == field
    assert list((await storage.list_series()).series) == []  # nothing of a rejected batch is stored


BAD_QUERIES: dict[str, tuple[dict[str, Any], str]] = {
    "no selector": ({"time_range": RANGE}, "selector"),
    "no start": (
        {"matchers": BY_NAME, "time_range": common_pb2.TimeRange(end_time=timestamp(DAY0_NS))},
        "time_range.start_time",
    ),
    "start after end": ({"matchers": BY_NAME, "time_range": time_range(DAY0_NS, DAY0_NS)}, "time_range"),
    "huge page_size": ({"matchers": BY_NAME, "time_range": RANGE, "page_size": 1_000_000}, "page_size"),
    "negative page_size": ({"matchers": BY_NAME, "time_range": RANGE, "page_size": -1}, "page_size"),
    "huge max_points": ({"matchers": BY_NAME, "time_range": RANGE, "max_points": 10_000_000}, "max_points"),
    "huge max_series": ({"matchers": BY_NAME, "time_range": RANGE, "max_series": 100_000}, "max_series"),
    "step 0 with aggregation": (
        {
            "matchers": BY_NAME,
            "time_range": RANGE,
            "step": duration(0),
            "aggregation": resources_pb2.AGGREGATION_AVG,
        },
        "step",
    ),
    "step without aggregation": (
        {"matchers": BY_NAME, "time_range": RANGE, "step": duration(SECOND_NS)},
        "step",
    ),
    "too many buckets": (
        {
            "matchers": BY_NAME,
            "time_range": RANGE,
            "step": duration(SECOND_NS // 10),
            "aggregation": resources_pb2.AGGREGATION_AVG,
        },
        "step",
    ),
    "unknown aggregation": ({"matchers": BY_NAME, "time_range": RANGE, "aggregation": 99}, "aggregation"),
    "unknown operator": (
        {
            "matchers": resources_pb2.SeriesMatchers(
                matchers=[common_pb2.LabelMatcher(name="k", operator=99, value="v")]
            ),
            "time_range": RANGE,
        },
        "matchers.matchers[0].operator",
    ),
    "unset operator": (
        {
            "matchers": resources_pb2.SeriesMatchers(matchers=[common_pb2.LabelMatcher(name="k", value="v")]),
            "time_range": RANGE,
        },
        "matchers.matchers[0].operator",
    ),
    "bad regex": (
        {"matchers": resources_pb2.SeriesMatchers(matchers=[matcher("k", "=~", "(")]), "time_range": RANGE},
        "matchers.matchers[0].value",
    ),
    "empty matchers": (
        {"matchers": resources_pb2.SeriesMatchers(), "time_range": RANGE},
        "matchers.matchers",
    ),
    "bad series_id": ({"series_id": "abc", "time_range": RANGE}, "series_id"),
    "bad series key": ({"series": common_pb2.SeriesKey(name=""), "time_range": RANGE}, "series.name"),
    "bad page token": ({"matchers": BY_NAME, "time_range": RANGE, "page_token": "not-a-token"}, "page_token"),
}


@pytest.mark.parametrize("case", list(BAD_QUERIES))
async def test_a_bad_query_is_invalid_argument_naming_the_field(storage: Storage, case: str) -> None:
    fields, field = BAD_QUERIES[case]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.query(**fields)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert error_info(raised.value).metadata["field"] == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"page_size": 20_000}, "page_size"),
        ({"matchers": [matcher("k", "=~", "[")]}, "matchers[0].value"),
        ({"matchers": [common_pb2.LabelMatcher(name="k", operator=99)]}, "matchers[0].operator"),
        ({"matchers": [matcher("", "=", "v")]}, "matchers[0].name"),
        ({"time_range": time_range(DAY0_NS, DAY0_NS - 1)}, "time_range"),
        ({"page_token": "!!"}, "page_token"),
    ],
)
async def test_a_bad_listing_is_invalid_argument_naming_the_field(
    storage: Storage, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.list_series(**fields)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).metadata["field"] == field


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"cutoff_time": timestamp(DAY0_NS)}, "data"),
        ({"data": 99, "cutoff_time": timestamp(DAY0_NS)}, "data"),
        ({"data": resources_pb2.RETENTION_DATA_SAMPLES}, "cutoff_time"),
        ({"data": resources_pb2.RETENTION_DATA_SAMPLES, "cutoff_time": timestamp(2**62)}, "cutoff_time"),
    ],
)
async def test_a_bad_retention_request_is_invalid_argument_naming_the_field(
    storage: Storage, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.stub.ApplyRetention(storage_service_pb2.ApplyRetentionRequest(**request_fields))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).metadata["field"] == field
