"""Retention drops whole old partitions only; series ids and partitions survive restarts and replicas."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
import redis.asyncio as redis

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2, storage_service_pb2_grpc
from sentinel.storage.app import build_server
from sentinel.testing.servers import channel_to, running

from .conftest import SECOND_NS, Storage, batch, error_info, metadata, storage_settings, time_range, timestamp

DAY_NS = 86_400 * SECOND_NS
TODAY_NS = int(time.time()) // 86_400 * 86_400 * SECOND_NS
SERIES = [("m", {"k": "v"})]
KEY = common_pb2.SeriesKey(name="m", labels={"k": "v"})


def day_name(day_ns: int) -> str:
    return "samples_p" + datetime.fromtimestamp(day_ns // SECOND_NS, UTC).strftime("%Y%m%d")


async def partitions(dsn: str) -> set[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'samples'::regclass"
        )
    finally:
        await connection.close()
    return {row["relname"] for row in rows}


def retention(cutoff_ns: int, dry_run: bool = False) -> storage_service_pb2.ApplyRetentionRequest:
    return storage_service_pb2.ApplyRetentionRequest(
        data=resources_pb2.RETENTION_DATA_SAMPLES, cutoff_time=timestamp(cutoff_ns), dry_run=dry_run
    )


async def test_retention_drops_only_partitions_that_end_before_the_cutoff(storage: Storage) -> None:
    days = [-10, -6, -5, 0]
    await storage.write(
        batch(SERIES, [0] * 4, [TODAY_NS + d * DAY_NS + SECOND_NS for d in days], [1, 2, 3, 4])
    )
    dsn = str(storage.settings.postgres_dsn)
    cutoff = TODAY_NS - 5 * DAY_NS + 12 * 3600 * SECOND_NS  # inside day -5: that partition straddles it

    listed = await storage.stub.ApplyRetention(retention(cutoff, dry_run=True))
    expected = [day_name(TODAY_NS - 10 * DAY_NS), day_name(TODAY_NS - 6 * DAY_NS)]
    assert [p.name for p in listed.dropped_partitions] == expected
    assert listed.dropped_partitions[0].time_range.start_time.ToNanoseconds() == TODAY_NS - 10 * DAY_NS
    assert listed.dropped_partitions[0].time_range.end_time.ToNanoseconds() == TODAY_NS - 9 * DAY_NS
    assert listed.dropped_partitions[0].size_bytes > 0
    assert await partitions(dsn) == {day_name(TODAY_NS + d * DAY_NS) for d in days}  # dry run kept all

    dropped = await storage.stub.ApplyRetention(retention(cutoff))
    assert [p.name for p in dropped.dropped_partitions] == expected
    assert await partitions(dsn) == {day_name(TODAY_NS - 5 * DAY_NS), day_name(TODAY_NS)}
    [result] = (
        await storage.query(series=KEY, time_range=time_range(TODAY_NS - 11 * DAY_NS, TODAY_NS + DAY_NS))
    ).results
    assert list(result.value) == [3, 4]
    assert list((await storage.stub.ApplyRetention(retention(cutoff))).dropped_partitions) == []  # idempotent

    # A late point for a dropped day recreates its partition on this replica.
    again = await storage.write(batch(SERIES, [0], [TODAY_NS - 10 * DAY_NS], [9.0]))
    assert again.points_written == 1


async def test_a_replica_writes_into_a_day_another_replica_dropped(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    settings = storage_settings(postgres_dsn, redis_url, redis_namespace)
    old = TODAY_NS - 20 * DAY_NS
    async with (
        running(build_server(settings)) as first,
        running(build_server(settings)) as second,
        channel_to(first) as first_channel,
        channel_to(second) as second_channel,
    ):
        writer = storage_service_pb2_grpc.StorageServiceStub(first_channel)
        sweeper = storage_service_pb2_grpc.StorageServiceStub(second_channel)
        request = storage_service_pb2.WriteSamplesRequest
        await writer.WriteSamples(request(batch=batch(SERIES, [0], [old], [1.0])), metadata=metadata("t"))
        dropped = await sweeper.ApplyRetention(retention(TODAY_NS - 10 * DAY_NS))
        assert [p.name for p in dropped.dropped_partitions] == [day_name(old)]
        # The writer still believes the partition exists: its COPY fails, it recreates and retries.
        response = await writer.WriteSamples(
            request(batch=batch(SERIES, [0], [old + 1000], [2.0])), metadata=metadata("t")
        )
        assert response.points_written == 1
    assert day_name(old) in await partitions(postgres_dsn)


async def test_data_not_stored_yet_is_failed_precondition(storage: Storage) -> None:
    for data in (resources_pb2.RETENTION_DATA_ROLLUPS, resources_pb2.RETENTION_DATA_ANOMALIES):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await storage.stub.ApplyRetention(
                storage_service_pb2.ApplyRetentionRequest(
                    data=data, cutoff_time=timestamp(TODAY_NS - 5 * DAY_NS)
                )
            )
        assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "no such data stored yet" in raised.value.details()
        assert error_info(raised.value).reason == "NO_SUCH_DATA"


async def test_points_older_than_the_retention_window_are_dropped_and_counted(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    settings = storage_settings(postgres_dsn, redis_url, redis_namespace, samples_retention_days=7)
    async with running(build_server(settings)) as address, channel_to(address) as channel:
        stub = storage_service_pb2_grpc.StorageServiceStub(channel)
        response = await stub.WriteSamples(
            storage_service_pb2.WriteSamplesRequest(
                batch=batch(
                    SERIES, [0, 0, 0], [TODAY_NS - 30 * DAY_NS, TODAY_NS - 8 * DAY_NS, TODAY_NS], [1, 2, 3]
                )
            )
        )
    assert (response.points_written, response.points_dropped) == (1, 2)
    assert await partitions(postgres_dsn) == {day_name(TODAY_NS)}


async def test_series_ids_survive_a_restart_through_redis_and_through_postgres(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    settings = storage_settings(postgres_dsn, redis_url, redis_namespace)
    series = [("m", {"host": f"h{i}"}) for i in range(20)]
    sample_batch = batch(series, range(20), [TODAY_NS] * 20, range(20))

    async def write_and_list(batch_id: str) -> tuple[int, dict[str, str]]:
        async with running(build_server(settings)) as address, channel_to(address) as channel:
            stub = storage_service_pb2_grpc.StorageServiceStub(channel)
            sample_batch.batch_id = batch_id
            written = await stub.WriteSamples(storage_service_pb2.WriteSamplesRequest(batch=sample_batch))
            listed = await stub.ListSeries(storage_service_pb2.ListSeriesRequest())
        return written.series_created, {s.series.labels["host"]: s.series_id for s in listed.series}

    created, ids = await write_and_list("first")
    assert created == 20 and len(ids) == 20

    client = redis.Redis.from_url(redis_url)
    try:
        [cache_key] = [key async for key in client.scan_iter(f"{redis_namespace}:series-ids:*")]
        assert await client.hlen(cache_key) == 20
        # A new instance resolves every id from Redis ...
        assert await write_and_list("second") == (0, ids)
        # ... and, with Redis emptied, from PostgreSQL, to the same ids.
        await client.delete(cache_key)
        assert await write_and_list("third") == (0, ids)
        assert await client.hlen(cache_key) == 20  # and Redis is filled again
    finally:
        await client.aclose()


async def test_closed_days_get_a_series_time_btree_and_today_does_not(storage: Storage) -> None:
    await storage.write(batch(SERIES, [0, 0], [TODAY_NS - 3 * DAY_NS, TODAY_NS + SECOND_NS], [1, 2]))
    connection = await asyncpg.connect(str(storage.settings.postgres_dsn))
    try:
        indexes: set[str] = set()
        for _ in range(100):  # built by the maintenance loop (every 0.1 s here)
            indexes = {r["indexname"] for r in await connection.fetch("SELECT indexname FROM pg_indexes")}
            if f"{day_name(TODAY_NS - 3 * DAY_NS)}_series_time_idx" in indexes:
                break
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    assert f"{day_name(TODAY_NS - 3 * DAY_NS)}_series_time_idx" in indexes
    assert f"{day_name(TODAY_NS)}_series_time_idx" not in indexes  # today's stays BRIN-only while written
