"""When storage is slow, ingestion refuses with RESOURCE_EXHAUSTED instead of queueing without bound."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.ingestion.app import build_server
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.runtime.settings import ServiceSettings
from sentinel.testing.servers import channel_to, running


class SlowStorage(storage_service_pb2_grpc.StorageServiceServicer):
    """A storage peer that takes `delay_s` to commit each batch and counts what it committed."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.committed: list[str] = []

    async def WriteSamples(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(self.delay_s)
        self.committed.append(request.batch.batch_id)
        return storage_service_pb2.WriteSamplesResponse(
            points_written=len(request.batch.value), batch_id=request.batch.batch_id
        )


def storage_server(servicer: SlowStorage) -> Server:
    name = storage_service_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name
    return Server(
        name="slow-storage",
        settings=ServiceSettings(port=0),
        services=[
            ServiceRegistration(
                name, lambda s: storage_service_pb2_grpc.add_StorageServiceServicer_to_server(servicer, s)
            )
        ],
    )


def request(number: int) -> ingestion_service_pb2.WriteSamplesRequest:
    return ingestion_service_pb2.WriteSamplesRequest(
        batch=common_pb2.SampleBatch(
            batch_id=f"bp-{number}", series=[common_pb2.SeriesKey(name="bp.metric")],
            series_index=[0], time_unix_nano=[time.time_ns()], value=[1.0],
        )
    )  # fmt: skip


async def test_slow_storage_gets_resource_exhausted_and_nothing_acknowledged_is_lost() -> None:
    storage = SlowStorage(delay_s=0.5)
    async with running(storage_server(storage)) as storage_address:
        settings = IngestionSettings(
            port=0, storage_addr=storage_address, detection_addr=None, max_inflight_writes=2,
            backpressure_wait_s=0.05,
        )  # fmt: skip
        async with running(build_server(settings)) as address, channel_to(address) as channel:
            stub = ingestion_service_pb2_grpc.IngestionServiceStub(channel)
            results = await asyncio.gather(
                *(stub.WriteSamples(request(n)) for n in range(8)), return_exceptions=True
            )

    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    acknowledged = [r.batch_id for r in results if not isinstance(r, BaseException)]
    assert len(acknowledged) == 2, "only as many batches as write slots are taken"
    assert len(refused) == 6
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "retry with backoff" in refused[0].details()
    assert sorted(acknowledged) == sorted(storage.committed)


async def test_a_storage_outage_longer_than_the_deadline_is_unavailable_not_a_silent_drop() -> None:
    storage = SlowStorage(delay_s=0)
    async with running(storage_server(storage)) as storage_address:
        settings = IngestionSettings(port=0, storage_addr=storage_address, detection_addr=None)
        server = build_server(settings)
        async with running(server) as address, channel_to(address) as channel:
            stub = ingestion_service_pb2_grpc.IngestionServiceStub(channel)
            assert (await stub.WriteSamples(request(1))).batch_id == "bp-1"
            storage.delay_s = 5
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.WriteSamples(request(2), timeout=1.0)

    assert raised.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
