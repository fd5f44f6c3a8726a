"""A detection service in process on a loopback port, and sample data: for detection's own
integration tests and the end-to-end tests that involve it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_service_pb2 as pb
from sentinel.api.detection.v1 import detection_service_pb2_grpc
from sentinel.detection.app import build_server
from sentinel.detection.settings import DetectionSettings
from sentinel.testing.servers import channel_to, running

T0_NS = 1_772_409_600 * 1_000_000_000  # 2026-03-02 00:00 UTC
MINUTE_NS = 60 * 1_000_000_000


def settings(**values: Any) -> DetectionSettings:
    """Detection on 127.0.0.1:0 with no peers and no Redis unless given."""
    return DetectionSettings(
        **{
            "port": 0,
            "storage_addr": "",
            "incident_manager_addr": "",
            "max_series": 64,
            "checkpoint_interval_s": 0,
            "multivariate_enabled": False,  # PyOD's warm-up costs seconds; its own tests turn it on
            **values,
        }
    )


@dataclass
class Detection:
    address: str
    stub: detection_service_pb2_grpc.DetectionServiceStub


@contextlib.asynccontextmanager
async def detection(detection_settings: DetectionSettings) -> AsyncIterator[Detection]:
    async with running(build_server(detection_settings)) as address, channel_to(address) as channel:
        yield Detection(address, detection_service_pb2_grpc.DetectionServiceStub(channel))


def key(name: str = "llm.latency_ms", **labels: str) -> common_pb2.SeriesKey:
    return common_pb2.SeriesKey(name=name, labels=labels or {"service": "chat"})


def request(
    series: Sequence[common_pb2.SeriesKey],
    index: Sequence[int],
    times: Sequence[int],
    values: Sequence[float],
    batch_id: str = "",
    **fields: Any,
) -> pb.ScoreSamplesRequest:
    return pb.ScoreSamplesRequest(
        batch=common_pb2.SampleBatch(
            batch_id=batch_id,
            series=list(series),
            series_index=list(index),
            time_unix_nano=list(times),
            value=list(values),
        ),
        **fields,
    )


def noisy(
    n: int, seed: int = 1, spikes: Sequence[int] = ()
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A steady series with unit noise, a point a minute, spikes of +40 at the given indices."""
    rng = np.random.default_rng(seed)
    times = T0_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    values = 100.0 + rng.normal(0, 1, n)
    for i in spikes:
        values[i] += 40
    return times, values
