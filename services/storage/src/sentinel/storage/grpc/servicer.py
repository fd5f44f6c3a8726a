"""StorageService servicer: glue between gRPC and the storage use cases."""

from __future__ import annotations

from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.runtime.pending import pending_rpcs

SERVICE = storage_service_pb2.DESCRIPTOR.services_by_name["StorageService"]


@pending_rpcs(
    SERVICE,
    "the storage use cases (sample writes and queries, incident records) are not built yet; "
    "the service already connects to PostgreSQL and Redis and migrates the schema",
)
class StorageServicer(storage_service_pb2_grpc.StorageServiceServicer):
    """Answers StorageService."""
