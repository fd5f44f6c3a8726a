"""Incident-manager wired to a real storage service on real PostgreSQL and Redis, over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest

from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.incident_manager.app import build_server as build_incident_manager
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.runtime.server import Server
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to


@dataclass
class Incidents:
    """A running storage + incident-manager pair; `restart()` replaces both processes' servers."""

    postgres_dsn: str
    redis_url: str
    redis_namespace: str
    stub: incident_service_pb2_grpc.IncidentServiceStub = field(init=False)
    storage_address: str = field(init=False, default="")
    address: str = field(init=False, default="")
    _storage: Server | None = field(init=False, default=None)
    _manager: Server | None = field(init=False, default=None)
    _channel: grpc.aio.Channel | None = field(init=False, default=None)
    _channels: contextlib.AsyncExitStack = field(init=False, default_factory=contextlib.AsyncExitStack)

    async def start(self) -> None:
        self._storage = build_storage(
            StorageSettings(
                port=0,
                postgres_dsn=self.postgres_dsn,
                redis_url=self.redis_url,
                redis_namespace=self.redis_namespace,
            )
        )
        await self._storage.start()
        self.storage_address = self._storage.address
        self._manager = build_incident_manager(self.manager_settings())
        await self._manager.start()
        self.address = self._manager.address
        self._channel = await self._channels.enter_async_context(channel_to(self.address))
        self.stub = incident_service_pb2_grpc.IncidentServiceStub(self._channel)

    def manager_settings(self) -> IncidentManagerSettings:
        """Settings of an incident manager on this storage and Redis namespace (any replica)."""
        return IncidentManagerSettings(
            port=0,
            http_port=0,
            storage_addr=self.storage_address,
            redis_url=self.redis_url,
            redis_namespace=f"{self.redis_namespace}:im",
            dependency_timeout_s=30,
        )

    async def stop(self) -> None:
        await self._channels.aclose()
        self._channels = contextlib.AsyncExitStack()
        if self._manager is not None:
            await self._manager.stop(grace=1)
        if self._storage is not None:
            await self._storage.stop(grace=1)

    async def restart(self) -> None:
        """Stop both services and start fresh ones on the same PostgreSQL and Redis."""
        await self.stop()
        await self.start()


@pytest.fixture
async def incidents(postgres_dsn: str, redis_url: str, redis_namespace: str) -> AsyncIterator[Incidents]:
    running = Incidents(postgres_dsn, redis_url, redis_namespace)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
