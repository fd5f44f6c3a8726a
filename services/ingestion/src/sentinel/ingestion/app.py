"""Composition root of the ingestion service."""

from __future__ import annotations

from sentinel.api.ingestion.v1 import ingestion_service_pb2_grpc
from sentinel.ingestion.grpc.servicer import SERVICE, IngestionServicer
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.server import Server, ServiceRegistration


def build_server(settings: IngestionSettings) -> Server:
    """Wire the ingestion service: its servicer and its channel to storage."""
    # RPCs not built yet are installed by @pending_rpcs, which mypy cannot see.
    servicer = IngestionServicer()  # type: ignore[abstract]
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
        name="ingestion",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        on_startup=[wait_for_storage],
        on_shutdown=[close_channels],
    )
