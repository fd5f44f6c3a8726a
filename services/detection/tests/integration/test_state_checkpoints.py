"""Per-series state in Redis: a restarted replica resumes, evicted series come back intact."""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as redis
from prometheus_client import REGISTRY

from sentinel.api.detection.v1 import detection_service_pb2 as pb

from .conftest import detection, key, noisy, offline_scores, request, settings

EVICTED = "sentinel_detection_series_evicted_total"


def evicted_so_far() -> float:
    return REGISTRY.get_sample_value(EVICTED) or 0.0


async def score_chunks(
    stub: object, series: list[tuple[np.ndarray, np.ndarray]], lo: int, hi: int
) -> list[list[float]]:
    """Points lo..hi of every series, one call per series."""
    out = []
    for s, (times, values) in enumerate(series):
        response = await stub.ScoreSamples(  # type: ignore[attr-defined]
            request([key(service=f"svc-{s}")], [0] * (hi - lo), times[lo:hi], values[lo:hi])
        )
        out.append(list(response.scores.score))
    return out


async def test_a_restarted_replica_resumes_with_identical_scores(
    redis_url: str, redis_namespace: str
) -> None:
    series = [noisy(400, seed=s, spikes=[150, 330]) for s in range(3)]
    with_redis = settings(redis_url=redis_url, redis_namespace=redis_namespace)
    async with detection(with_redis) as first:
        before = await score_chunks(first.stub, series, 0, 250)
    # The shutdown checkpoint wrote one key per series.
    client = redis.Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{redis_namespace}:detection:state:v1:*")
    finally:
        await client.aclose()
    assert len(keys) == 3
    async with detection(with_redis) as second:
        # Served from the checkpoint before the series is loaded again.
        state = await second.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key(service="svc-0")))
        after = await score_chunks(second.stub, series, 250, 400)
    assert state.sample_count == 250
    for s, expected in enumerate(offline_scores(series)):
        np.testing.assert_array_equal(np.array(before[s] + after[s]), expected)


async def test_without_redis_a_restart_starts_from_empty_state() -> None:
    times, values = noisy(120)
    async with detection(settings()) as first:
        await first.stub.ScoreSamples(request([key()], [0] * 120, times, values))
    async with detection(settings()) as second:
        response = await second.stub.ScoreSamples(request([key()], [0] * 1, times[:1], values[:1]))
    assert list(response.scores.score) == [0.0]


@pytest.mark.parametrize("with_redis", [True, False])
async def test_evicted_series_come_back_with_their_state(
    with_redis: bool, redis_url: str, redis_namespace: str
) -> None:
    series = [noisy(300, seed=s, spikes=[200]) for s in range(5)]
    extra = {"redis_url": redis_url, "redis_namespace": redis_namespace} if with_redis else {}
    evicted_before = evicted_so_far()
    got: list[list[float]] = [[] for _ in series]
    async with detection(settings(max_series=2, **extra)) as det:
        for lo in range(0, 300, 50):
            for s, scores in enumerate(await score_chunks(det.stub, series, lo, lo + 50)):
                got[s] += scores
    assert evicted_so_far() - evicted_before >= 5 * 6 - 2
    for s, expected in enumerate(offline_scores(series)):
        np.testing.assert_array_equal(np.array(got[s]), expected)
