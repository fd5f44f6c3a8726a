"""Anomalous episodes to storage (WriteAnomalies) and incident-manager (ReportAnomaly).

A bounded queue and one background sender: scoring never waits for either peer. Every change of
an episode is written to storage (idempotent by anomaly_id, so a rewrite updates it); a new
episode is reported to incident-manager once. UNAVAILABLE is retried with backoff within a
deadline; incident-manager answering UNIMPLEMENTED (not built yet) is logged once and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from prometheus_client import Counter, Gauge

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2, incident_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.detection.domain.episodes import EpisodeChange
from sentinel.detection.domain.multivariate import MultivariateAnomaly
from sentinel.detection.grpc.convert import anomaly_message
from sentinel.detection.grpc.convert_multivariate import multivariate_anomaly_message
from sentinel.runtime.auth import peer_metadata
from sentinel.runtime.channels import call_with_retry

logger = logging.getLogger(__name__)

DELIVERED = Counter(
    "sentinel_detection_anomaly_deliveries_total",
    "Anomaly deliveries to peers, by peer and outcome",
    ["peer", "outcome"],
)
DROPPED = Counter("sentinel_detection_anomalies_dropped_total", "Episode changes dropped: report queue full")
QUEUE = Gauge("sentinel_detection_report_queue_depth", "Episode changes waiting to be delivered")
MAX_WRITE = 1000


@dataclass(frozen=True)
class _Item:
    tenant: str
    change: EpisodeChange | MultivariateAnomaly
    message: common_pb2.Anomaly


class GrpcAnomalySink:
    """Delivers episode changes to storage and incident-manager from a bounded queue."""

    def __init__(
        self,
        *,
        storage: grpc.aio.Channel | None,
        incident_manager: grpc.aio.Channel | None,
        weights: tuple[float, ...],
        half_surprise: float,
        queue_size: int,
        service_key: str | None,
        deadline_s: float,
    ) -> None:
        self._storage = storage_service_pb2_grpc.StorageServiceStub(storage) if storage else None
        self._incidents = (
            incident_service_pb2_grpc.IncidentServiceStub(incident_manager) if incident_manager else None
        )
        self._weights = weights
        self._half_surprise = half_surprise
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(queue_size)
        self._service_key = service_key
        self._deadline_s = deadline_s
        self._task: asyncio.Task[None] | None = None
        self._warned: set[tuple[str, grpc.StatusCode]] = set()

    def publish(self, tenant: str, changes: Sequence[EpisodeChange], *, threshold: float) -> int:
        if self._storage is None and self._incidents is None:
            return 0
        return self._enqueue(
            _Item(
                tenant,
                change,
                anomaly_message(
                    change.episode,
                    weights=self._weights,
                    half_surprise=self._half_surprise,
                    threshold=threshold,
                ),
            )
            for change in changes
        )

    def publish_multivariate(self, changes: Sequence[MultivariateAnomaly], *, threshold: float) -> int:
        if self._storage is None and self._incidents is None:
            return 0
        return self._enqueue(
            _Item(c.group.tenant, c, multivariate_anomaly_message(c, threshold=threshold)) for c in changes
        )

    def _enqueue(self, items: Iterable[_Item]) -> int:
        accepted = 0
        for item in items:
            try:
                self._queue.put_nowait(item)
                accepted += 1
            except asyncio.QueueFull:
                DROPPED.inc()
                if ("queue", grpc.StatusCode.RESOURCE_EXHAUSTED) not in self._warned:
                    self._warned.add(("queue", grpc.StatusCode.RESOURCE_EXHAUSTED))
                    logger.warning("anomaly report queue full; episode changes are dropped (counted)")
        QUEUE.set(self._queue.qsize())
        return accepted

    async def start(self) -> None:
        if self._storage is not None or self._incidents is not None:
            self._task = asyncio.create_task(self._run(), name="detection-anomaly-reports")

    async def stop(self, drain_s: float = 5.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < MAX_WRITE and not self._queue.empty():
                items.append(self._queue.get_nowait())
            QUEUE.set(self._queue.qsize())
            try:
                await self._deliver(items)
            except Exception:
                logger.exception("delivering %d anomaly changes failed", len(items))
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _deliver(self, items: list[_Item]) -> None:
        by_tenant: dict[str, list[_Item]] = {}
        for item in items:
            by_tenant.setdefault(item.tenant, []).append(item)
        for tenant, group in by_tenant.items():
            metadata = peer_metadata(tenant, self._service_key)
            if self._storage is not None:
                latest = {item.message.anomaly_id: item.message for item in group}  # last change wins
                await self._write(list(latest.values()), metadata)
            if self._incidents is not None:
                for item in group:
                    if item.change.opened:
                        await self._report(item.message, metadata)

    async def _write(
        self, anomalies: list[common_pb2.Anomaly], metadata: tuple[tuple[str, str], ...]
    ) -> None:
        assert self._storage is not None
        stub = self._storage
        request = storage_service_pb2.WriteAnomaliesRequest(anomalies=anomalies)
        try:
            await call_with_retry(
                lambda: stub.WriteAnomalies(request, metadata=metadata, timeout=self._deadline_s),
                deadline_s=self._deadline_s,
            )
            DELIVERED.labels("storage", "ok").inc(len(anomalies))
        except grpc.aio.AioRpcError as exc:
            self._failed("storage", exc, len(anomalies))

    async def _report(self, anomaly: common_pb2.Anomaly, metadata: tuple[tuple[str, str], ...]) -> None:
        assert self._incidents is not None
        stub = self._incidents
        request = incident_service_pb2.ReportAnomalyRequest(anomaly=anomaly, dedup_key=anomaly.anomaly_id)
        try:
            await call_with_retry(
                lambda: stub.ReportAnomaly(request, metadata=metadata, timeout=self._deadline_s),
                deadline_s=self._deadline_s,
            )
            DELIVERED.labels("incident-manager", "ok").inc()
        except grpc.aio.AioRpcError as exc:
            self._failed("incident-manager", exc, 1)

    def _failed(self, peer: str, exc: grpc.aio.AioRpcError, count: int) -> None:
        code = exc.code()
        DELIVERED.labels(peer, code.name.lower()).inc(count)
        if (peer, code) in self._warned:
            return  # one line per peer and kind of failure; the metric counts the rest
        self._warned.add((peer, code))
        if code is grpc.StatusCode.UNIMPLEMENTED:
            logger.warning("%s does not implement this RPC yet; anomalies are not reported there", peer)
        else:
            logger.warning("%s did not take anomalies: %s %s", peer, code.name, exc.details())


class NoAnomalySink:
    """Nowhere to deliver (neither storage nor incident-manager configured)."""

    def publish(self, tenant: str, changes: Sequence[EpisodeChange], *, threshold: float) -> int:
        return 0

    def publish_multivariate(self, changes: Sequence[MultivariateAnomaly], *, threshold: float) -> int:
        return 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
