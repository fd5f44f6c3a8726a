"""Composition root of the detection service."""

from __future__ import annotations

from sentinel.api.detection.v1 import detection_service_pb2_grpc
from sentinel.detection.grpc.servicer import SERVICE, DetectionServicer
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.server import Server, ServiceRegistration


def build_server(settings: DetectionSettings) -> Server:
    """Wire the detection service."""
    # RPCs not built yet are installed by @pending_rpcs, which mypy cannot see.
    servicer = DetectionServicer()  # type: ignore[abstract]
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
    )
