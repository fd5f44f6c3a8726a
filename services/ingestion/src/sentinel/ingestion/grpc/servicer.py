"""IngestionService servicer: glue between gRPC and the ingestion use cases."""

from __future__ import annotations

from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from sentinel.runtime.pending import pending_rpcs

SERVICE = ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"]


@pending_rpcs(
    SERVICE,
    "telemetry intake (validation, normalisation, durable writes through storage) is not built yet",
)
class IngestionServicer(ingestion_service_pb2_grpc.IngestionServiceServicer):
    """Answers IngestionService."""
