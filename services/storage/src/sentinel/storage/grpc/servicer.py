"""StorageService servicer: glue between gRPC and the storage use cases."""

from __future__ import annotations

from typing import Any

import grpc

from sentinel.api.storage.v1 import storage_service_pb2 as pb
from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.runtime.auth import current_tenant
from sentinel.runtime.pending import pending_rpcs
from sentinel.storage.grpc import convert
from sentinel.storage.grpc.incident_servicer import IncidentRecordsRpcs
from sentinel.storage.service import StorageService
from sentinel.storage.service_incidents import IncidentRecordsService

SERVICE = pb.DESCRIPTOR.services_by_name["StorageService"]
Context = grpc.aio.ServicerContext[Any, Any]


@pending_rpcs(
    SERVICE,
    "every StorageService RPC is served: samples, anomalies and incident-manager's records",
)
class StorageServicer(IncidentRecordsRpcs, storage_service_pb2_grpc.StorageServiceServicer):
    """Answers StorageService."""

    def __init__(self, service: StorageService, records: IncidentRecordsService) -> None:
        self._service = service
        self._records = records

    async def WriteSamples(
        self, request: pb.WriteSamplesRequest, context: Context
    ) -> pb.WriteSamplesResponse:
        result = await self._service.write_samples(
            tenant=current_tenant(), batch=convert.sample_batch(request)
        )
        return convert.write_response(result)

    async def QuerySamples(
        self, request: pb.QuerySamplesRequest, context: Context
    ) -> pb.QuerySamplesResponse:
        page = await self._service.query_samples(tenant=current_tenant(), query=convert.sample_query(request))
        return convert.query_response(page)

    async def ListSeries(self, request: pb.ListSeriesRequest, context: Context) -> pb.ListSeriesResponse:
        page = await self._service.list_series(
            tenant=current_tenant(), listing=convert.series_listing(request)
        )
        return convert.list_response(page)

    async def ApplyRetention(
        self, request: pb.ApplyRetentionRequest, context: Context
    ) -> pb.ApplyRetentionResponse:
        outcome = await self._service.apply_retention(request=convert.retention_request(request))
        return convert.retention_response(outcome)

    async def WriteAnomalies(
        self, request: pb.WriteAnomaliesRequest, context: Context
    ) -> pb.WriteAnomaliesResponse:
        result = await self._service.write_anomalies(
            tenant=current_tenant(), anomalies=convert.anomaly_records(request)
        )
        return convert.write_anomalies_response(result)

    async def ListAnomalies(
        self, request: pb.ListAnomaliesRequest, context: Context
    ) -> pb.ListAnomaliesResponse:
        page = await self._service.list_anomalies(
            tenant=current_tenant(), listing=convert.anomaly_listing(request)
        )
        return convert.list_anomalies_response(page)
