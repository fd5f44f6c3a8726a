"""DetectionService servicer: glue between gRPC and the detection engine."""

from __future__ import annotations

from sentinel.api.detection.v1 import detection_service_pb2, detection_service_pb2_grpc
from sentinel.runtime.pending import pending_rpcs

SERVICE = detection_service_pb2.DESCRIPTOR.services_by_name["DetectionService"]


@pending_rpcs(
    SERVICE,
    "the scoring engine (micro-batcher, NumPy kernels, per-series state) is not built yet",
)
class DetectionServicer(detection_service_pb2_grpc.DetectionServiceServicer):
    """Answers DetectionService."""
