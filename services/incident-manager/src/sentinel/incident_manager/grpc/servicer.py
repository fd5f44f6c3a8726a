"""IncidentService servicer: glue between gRPC and the incident use cases."""

from __future__ import annotations

from sentinel.api.incident.v1 import incident_service_pb2, incident_service_pb2_grpc
from sentinel.runtime.pending import pending_rpcs

SERVICE = incident_service_pb2.DESCRIPTOR.services_by_name["IncidentService"]


@pending_rpcs(
    SERVICE,
    "the incident engine (dedup, grouping, lifecycle, silences, routing, notifications) is not built yet",
)
class IncidentServicer(incident_service_pb2_grpc.IncidentServiceServicer):
    """Answers IncidentService."""
