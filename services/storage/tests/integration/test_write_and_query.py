"""Written samples come back exactly, raw or aggregated, and long results page without loss."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2

from .conftest import DAY0_NS, SECOND_NS, Storage, batch, duration, time_range

SERIES = [("llm.latency_ms", {"service": "chat", "model": "gpt-4o"}), ("llm.cost_usd", {"service": "chat"})]


async def test_written_points_come_back_exactly_by_key_and_by_series_id(storage: Storage) -> None:
    times = [DAY0_NS + i * SECOND_NS + 123_456 for i in range(5)]  # sub-µs digits are floored
    written = await storage.write(batch(SERIES, [0, 1, 0, 0, 1], times, [1.5, -2.0, 3.25, 1e300, 0.0]))
    assert (written.points_written, written.duplicate, written.series_created) == (5, False, 2)

    by_key = await storage.query(
        series=common_pb2.SeriesKey(name="llm.latency_ms", labels=SERIES[0][1]),
        time_range=time_range(DAY0_NS, DAY0_NS + 10 * SECOND_NS),
    )
    [result] = by_key.results
    assert list(result.time_unix_nano) == [t // 1000 * 1000 for t in (times[0], times[2], times[3])]
    assert list(result.value) == [1.5, 3.25, 1e300]
    assert result.series.name == "llm.latency_ms" and dict(result.series.labels) == SERIES[0][1]
    assert by_key.next_page_token == ""

    by_id = await storage.query(
        series_id=result.series_id, time_range=time_range(DAY0_NS, DAY0_NS + 3 * SECOND_NS)
    )
    assert [list(r.value) for r in by_id.results] == [[1.5, 3.25]]


async def test_a_batch_across_several_days_lands_in_each_days_partition(storage: Storage) -> None:
    times = [DAY0_NS - 1, DAY0_NS, DAY0_NS + 3 * 86_400 * SECOND_NS]
    await storage.write(batch(SERIES[:1], [0, 0, 0], times, [1.0, 2.0, 3.0]))
    [result] = await storage.query_all(
        series=common_pb2.SeriesKey(name=SERIES[0][0], labels=SERIES[0][1]),
        time_range=time_range(DAY0_NS - SECOND_NS, DAY0_NS + 4 * 86_400 * SECOND_NS),
    )
    assert list(result.value) == [1.0, 2.0, 3.0]


async def test_unknown_series_is_not_found(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.query(series=common_pb2.SeriesKey(name="nope"), time_range=time_range(0, DAY0_NS))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.query(series_id="424242", time_range=time_range(0, DAY0_NS))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND


def reference(aggregation: int, values: np.ndarray) -> float:
    """NumPy's answer for one bucket (values in time order)."""
    return {
        resources_pb2.AGGREGATION_AVG: lambda v: float(np.mean(v)),
        resources_pb2.AGGREGATION_MIN: lambda v: float(np.min(v)),
        resources_pb2.AGGREGATION_MAX: lambda v: float(np.max(v)),
        resources_pb2.AGGREGATION_SUM: lambda v: float(np.sum(v)),
        resources_pb2.AGGREGATION_COUNT: lambda v: float(len(v)),
        resources_pb2.AGGREGATION_P50: lambda v: float(np.percentile(v, 50)),
        resources_pb2.AGGREGATION_P95: lambda v: float(np.percentile(v, 95)),
        resources_pb2.AGGREGATION_P99: lambda v: float(np.percentile(v, 99)),
        resources_pb2.AGGREGATION_LAST: lambda v: float(v[-1]),
    }[aggregation](values)


AGGREGATIONS = [
    resources_pb2.AGGREGATION_AVG,
    resources_pb2.AGGREGATION_MIN,
    resources_pb2.AGGREGATION_MAX,
    resources_pb2.AGGREGATION_SUM,
    resources_pb2.AGGREGATION_COUNT,
    resources_pb2.AGGREGATION_P50,
    resources_pb2.AGGREGATION_P95,
    resources_pb2.AGGREGATION_P99,
    resources_pb2.AGGREGATION_LAST,
]


@pytest.mark.parametrize("aggregation", AGGREGATIONS, ids=lambda a: resources_pb2.Aggregation.Name(a))
async def test_each_aggregation_per_step_matches_a_numpy_reference(
    storage: Storage, aggregation: int
) -> None:
    rng = np.random.default_rng(aggregation)
    n = 2_000
    # Distinct times over ~70 minutes from a non-aligned start; 10-minute steps aligned to the epoch.
    times = DAY0_NS + 7 * 60 * SECOND_NS + np.sort(rng.choice(70 * 60 * 1000, n, replace=False)) * 1_000_000
    values = rng.normal(100, 30, n)
    await storage.write(batch(SERIES[:1], [0] * n, times.tolist(), values.tolist()))
    step = 600 * SECOND_NS

    [result] = await storage.query_all(
        matchers=resources_pb2.SeriesMatchers(
            matchers=[
                common_pb2.LabelMatcher(
                    name="__name__", operator=common_pb2.MATCH_OPERATOR_EQUAL, value=SERIES[0][0]
                )
            ]
        ),
        time_range=time_range(DAY0_NS, DAY0_NS + 2 * 3600 * SECOND_NS),
        step=duration(step),
        aggregation=aggregation,
    )

    buckets = times // step * step
    expected_times = np.unique(buckets)
    expected = [reference(aggregation, values[buckets == b]) for b in expected_times]
    assert list(result.time_unix_nano) == expected_times.tolist()
    np.testing.assert_allclose(list(result.value), expected, rtol=1e-12)


async def test_aggregation_without_step_is_one_bucket_over_the_whole_range(storage: Storage) -> None:
    await storage.write(batch(SERIES[:1], [0] * 4, [DAY0_NS + i * SECOND_NS for i in range(4)], [4, 1, 3, 2]))
    start = DAY0_NS - 17 * SECOND_NS
    [result] = (
        await storage.query(
            series=common_pb2.SeriesKey(name=SERIES[0][0], labels=SERIES[0][1]),
            time_range=time_range(start, DAY0_NS + 60 * SECOND_NS),
            aggregation=resources_pb2.AGGREGATION_MAX,
        )
    ).results
    assert (list(result.time_unix_nano), list(result.value)) == ([start], [4.0])


async def test_a_long_series_continues_on_the_next_page_without_loss_or_repeat(storage: Storage) -> None:
    n = 50
    times = [DAY0_NS + (i // 3) * SECOND_NS for i in range(n)]  # runs of 3 points at the same time
    values = [float(i % 7) for i in range(n)]
    await storage.write(batch(SERIES, [i % 2 for i in range(n)], times, values))

    results = await storage.query_all(
        matchers=resources_pb2.SeriesMatchers(
            matchers=[
                common_pb2.LabelMatcher(
                    name="service", operator=common_pb2.MATCH_OPERATOR_EQUAL, value="chat"
                )
            ]
        ),
        time_range=time_range(DAY0_NS, DAY0_NS + 60 * SECOND_NS),
        max_points=4,
        page_size=1,
    )

    for index, result in enumerate(sorted(results, key=lambda r: r.series.name, reverse=True)):
        mine = sorted((times[i], values[i]) for i in range(n) if i % 2 == index)
        assert list(zip(result.time_unix_nano, result.value, strict=True)) == mine
