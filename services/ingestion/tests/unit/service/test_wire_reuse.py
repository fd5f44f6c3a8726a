"""A batch is encoded at most once: received bytes are passed on when nothing was dropped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from sentinel.api.common.v1 import common_pb2
from sentinel.ingestion.domain.derive import ColumnarSamples
from sentinel.ingestion.domain.model import Limits
from sentinel.ingestion.grpc.convert import columns_from_batch, encoded_batch
from sentinel.ingestion.ports import StoredBatch
from sentinel.ingestion.service import ColumnarBatch, IngestionService
from sentinel.runtime.clock import SystemClock


class RecordingStore:
    def __init__(self) -> None:
        self.sent: list[common_pb2.SampleBatch] = []

    async def write(
        self, *, tenant: str, batch_id: str, samples: ColumnarSamples, deadline_s: float
    ) -> StoredBatch:
        self.sent.append(encoded_batch(samples, batch_id))
        return StoredBatch(points_written=len(samples), duplicate=False)


class RecordingForwarder:
    def __init__(self) -> None:
        self.sent: list[common_pb2.SampleBatch] = []

    def forward(self, *, tenant: str, batch_id: str, samples: ColumnarSamples) -> None:
        self.sent.append(encoded_batch(samples, batch_id))


def received(values: list[float]) -> common_pb2.SampleBatch:
    now = time.time_ns()
    return common_pb2.SampleBatch(
        batch_id="b-1", series=[common_pb2.SeriesKey(name="m", labels={"k": "v"})],
        series_index=[0] * len(values), time_unix_nano=[now + i for i in range(len(values))], value=values,
    )  # fmt: skip


def write(batch: common_pb2.SampleBatch) -> tuple[RecordingStore, RecordingForwarder, Any]:
    store, forwarder = RecordingStore(), RecordingForwarder()
    service = IngestionService(store=store, forwarder=forwarder, clock=SystemClock(), limits=Limits())
    series, index, times, values = columns_from_batch(batch)
    outcome = asyncio.run(
        service.write_samples(
            tenant="t",
            batch=ColumnarBatch(batch.batch_id, series, index, times, values, wire=batch),
            deadline_s=5,
        )
    )
    return store, forwarder, outcome


def test_a_clean_batch_is_sent_on_as_received_to_storage_and_detection() -> None:
    batch = received([1.0, 2.0, 3.0])

    store, forwarder, outcome = write(batch)

    assert outcome.accepted == 3
    assert store.sent[0] is batch
    assert forwarder.sent[0] is batch


def test_a_batch_with_rejected_points_is_re_encoded_once_without_them() -> None:
    batch = received([1.0, float("nan"), 3.0])

    store, forwarder, outcome = write(batch)

    assert outcome.accepted == 2
    assert store.sent[0] is not batch
    assert list(store.sent[0].value) == [1.0, 3.0]
    assert forwarder.sent[0] is store.sent[0], "detection reuses storage's encoding"


def test_an_encoding_for_another_batch_id_is_not_reused() -> None:
    samples = ColumnarSamples([("m", ())], np.zeros(1, np.uint32), np.ones(1, np.int64), np.ones(1))
    first = encoded_batch(samples, "a")

    assert encoded_batch(samples, "a") is first
    assert encoded_batch(samples, "b").batch_id == "b"
