"""Ingestion forwarding to detection, both wired to a real storage service (PostgreSQL, Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from sentinel.api.detection.v1 import detection_service_pb2_grpc
from sentinel.api.ingestion.v1 import ingestion_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.detection.app import build_server as build_detection
from sentinel.detection.settings import DetectionSettings
from sentinel.ingestion.app import build_server as build_ingestion
from sentinel.ingestion.settings import IngestionSettings
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running


@dataclass
class Pipeline:
    ingestion: ingestion_service_pb2_grpc.IngestionServiceStub
    detection: detection_service_pb2_grpc.DetectionServiceStub
    storage: storage_service_pb2_grpc.StorageServiceStub


@pytest.fixture
async def pipeline(postgres_dsn: str, redis_url: str, redis_namespace: str) -> AsyncIterator[Pipeline]:
    storage_settings = StorageSettings(
        port=0, postgres_dsn=postgres_dsn, redis_url=redis_url, redis_namespace=redis_namespace
    )
    async with running(build_storage(storage_settings)) as storage_address:
        detection_settings = DetectionSettings(
            port=0,
            storage_addr=storage_address,
            incident_manager_addr="",
            redis_url=redis_url,
            redis_namespace=redis_namespace,
            max_series=256,
        )
        async with running(build_detection(detection_settings)) as detection_address:
            ingestion_settings = IngestionSettings(
                port=0, storage_addr=storage_address, detection_addr=detection_address
            )
            async with (
                running(build_ingestion(ingestion_settings)) as ingestion_address,
                channel_to(ingestion_address) as ingestion_channel,
                channel_to(detection_address) as detection_channel,
                channel_to(storage_address) as storage_channel,
            ):
                yield Pipeline(
                    ingestion_service_pb2_grpc.IngestionServiceStub(ingestion_channel),
                    detection_service_pb2_grpc.DetectionServiceStub(detection_channel),
                    storage_service_pb2_grpc.StorageServiceStub(storage_channel),
                )
