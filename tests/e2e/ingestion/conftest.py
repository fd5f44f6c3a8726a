"""Ingestion wired to a real storage service on real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from sentinel.api.ingestion.v1 import ingestion_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.ingestion.app import build_server as build_ingestion
from sentinel.ingestion.settings import IngestionSettings
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running


@dataclass
class Pipeline:
    ingestion_address: str
    storage_address: str
    ingestion: ingestion_service_pb2_grpc.IngestionServiceStub
    storage: storage_service_pb2_grpc.StorageServiceStub
    channel: grpc.aio.Channel


@pytest.fixture
async def pipeline(postgres_dsn: str, redis_url: str, redis_namespace: str) -> AsyncIterator[Pipeline]:
    storage_settings = StorageSettings(
        port=0, postgres_dsn=postgres_dsn, redis_url=redis_url, redis_namespace=redis_namespace
    )
    async with running(build_storage(storage_settings)) as storage_address:
        ingestion_settings = IngestionSettings(port=0, storage_addr=storage_address, detection_addr=None)
        async with (
            running(build_ingestion(ingestion_settings)) as ingestion_address,
            channel_to(ingestion_address) as ingestion_channel,
            channel_to(storage_address) as storage_channel,
        ):
            yield Pipeline(
                ingestion_address,
                storage_address,
                ingestion_service_pb2_grpc.IngestionServiceStub(ingestion_channel),
                storage_service_pb2_grpc.StorageServiceStub(storage_channel),
                ingestion_channel,
            )
