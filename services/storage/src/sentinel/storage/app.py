"""Composition root of the storage service."""

from __future__ import annotations

from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.storage.adapters.stores import Stores
from sentinel.storage.grpc.servicer import SERVICE, StorageServicer
from sentinel.storage.settings import StorageSettings


def build_server(settings: StorageSettings) -> Server:
    """Wire the storage service: stores opened (and migrated) before it reports SERVING."""
    stores = Stores(settings)
    # RPCs not built yet are installed by @pending_rpcs, which mypy cannot see.
    servicer = StorageServicer()  # type: ignore[abstract]
    return Server(
        name="storage",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: storage_service_pb2_grpc.add_StorageServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        on_startup=[stores.open],
        on_shutdown=[stores.close],
    )
