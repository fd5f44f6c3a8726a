"""Composition root of the ingestion service."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from sentinel.api.ingestion.v1 import ingestion_service_pb2_grpc
from sentinel.ingestion.adapters.forwarder import DetectionForwarder
from sentinel.ingestion.adapters.storage_client import GrpcSampleStore
from sentinel.ingestion.domain.model import Limits
from sentinel.ingestion.grpc.servicer import OTLP_SERVICE, SERVICE, IngestionServicer, OtlpTraceServicer
from sentinel.ingestion.service import IngestionService
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.channels import create_channel
from sentinel.runtime.clock import Clock, SystemClock
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.server import Server, ServiceRegistration


def build_server(settings: IngestionSettings, *, clock: Clock | None = None) -> Server:
    """Wire the ingestion service: storage client, detection forwarder, both gRPC services."""
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
    storage_channel = create_channel(settings.storage_addr, max_message_mb=settings.max_message_mb)
    detection_channel = (
        create_channel(settings.detection_addr, max_message_mb=settings.max_message_mb)
        if settings.detection_addr
        else None
    )
    forwarder = DetectionForwarder(
        detection_channel, queue_size=settings.forward_queue_batches, service_key=service_key
    )
    service = IngestionService(
        store=GrpcSampleStore(storage_channel, service_key=service_key),
        forwarder=forwarder,
        clock=clock or SystemClock(),
        limits=Limits(
            max_future_s=settings.max_future_s,
            max_past_s=settings.max_past_s,
            max_events_per_batch=settings.max_events_per_batch,
            max_points_per_batch=settings.max_points_per_batch,
        ),
        max_inflight_writes=settings.max_inflight_writes,
        backpressure_wait_s=settings.backpressure_wait_s,
    )
    servicer = IngestionServicer(service, default_deadline_s=settings.default_deadline_s)
    otlp = OtlpTraceServicer(service, default_deadline_s=settings.default_deadline_s)

    async def wait_for_storage() -> None:
        await wait_until_serving(
            storage_channel,
            peer=f"storage at {settings.storage_addr}",
            timeout_s=settings.dependency_timeout_s,
        )

    async def close() -> None:
        await forwarder.stop()
        await storage_channel.close()
        if detection_channel is not None:
            await detection_channel.close()

    return Server(
        name="ingestion",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
                    servicer, server
                ),
            ),
            ServiceRegistration(
                OTLP_SERVICE.full_name,
                lambda server: trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
                    otlp, server
                ),
            ),
        ],
        on_startup=[wait_for_storage, forwarder.start],
        on_shutdown=[close],
    )
