"""A storage service on real PostgreSQL and Redis, and a small client for its sample RPCs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2, storage_service_pb2_grpc
from sentinel.runtime.keys import TENANT_HEADER
from sentinel.storage.app import build_server
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running

# 2026-03-02 00:00:00 UTC: a day boundary, so tests know which partition a point lands in.
DAY0_NS = 1_772_409_600 * 1_000_000_000
SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS

SeriesSpec = tuple[str, Mapping[str, str]]


def metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_HEADER, tenant),)


def batch(
    series: Sequence[SeriesSpec],
    series_index: Iterable[int],
    time_unix_nano: Iterable[int],
    value: Iterable[float],
    batch_id: str = "",
) -> common_pb2.SampleBatch:
    return common_pb2.SampleBatch(
        batch_id=batch_id,
        series=[common_pb2.SeriesKey(name=name, labels=dict(labels)) for name, labels in series],
        series_index=list(series_index),
        time_unix_nano=list(time_unix_nano),
        value=list(value),
    )


def timestamp(unix_nano: int) -> Timestamp:
    return Timestamp(seconds=unix_nano // SECOND_NS, nanos=unix_nano % SECOND_NS)


def time_range(start_ns: int, end_ns: int) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=timestamp(start_ns), end_time=timestamp(end_ns))


def duration(nanos: int) -> Duration:
    return Duration(seconds=nanos // SECOND_NS, nanos=nanos % SECOND_NS)


def matcher(name: str, operator: str, value: str) -> common_pb2.LabelMatcher:
    operators = {
        "=": common_pb2.MATCH_OPERATOR_EQUAL,
        "!=": common_pb2.MATCH_OPERATOR_NOT_EQUAL,
        "=~": common_pb2.MATCH_OPERATOR_REGEX,
        "!~": common_pb2.MATCH_OPERATOR_NOT_REGEX,
    }
    return common_pb2.LabelMatcher(name=name, operator=operators[operator], value=value)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@dataclass
class Storage:
    """A running storage service and a stub, with helpers that act for a tenant."""

    address: str
    stub: storage_service_pb2_grpc.StorageServiceStub
    settings: StorageSettings

    async def write(
        self, sample_batch: common_pb2.SampleBatch, tenant: str = "acme"
    ) -> storage_service_pb2.WriteSamplesResponse:
        return await self.stub.WriteSamples(
            storage_service_pb2.WriteSamplesRequest(batch=sample_batch), metadata=metadata(tenant)
        )

    async def query(self, tenant: str = "acme", **fields: Any) -> storage_service_pb2.QuerySamplesResponse:
        return await self.stub.QuerySamples(
            storage_service_pb2.QuerySamplesRequest(**fields), metadata=metadata(tenant)
        )

    async def query_all(self, tenant: str = "acme", **fields: Any) -> list[resources_pb2.SeriesResult]:
        """Every page, with the pieces of a series split across pages concatenated."""
        merged: dict[str, resources_pb2.SeriesResult] = {}
        token = ""
        pages = 0
        while True:
            page = await self.query(tenant, page_token=token, **fields)
            pages += 1
            for result in page.results:
                into = merged.setdefault(
                    result.series_id,
                    resources_pb2.SeriesResult(series=result.series, series_id=result.series_id),
                )
                into.time_unix_nano.extend(result.time_unix_nano)
                into.value.extend(result.value)
            token = page.next_page_token
            if not token:
                break
            assert pages < 10_000
        return list(merged.values())

    async def list_series(
        self, tenant: str = "acme", **fields: Any
    ) -> storage_service_pb2.ListSeriesResponse:
        return await self.stub.ListSeries(
            storage_service_pb2.ListSeriesRequest(**fields), metadata=metadata(tenant)
        )


def storage_settings(
    postgres_dsn: str, redis_url: str, redis_namespace: str, **values: Any
) -> StorageSettings:
    return StorageSettings(
        port=0,
        postgres_dsn=postgres_dsn,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        **{"maintenance_interval_s": 0.1, **values},
    )


@pytest.fixture
async def storage(postgres_dsn: str, redis_url: str, redis_namespace: str) -> AsyncIterator[Storage]:
    settings = storage_settings(postgres_dsn, redis_url, redis_namespace)
    async with running(build_server(settings)) as address, channel_to(address) as channel:
        yield Storage(address, storage_service_pb2_grpc.StorageServiceStub(channel), settings)
