"""API keys end to end: tenants authenticate to ingestion, ingestion to storage with a service key."""

from __future__ import annotations

import time

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2, storage_service_pb2_grpc
from sentinel.ingestion.app import build_server as build_ingestion
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.keys import hash_key
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running

SERVICE_KEY = "svc-" + "s" * 32
ACME_KEY = "acme-" + "a" * 32


async def test_tenant_keys_decide_where_data_lands_and_unknown_keys_are_refused(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    storage_settings = StorageSettings(
        port=0, postgres_dsn=postgres_dsn, redis_url=redis_url, redis_namespace=redis_namespace,
        api_keys=f"*:{hash_key(SERVICE_KEY)}",
    )  # fmt: skip
    async with running(build_storage(storage_settings)) as storage_address:
        ingestion_settings = IngestionSettings(
            port=0, storage_addr=storage_address, detection_addr=None,
            api_keys=f"acme:{hash_key(ACME_KEY)}", service_api_key=SERVICE_KEY,  # type: ignore[arg-type]
        )  # fmt: skip
        async with (
            running(build_ingestion(ingestion_settings)) as ingestion_address,
            channel_to(ingestion_address) as ingestion_channel,
            channel_to(storage_address) as storage_channel,
        ):
            ingestion = ingestion_service_pb2_grpc.IngestionServiceStub(ingestion_channel)
            storage = storage_service_pb2_grpc.StorageServiceStub(storage_channel)
            request = ingestion_service_pb2.WriteSamplesRequest(
                batch=common_pb2.SampleBatch(
                    batch_id="auth-1", series=[common_pb2.SeriesKey(name="auth.metric")],
                    series_index=[0], time_unix_nano=[time.time_ns()], value=[1.5],
                )
            )  # fmt: skip

            with pytest.raises(grpc.aio.AioRpcError) as no_key:
                await ingestion.WriteSamples(request)
            with pytest.raises(grpc.aio.AioRpcError) as wrong_key:
                await ingestion.WriteSamples(request, metadata=[("authorization", "Bearer nope")])
            written = await ingestion.WriteSamples(
                request, metadata=[("authorization", f"Bearer {ACME_KEY}")]
            )

            query = storage_service_pb2.QuerySamplesRequest(
                matchers=resources_pb2.SeriesMatchers(
                    matchers=[
                        common_pb2.LabelMatcher(
                            name="__name__", operator=common_pb2.MATCH_OPERATOR_EQUAL, value="auth.metric"
                        )
                    ]
                )
            )
            query.time_range.start_time.FromNanoseconds(time.time_ns() - 3600 * 10**9)
            as_acme = await storage.QuerySamples(
                query, metadata=[("authorization", f"Bearer {SERVICE_KEY}"), ("x-sentinel-tenant", "acme")]
            )
            as_other = await storage.QuerySamples(
                query, metadata=[("authorization", f"Bearer {SERVICE_KEY}"), ("x-sentinel-tenant", "other")]
            )
            with pytest.raises(grpc.aio.AioRpcError) as storage_without_key:
                await storage.QuerySamples(query, metadata=[("x-sentinel-tenant", "acme")])

    assert no_key.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert wrong_key.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert written.accepted_count == 1
    assert [list(r.value) for r in as_acme.results] == [[1.5]]
    assert list(as_other.results) == []
    assert storage_without_key.value.code() is grpc.StatusCode.UNAUTHENTICATED
