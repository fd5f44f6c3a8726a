"""`make bench-ingest`: sample and event ingestion through the real services over loopback.

Starts storage and ingestion as processes on a fresh PostgreSQL database (SENTINEL_POSTGRES_DSN,
else SENTINEL_TEST_POSTGRES_DSN, else an embedded server) and Redis, then from separate client
processes:

1. peak: columnar batches of 1000 points, as fast as acknowledgements come back;
2. half: the same at half the measured peak rate, for the ack latency of a loaded, not saturated,
   service;
3. events: batches of 1000 flat telemetry events;

and, in the same run, the raw ceiling: the same rows written straight to PostgreSQL by binary COPY
from one process (bench/ingest_ceiling.py). Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import grpc
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from benchstores import BenchStores, bench_stores
from ingest_ceiling import measure as measure_copy_ceiling

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, telemetry_pb2
from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.wire import length_delimited

BATCH = 1000
SERIES = 100
SAMPLES_PATH = "/sentinel.api.ingestion.v1.IngestionService/WriteSamples"
EVENTS_PATH = "/sentinel.api.ingestion.v1.IngestionService/IngestEvents"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_request_factory(worker: int) -> tuple[bytes, int]:
    """Columns serialised once; each request only prepends its own batch id (cheap for the client)."""
    rng = np.random.default_rng(worker)
    now = time.time_ns()
    columns = common_pb2.SampleBatch(
        series=[
            common_pb2.SeriesKey(name="bench.latency_ms", labels={"shard": str(s)}) for s in range(SERIES)
        ],
        series_index=(np.arange(BATCH) % SERIES).tolist(),
        time_unix_nano=(now - np.arange(BATCH, dtype=np.int64)[::-1] * 1_000_000).tolist(),
        value=rng.gamma(2.0, 150.0, BATCH).tolist(),
    ).SerializeToString()
    return columns, BATCH


def event_request(worker: int, number: int) -> bytes:
    events = [
        telemetry_pb2.TelemetryEvent(
            flat=telemetry_pb2.FlatLlmEvent(
                model_name=f"model-{i % 4}", service_name=f"svc-{worker}", latency_ms=100.0 + i,
                prompt_tokens=100 + i, completion_tokens=50, cost_usd=0.001, request_id=f"{worker}-{number}-{i}",
            )
        )
        for i in range(BATCH)
    ]  # fmt: skip
    request = ingestion_service_pb2.IngestEventsRequest(batch_id=f"ev-{uuid.uuid4().hex}", events=events)
    return request.SerializeToString()


def client(address: str, kind: str, seconds: float, concurrency: int, rate: float, worker: int,
           results: mp.Queue) -> None:  # fmt: skip
    """One load process: `concurrency` callers; `rate` batches/s in total for this process (0 = open)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

    async def run() -> tuple[int, list[float], int]:
        channel = create_channel(address, traced=False)
        call = channel.unary_unary(SAMPLES_PATH if kind == "samples" else EVENTS_PATH)
        columns, points = sample_request_factory(worker)
        # Events are pre-built: building 1000 protobuf events costs the client more than the server.
        prebuilt = [event_request(worker, n) for n in range(32)] if kind == "events" else []
        latencies: list[float] = []
        acked = 0
        errors = 0
        deadline = time.perf_counter() + seconds
        interval = concurrency / rate if rate else 0.0

        async def caller(index: int) -> None:
            nonlocal acked, errors
            n = 0
            next_at = time.perf_counter() + (interval * index / concurrency if interval else 0)
            while time.perf_counter() < deadline:
                if interval:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                if kind == "samples":
                    batch_id = f"b-{worker}-{index}-{n}-{uuid.uuid4().hex[:8]}".encode()
                    payload = length_delimited(1, length_delimited(1, batch_id) + columns)
                else:
                    payload = prebuilt[n % len(prebuilt)]
                n += 1
                started = time.perf_counter()
                try:
                    await call(payload, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                acked += points if kind == "samples" else BATCH

        await asyncio.gather(*(caller(i) for i in range(concurrency)))
        await channel.close()
        return acked, latencies, errors

    results.put(asyncio.run(run()))


def load(address: str, kind: str, *, seconds: float, processes: int, concurrency: int, rate: float = 0.0
         ) -> dict[str, float]:  # fmt: skip
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    workers = [
        ctx.Process(target=client, args=(address, kind, seconds, concurrency, rate / processes, w, results))
        for w in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    acked = sum(r[0] for r in collected)
    latencies = np.array([x for r in collected for x in r[1]]) * 1000
    return {
        "acked": acked,
        "per_s": acked / seconds,
        "batches_per_s": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else float("nan"),
        "errors": sum(r[2] for r in collected),
        "wall_s": elapsed,
    }


class RssSampler:
    """Peak resident memory of the service processes, sampled every 100 ms."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.peak = dict.fromkeys(pids, 0.0)
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for name, proc in self._procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss / 2**20)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_service(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def wait_serving(address: str) -> None:
    channel = create_channel(address, traced=False)
    try:
        await wait_until_serving(channel, peer=address, timeout_s=120)
    finally:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=8, help="callers per client process")
    args = parser.parse_args()

    with bench_stores("bench_ingest") as stores:
        run_phases(args, stores)


def run_phases(args: argparse.Namespace, stores: BenchStores) -> None:
    """Start storage and ingestion on `stores`, run the phases, print the table and the JSON line."""
    work, dsn, redis_url, database = stores.work, stores.dsn, stores.redis_url, stores.database
    storage_port, ingestion_port = free_port(), free_port()
    base_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SENTINEL_POSTGRES_DSN": dsn,
                "SENTINEL_REDIS_URL": redis_url, "SENTINEL_REDIS_NAMESPACE": f"bench-{database}"}  # fmt: skip
    storage = start_service(
        "sentinel.storage", {**base_env, "SENTINEL_PORT": str(storage_port)}, work / "storage.log"
    )
    ingestion = start_service(
        "sentinel.ingestion",
        {**base_env, "SENTINEL_PORT": str(ingestion_port), "SENTINEL_STORAGE_ADDR": f"127.0.0.1:{storage_port}",
         "SENTINEL_DETECTION_ADDR": ""},
        work / "ingestion.log",
    )  # fmt: skip
    address = f"127.0.0.1:{ingestion_port}"
    try:
        asyncio.run(wait_serving(address))
        load(address, "samples", seconds=2, processes=1, concurrency=2)  # warm-up: partitions, caches

        async def stored() -> int:
            connection = await asyncpg.connect(dsn)
            count = await connection.fetchval("SELECT count(*) FROM samples")
            await connection.close()
            return int(count)

        with RssSampler({"ingestion": ingestion.pid, "storage": storage.pid}) as rss:
            before = asyncio.run(stored())
            peak = load(address, "samples", seconds=args.seconds, processes=args.processes,
                        concurrency=args.concurrency)  # fmt: skip
            stored_in_peak = asyncio.run(stored()) - before
            half = load(address, "samples", seconds=args.seconds, processes=args.processes,
                        concurrency=args.concurrency, rate=peak["batches_per_s"] / 2)  # fmt: skip
            events = load(address, "events", seconds=args.seconds, processes=args.processes,
                          concurrency=args.concurrency)  # fmt: skip
        ceiling = asyncio.run(measure_copy_ceiling(stores.admin_dsn, seconds=args.seconds, batch=BATCH,
                                                   btree=False, series=SERIES))  # fmt: skip
    finally:
        for process in (ingestion, storage):
            process.send_signal(signal.SIGTERM)
            process.wait(60)

    derived_per_event = 9  # flat events with latency, tokens and cost: see sentinel.ingestion.domain.derive
    ceiling_rate = float(ceiling["copy_ceiling_points_per_s"])
    figures = {
        "points_per_s": round(peak["per_s"]),
        "stored_points_per_s": round(stored_in_peak / args.seconds),
        "copy_ceiling_points_per_s": round(ceiling_rate),
        "ratio_to_ceiling": round(peak["per_s"] / ceiling_rate, 3),
        "p99_ack_ms": round(half["p99_ms"], 2),
        "events_per_s": round(events["per_s"]),
        "rss_mb": round(max(rss.peak.values()), 1),
    }
    rows = [
        ("samples, open loop (peak)", f"{peak['per_s']:,.0f} points/s", f"p50 {peak['p50_ms']:.1f} ms",
         f"p99 {peak['p99_ms']:.1f} ms", f"{peak['errors']} errors"),
        ("samples at half the peak rate", f"{half['per_s']:,.0f} points/s", f"p50 {half['p50_ms']:.1f} ms",
         f"p99 {half['p99_ms']:.1f} ms", f"{half['errors']} errors"),
        ("telemetry events (peak)", f"{events['per_s']:,.0f} events/s", f"p50 {events['p50_ms']:.1f} ms",
         f"p99 {events['p99_ms']:.1f} ms", f"{events['errors']} errors"),
        ("raw binary COPY, one process", f"{ceiling_rate:,.0f} points/s", "", "", ""),
    ]  # fmt: skip
    print(f"\nbench-ingest: batches of {BATCH} points over {SERIES} series, {args.processes} client processes x "
          f"{args.concurrency} callers, {args.seconds:.0f} s per phase, {os.cpu_count()} CPUs")  # fmt: skip
    for row in rows:
        print(f"  {row[0]:<32} {row[1]:>20} {row[2]:>14} {row[3]:>14} {row[4]:>10}")
    print(f"  peak phase: {peak['acked']:,.0f} points acknowledged, {stored_in_peak:,} stored "
          f"({stored_in_peak / args.seconds:,.0f}/s); each event derives ~{derived_per_event} points")  # fmt: skip
    print(f"  peak RSS: ingestion {rss.peak['ingestion']:.0f} MB, storage {rss.peak['storage']:.0f} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
