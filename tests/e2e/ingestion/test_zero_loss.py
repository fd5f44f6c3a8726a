"""Zero loss: storage is SIGKILLed and restarted while a client streams 200k points with retries."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import asyncpg
import grpc
import numpy as np

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from sentinel.ingestion.app import build_server as build_ingestion
from sentinel.ingestion.settings import IngestionSettings
from sentinel.runtime.channels import call_with_retry, create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.testing.servers import running

POINTS = 200_000
BATCH = 1_000
SERIES = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_storage(port: int, postgres_dsn: str, redis_url: str, namespace: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SENTINEL_PORT": str(port),
        "SENTINEL_POSTGRES_DSN": postgres_dsn,
        "SENTINEL_REDIS_URL": redis_url,
        "SENTINEL_REDIS_NAMESPACE": namespace,
        "SENTINEL_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "sentinel.storage"], env=env)


def batch(number: int) -> ingestion_service_pb2.WriteSamplesRequest:
    first = number * BATCH
    values = np.arange(first, first + BATCH, dtype=np.float64)
    now = time.time_ns()
    return ingestion_service_pb2.WriteSamplesRequest(
        batch=common_pb2.SampleBatch(
            batch_id=f"zero-loss-{number}",
            series=[common_pb2.SeriesKey(name="zl.metric", labels={"shard": str(s)}) for s in range(SERIES)],
            series_index=(values.astype(np.int64) % SERIES).tolist(),
            # Unique (series, time) per point: the point number is the microsecond offset.
            time_unix_nano=(now - 3_600_000_000_000 + values.astype(np.int64) * 1000).tolist(),
            value=values.tolist(),
        )
    )


async def test_every_acknowledged_point_is_stored_exactly_once_across_a_storage_crash(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    storage_port = free_port()
    storage = start_storage(storage_port, postgres_dsn, redis_url, redis_namespace)
    storage_address = f"127.0.0.1:{storage_port}"
    settings = IngestionSettings(
        port=0, storage_addr=storage_address, detection_addr=None, default_deadline_s=5
    )
    acknowledged: set[int] = set()
    killed_after = 0
    try:
        async with running(build_ingestion(settings)) as ingestion_address:
            channel = create_channel(ingestion_address)
            stub = ingestion_service_pb2_grpc.IngestionServiceStub(channel)
            retry = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                               grpc.StatusCode.DEADLINE_EXCEEDED})  # fmt: skip
            queue: asyncio.Queue[int] = asyncio.Queue()
            fifty_acknowledged = asyncio.Event()
            for number in range(POINTS // BATCH):
                queue.put_nowait(number)

            async def sender() -> None:
                while not queue.empty():
                    number = queue.get_nowait()
                    request = batch(number)
                    await call_with_retry(
                        lambda request=request: stub.WriteSamples(request, timeout=5),  # type: ignore[misc]
                        deadline_s=120,
                        retry_codes=retry,
                    )
                    acknowledged.add(number)
                    if len(acknowledged) == 50:
                        fifty_acknowledged.set()

            async def chaos() -> None:
                nonlocal storage, killed_after
                await fifty_acknowledged.wait()
                killed_after = len(acknowledged)
                storage.send_signal(signal.SIGKILL)
                storage.wait()
                await asyncio.sleep(0.5)
                storage = start_storage(storage_port, postgres_dsn, redis_url, redis_namespace)

            await asyncio.gather(chaos(), *(sender() for _ in range(4)))
            await channel.close()
            probe = create_channel(storage_address)
            await wait_until_serving(probe, peer="storage", timeout_s=30)
            await probe.close()
    finally:
        storage.send_signal(signal.SIGTERM)
        storage.wait(30)

    assert 50 <= killed_after < POINTS // BATCH, "the crash happened mid-stream"
    assert acknowledged == set(range(POINTS // BATCH))
    connection = await asyncpg.connect(postgres_dsn)
    try:
        total, distinct_values = await connection.fetchrow(
            "SELECT count(*), count(DISTINCT value) FROM samples"
        )
        lowest, highest = await connection.fetchrow("SELECT min(value), max(value) FROM samples")
    finally:
        await connection.close()
    assert (total, distinct_values) == (POINTS, POINTS)
    assert (lowest, highest) == (0, POINTS - 1)
