"""A detection service in process on a loopback port, and helpers to call it."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import numpy as np
import numpy.typing as npt
from detection_support import (  # noqa: F401 - re-exported to the tests of this folder
    MINUTE_NS,
    T0_NS,
    Detection,
    detection,
    key,
    noisy,
    request,
    settings,
)
from google.rpc import error_details_pb2, status_pb2

from sentinel.detection.engine import EngineConfig, StreamingScorer


def offline_scores(
    series: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]], capacity: int = 8
) -> list[npt.NDArray[np.float64]]:
    """What the engine alone says for each series scored from empty state."""
    out = []
    for times, values in series:
        scorer = StreamingScorer(EngineConfig(capacity=capacity))
        out.append(scorer.score(np.zeros(len(values), dtype=np.int64), times, values).score)
    return out


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info
