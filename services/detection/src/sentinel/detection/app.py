"""Composition root of the detection service."""

from __future__ import annotations

import dataclasses
import logging

from sentinel.api.detection.v1 import detection_service_pb2_grpc
from sentinel.detection.adapters.reporting import GrpcAnomalySink, NoAnomalySink
from sentinel.detection.adapters.state_store import MemoryOnlyStateStore, RedisStateStore
from sentinel.detection.domain.detectors import normalised_weights
from sentinel.detection.engine import EngineConfig
from sentinel.detection.grpc.servicer import SERVICE, DetectionServicer
from sentinel.detection.multivariate import multivariate_monitor
from sentinel.detection.ports import AnomalySink, StateStore
from sentinel.detection.service import DetectionService, Options
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.channels import create_channel
from sentinel.runtime.clock import Clock, SystemClock
from sentinel.runtime.server import Server, ServiceRegistration

logger = logging.getLogger(__name__)


def build_server(
    settings: DetectionSettings, *, clock: Clock | None = None, config: EngineConfig | None = None
) -> Server:
    """Wire the detection service: state store, anomaly delivery, micro-batched engine, gRPC."""
    config = dataclasses.replace(config or EngineConfig(), capacity=settings.max_series)
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
    store: StateStore = (
        RedisStateStore(
            settings.redis_url,
            prefix=settings.redis_namespace,
            ttl_s=settings.checkpoint_ttl_s,
            connect_timeout_s=settings.dependency_timeout_s,
        )
        if settings.redis_url
        else MemoryOnlyStateStore()
    )
    channels = [
        create_channel(addr, max_message_mb=settings.max_message_mb) if addr else None
        for addr in (settings.storage_addr, settings.incident_manager_addr)
    ]
    sink: AnomalySink = (
        GrpcAnomalySink(
            storage=channels[0],
            incident_manager=channels[1],
            weights=normalised_weights(config),
            half_surprise=config.half_surprise,
            queue_size=settings.report_queue_size,
            service_key=service_key,
            deadline_s=settings.report_deadline_s,
        )
        if any(channels)
        else NoAnomalySink()
    )
    service = DetectionService(
        config=config,
        store=store,
        sink=sink,
        clock=clock or SystemClock(),
        options=Options(
            batch_max_points=settings.batch_max_points,
            batch_max_delay_s=settings.batch_max_delay_ms / 1000,
            queue_max_points=settings.queue_max_points,
            checkpoint_interval_s=settings.checkpoint_interval_s,
            episode_gap_ns=int(settings.episode_gap_s * 1e9),
            batch_cache_size=settings.batch_id_cache_size,
            recent_points=settings.recent_points,
            max_concurrent_evaluations=settings.max_concurrent_evaluations,
        ),
        multivariate=multivariate_monitor(settings, sink, store),
    )
    servicer = DetectionServicer(service)

    async def stop() -> None:
        await service.stop()
        for channel in channels:
            if channel is not None:
                await channel.close()

    return Server(
        name="detection",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: detection_service_pb2_grpc.add_DetectionServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        # The kernels are warmed inside `start`, before health reports SERVING.
        on_startup=[service.start],
        on_shutdown=[stop],
    )
