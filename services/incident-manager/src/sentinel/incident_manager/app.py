"""Composition root of the incident manager."""

from __future__ import annotations

from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.incident_manager.grpc.servicer import SERVICE, IncidentServicer
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.server import Server, ServiceRegistration


def build_server(settings: IncidentManagerSettings) -> Server:
    """Wire the incident manager: it persists through storage, so it waits for storage first."""
    # RPCs not built yet are installed by @pending_rpcs, which mypy cannot see.
    servicer = IncidentServicer()  # type: ignore[abstract]
    storage_channel = create_channel(settings.storage_addr, max_message_mb=settings.max_message_mb)

    async def wait_for_storage() -> None:
        await wait_until_serving(
            storage_channel,
            peer=f"storage at {settings.storage_addr}",
            timeout_s=settings.dependency_timeout_s,
        )

    async def close_channels() -> None:
        await storage_channel.close()

    return Server(
        name="incident-manager",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: incident_service_pb2_grpc.add_IncidentServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        on_startup=[wait_for_storage],
        on_shutdown=[close_channels],
    )
