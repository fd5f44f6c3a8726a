"""Composition root of the storage service."""

from __future__ import annotations

from datetime import timedelta

from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.runtime.clock import Clock, SystemClock
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.storage.adapters.incident_records import PostgresIncidentRecords
from sentinel.storage.adapters.postgres import (
    Database,
    Maintenance,
    PostgresAnomalies,
    PostgresSamples,
    PostgresSeriesIds,
)
from sentinel.storage.adapters.stores import Stores
from sentinel.storage.grpc.servicer import SERVICE, StorageServicer
from sentinel.storage.service import StorageService
from sentinel.storage.service_incidents import IncidentRecordsService
from sentinel.storage.settings import StorageSettings


def build_server(settings: StorageSettings, *, clock: Clock | None = None) -> Server:
    """Wire the storage service: stores opened (and migrated) before it reports SERVING."""
    clock = clock or SystemClock()
    stores = Stores(settings)
    database = Database(stores, acquire_timeout_s=settings.postgres_acquire_timeout_s)
    samples = PostgresSamples(database, clock=clock)
    service = StorageService(
        series_ids=PostgresSeriesIds(
            database, namespace=settings.redis_namespace, cache_size=settings.series_cache_size
        ),
        samples=samples,
        anomalies=PostgresAnomalies(database),
        clock=clock,
        samples_retention=(
            None
            if settings.samples_retention_days is None
            else timedelta(days=settings.samples_retention_days)
        ),
    )
    maintenance = Maintenance(
        samples,
        interval_s=settings.maintenance_interval_s,
        index_closed_partitions=settings.index_closed_partitions,
    )
    # RPCs of later issues are installed by @pending_rpcs, which mypy cannot see.
    records = IncidentRecordsService(records=PostgresIncidentRecords(database), clock=clock)
    servicer = StorageServicer(service, records)  # type: ignore[abstract]
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
        on_startup=[stores.open, maintenance.start],
        # Run in reverse: maintenance stops (and flushes) before the stores close.
        on_shutdown=[stores.close, maintenance.stop],
    )
