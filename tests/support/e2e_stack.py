"""All four services, in process, on real stores and loopback ports (for end-to-end tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sentinel.detection.app import build_server as build_detection
from sentinel.detection.settings import DetectionSettings
from sentinel.incident_manager.app import build_server as build_incident_manager
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.ingestion.app import build_server as build_ingestion
from sentinel.ingestion.settings import IngestionSettings
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import running


@dataclass(frozen=True)
class Stack:
    """Addresses of the four running services."""

    ingestion: str
    detection: str
    storage: str
    incident_manager: str

    def items(self) -> list[tuple[str, str, str]]:
        """(service, address, full gRPC service name) for each service."""
        api = "sentinel.api"
        return [
            ("ingestion", self.ingestion, f"{api}.ingestion.v1.IngestionService"),
            ("detection", self.detection, f"{api}.detection.v1.DetectionService"),
            ("storage", self.storage, f"{api}.storage.v1.StorageService"),
            ("incident-manager", self.incident_manager, f"{api}.incident.v1.IncidentService"),
        ]


@contextlib.asynccontextmanager
async def running_stack(postgres_dsn: str, redis_url: str) -> AsyncIterator[Stack]:
    """Start storage, incident-manager, detection and ingestion wired to each other; stop them after."""
    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(
            running(build_storage(StorageSettings(port=0, postgres_dsn=postgres_dsn, redis_url=redis_url)))
        )
        incident_manager = await stack.enter_async_context(
            running(
                build_incident_manager(IncidentManagerSettings(port=0, http_port=0, storage_addr=storage))
            )
        )
        detection = await stack.enter_async_context(
            running(
                build_detection(
                    DetectionSettings(port=0, storage_addr=storage, incident_manager_addr=incident_manager)
                )
            )
        )
        ingestion = await stack.enter_async_context(
            running(
                build_ingestion(IngestionSettings(port=0, storage_addr=storage, detection_addr=detection))
            )
        )
        yield Stack(ingestion, detection, storage, incident_manager)
