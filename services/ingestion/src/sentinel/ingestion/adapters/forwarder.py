"""Forwarding stored samples to detection: a bounded queue and one background sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from prometheus_client import Counter, Gauge

from sentinel.api.detection.v1 import detection_service_pb2, detection_service_pb2_grpc
from sentinel.ingestion.domain.derive import ColumnarSamples
from sentinel.ingestion.grpc.convert import encoded_batch
from sentinel.runtime.auth import peer_metadata

logger = logging.getLogger(__name__)

FORWARDED = Counter("sentinel_ingest_forwarded_batches_total", "Batches handed to detection", ["outcome"])
QUEUE_DEPTH = Gauge("sentinel_ingest_forward_queue_depth", "Batches waiting to be forwarded to detection")


class DetectionForwarder:
    """Fire-and-forget delivery to detection. Storage already holds every point, so a batch that
    cannot be forwarded (queue full, detection down) is counted and logged, never silently lost.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel | None,
        *,
        queue_size: int,
        service_key: str | None,
        timeout_s: float = 10,
    ) -> None:
        self._stub = detection_service_pb2_grpc.DetectionServiceStub(channel) if channel else None
        self._queue: asyncio.Queue[tuple[str, str, ColumnarSamples]] = asyncio.Queue(queue_size)
        self._service_key = service_key
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._warned: set[grpc.StatusCode] = set()

    def forward(self, *, tenant: str, batch_id: str, samples: ColumnarSamples) -> None:
        if self._stub is None:
            return
        try:
            self._queue.put_nowait((tenant, batch_id, samples))
        except asyncio.QueueFull:
            FORWARDED.labels("dropped_queue_full").inc()
            logger.warning("detection forward queue full; batch %s not scored", batch_id)
        QUEUE_DEPTH.set(self._queue.qsize())

    async def start(self) -> None:
        if self._stub is not None:
            self._task = asyncio.create_task(self._run(), name="detection-forwarder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        assert self._stub is not None
        while True:
            tenant, batch_id, samples = await self._queue.get()
            QUEUE_DEPTH.set(self._queue.qsize())
            request = detection_service_pb2.ScoreSamplesRequest(
                batch=encoded_batch(samples, batch_id), report_anomalies=True
            )
            try:
                await self._stub.ScoreSamples(
                    request, metadata=peer_metadata(tenant, self._service_key), timeout=self._timeout_s
                )
                FORWARDED.labels("scored").inc()
            except grpc.aio.AioRpcError as exc:
                FORWARDED.labels(f"failed_{exc.code().name.lower()}").inc()
                if exc.code() not in self._warned:  # one line per kind of failure, the metric counts the rest
                    self._warned.add(exc.code())
                    logger.warning("detection did not score batch %s: %s %s", batch_id, exc.code().name,
                                   exc.details())  # fmt: skip
