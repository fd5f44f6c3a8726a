"""A batch is stored once however often it is sent; tenants never see each other's series."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2

from .conftest import DAY0_NS, SECOND_NS, Storage, batch, matcher, time_range

SERIES = [("llm.latency_ms", {"service": "chat"}), ("llm.tokens", {"service": "chat"})]
RANGE = time_range(DAY0_NS, DAY0_NS + 3600 * SECOND_NS)


def some_batch(batch_id: str, n: int = 1000) -> common_pb2.SampleBatch:
    return batch(
        SERIES,
        [i % 2 for i in range(n)],
        [DAY0_NS + i * 1_000_000 for i in range(n)],
        [float(i) for i in range(n)],
        batch_id,
    )


async def stored_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM samples"))
    finally:
        await connection.close()


async def test_the_same_batch_sent_three_times_is_stored_once(storage: Storage) -> None:
    responses = [await storage.write(some_batch("batch-1")) for _ in range(3)]
    assert [(r.points_written, r.duplicate) for r in responses] == [(1000, False), (0, True), (0, True)]
    assert {r.batch_id for r in responses} == {"batch-1"}
    assert await stored_rows(str(storage.settings.postgres_dsn)) == 1000


async def test_ten_concurrent_writes_of_one_batch_store_it_once(storage: Storage) -> None:
    responses = await asyncio.gather(*(storage.write(some_batch("batch-c")) for _ in range(10)))
    assert sorted(r.duplicate for r in responses) == [False] + [True] * 9
    assert sum(r.points_written for r in responses) == 1000
    assert await stored_rows(str(storage.settings.postgres_dsn)) == 1000


async def test_a_batch_without_id_gets_a_content_id_and_is_deduplicated(storage: Storage) -> None:
    first = await storage.write(some_batch(""))
    again = await storage.write(some_batch(""))
    other = await storage.write(some_batch("", n=999))
    assert first.batch_id == again.batch_id != other.batch_id
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)


async def test_the_same_batch_id_in_two_tenants_is_two_batches(storage: Storage) -> None:
    a = await storage.write(some_batch("shared-id"), tenant="a")
    b = await storage.write(some_batch("shared-id"), tenant="b")
    assert (a.duplicate, b.duplicate) == (False, False)


async def test_concurrent_batches_creating_overlapping_series_agree_on_ids(storage: Storage) -> None:
    keys = [("m", {"k": str(i)}) for i in range(50)]

    async def write(order: list[int], batch_id: str) -> None:
        await storage.write(batch([keys[i] for i in order], range(50), [DAY0_NS] * 50, order, batch_id))

    await asyncio.gather(
        *(write(list(range(50))[::step], f"b{step}") for step in (1, -1)),
        write(list(range(25, 50)) + list(range(25)), "b-mid"),
    )
    listed = await storage.list_series(page_size=1000)
    assert len(listed.series) == 50


async def test_a_tenant_cannot_read_another_tenants_series(storage: Storage) -> None:
    await storage.write(some_batch("x"), tenant="tenant-a")
    mine = await storage.query(
        tenant="tenant-a",
        series=common_pb2.SeriesKey(name=SERIES[0][0], labels=SERIES[0][1]),
        time_range=RANGE,
    )
    [result] = mine.results
    assert len(result.value) == 500

    with pytest.raises(grpc.aio.AioRpcError) as by_key:
        await storage.query(
            tenant="tenant-b",
            series=common_pb2.SeriesKey(name=SERIES[0][0], labels=SERIES[0][1]),
            time_range=RANGE,
        )
    assert by_key.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as by_id:
        await storage.query(tenant="tenant-b", series_id=result.series_id, time_range=RANGE)
    assert by_id.value.code() is grpc.StatusCode.NOT_FOUND
    by_matchers = await storage.query(
        tenant="tenant-b",
        matchers=resources_pb2.SeriesMatchers(matchers=[matcher("service", "=", "chat")]),
        time_range=RANGE,
    )
    assert list(by_matchers.results) == []
    assert list((await storage.list_series(tenant="tenant-b")).series) == []
    assert len((await storage.list_series(tenant="tenant-a")).series) == 2


async def test_the_same_key_in_two_tenants_is_two_series(storage: Storage) -> None:
    a = await storage.write(some_batch("1"), tenant="a")
    b = await storage.write(some_batch("2"), tenant="b")
    assert (a.series_created, b.series_created) == (2, 2)
    ids_a = {s.series_id for s in (await storage.list_series(tenant="a")).series}
    ids_b = {s.series_id for s in (await storage.list_series(tenant="b")).series}
    assert not ids_a & ids_b
