"""Samples written through ingestion are scored by detection, and their anomalies are stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import numpy as np

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_service_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2
from sentinel.api.storage.v1 import storage_service_pb2

from .conftest import Pipeline

T = TypeVar("T")
TENANT = [("x-sentinel-tenant", "acme")]
MINUTE_NS = 60 * 1_000_000_000


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float = 20.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_samples_written_through_ingestion_are_scored_and_their_anomalies_stored(
    pipeline: Pipeline,
) -> None:
    n = 400
    start = time.time_ns() - n * MINUTE_NS  # within ingestion's accepted past
    times = start + np.arange(n, dtype=np.int64) * MINUTE_NS
    values = 100 + np.random.default_rng(3).normal(0, 1, n)
    values[300] += 40
    series = common_pb2.SeriesKey(name="llm.latency_ms", labels={"service": "chat", "model": "gpt-4o"})
    for i, at in enumerate(range(0, n, 100)):
        response = await pipeline.ingestion.WriteSamples(
            ingestion_service_pb2.WriteSamplesRequest(
                batch=common_pb2.SampleBatch(
                    batch_id=f"e2e-{i}",
                    series=[series],
                    series_index=[0] * 100,
                    time_unix_nano=times[at : at + 100].tolist(),
                    value=values[at : at + 100].tolist(),
                )
            ),
            metadata=TENANT,
        )
        assert response.accepted_count == 100

    async def scored() -> detection_service_pb2.GetSeriesStateResponse | None:
        try:
            state = await pipeline.detection.GetSeriesState(
                detection_service_pb2.GetSeriesStateRequest(series=series), metadata=TENANT
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None
        return state if state.sample_count == n else None

    state = await scored_state(scored)
    assert state.last_sample_time.ToNanoseconds() == int(times[-1])
    assert state.last_value == values[-1]
    assert not state.warming_up

    async def stored() -> list[common_pb2.Anomaly] | None:
        page = await pipeline.storage.ListAnomalies(
            storage_service_pb2.ListAnomaliesRequest(
                matchers=[
                    common_pb2.LabelMatcher(
                        name="model", operator=common_pb2.MATCH_OPERATOR_EQUAL, value="gpt-4o"
                    )
                ]
            ),
            metadata=TENANT,
        )
        # storage keeps microseconds
        spikes = [a for a in page.anomalies if a.start_time.ToMicroseconds() == int(times[300]) // 1000]
        return spikes or None

    spike = (await eventually(stored))[0]
    assert spike.anomaly_type == common_pb2.ANOMALY_TYPE_LATENCY_SPIKE
    assert spike.anomaly_id.startswith("anm_")
    assert dict(spike.series.labels) == {"service": "chat", "model": "gpt-4o"}


async def scored_state(
    check: Callable[[], Awaitable[detection_service_pb2.GetSeriesStateResponse | None]],
) -> detection_service_pb2.GetSeriesStateResponse:
    return await eventually(check)
