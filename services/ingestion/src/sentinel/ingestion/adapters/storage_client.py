"""SampleStore over the storage service's gRPC API."""

from __future__ import annotations

import grpc

from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.ingestion.domain.derive import ColumnarSamples
from sentinel.ingestion.grpc.convert import encoded_batch
from sentinel.ingestion.ports import StoredBatch
from sentinel.runtime.auth import peer_metadata
from sentinel.runtime.channels import call_with_retry
from sentinel.runtime.errors import DeadlineExceededError, UnavailableError

# Storage answers that are worth another try with the same batch id (writes are idempotent).
_RETRY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class GrpcSampleStore:
    """Writes batches through `StorageService.WriteSamples`, retrying with backoff and jitter."""

    def __init__(self, channel: grpc.aio.Channel, *, service_key: str | None) -> None:
        self._stub = storage_service_pb2_grpc.StorageServiceStub(channel)
        self._service_key = service_key

    async def write(
        self, *, tenant: str, batch_id: str, samples: ColumnarSamples, deadline_s: float
    ) -> StoredBatch:
        request = storage_service_pb2.WriteSamplesRequest(batch=encoded_batch(samples, batch_id))
        metadata = peer_metadata(tenant, self._service_key)
        try:
            response = await call_with_retry(
                lambda: self._stub.WriteSamples(request, metadata=metadata, timeout=max(deadline_s, 0.001)),
                deadline_s=deadline_s,
                retry_codes=_RETRY,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _RETRY:
                raise UnavailableError(
                    f"storage did not commit the batch in time ({exc.code().name}); "
                    "retry with the same batch_id"
                ) from None
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceededError(
                    "storage did not commit the batch before the deadline; retry with the same batch_id"
                ) from None
            raise
        return StoredBatch(points_written=int(response.points_written), duplicate=bool(response.duplicate))
