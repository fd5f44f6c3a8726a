"""`make bench-detect`: anomaly scoring through the real detection service over loopback.

Starts `python -m sentinel.detection` as a process (no storage, no incident-manager, no Redis: state
in memory only), then from separate client processes:

1. throughput: `--processes` x `--concurrency` callers, each sending ScoreSamples with columnar
   batches of its own `--series` series x `--points` points (times increasing), as fast as the
   answers come back, for `--seconds` after a warm-up that takes every series past its window;
2. latency: one caller, sequentially, one new point for each of 1000 series per call, p50/p99;
3. the engine alone, in the same run: the detection kernel (``StreamingScorer.score``) called in
   this process on the same series and call shape, no gRPC, no service (the ceiling the service
   can approach on one core; `ratio_to_engine` says how close it gets);
4. naive baseline, in the same run: a tiny gRPC server defined here (same proto) scoring with a
   per-series pure-Python rolling robust z-score over plain lists, one RPC per series point, under
   the same client setup.

Peak RSS of the detection process is sampled throughout. Prints a table and, as its last line, one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2, detection_service_pb2
from sentinel.detection.engine import EngineConfig, StreamingScorer
from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.wire import length_delimited

SERVICE_NAME = "sentinel.api.detection.v1.DetectionService"
SCORE_PATH = f"/{SERVICE_NAME}/ScoreSamples"
NS_PER_MIN = 60_000_000_000
LATENCY_SERIES = 1000
WINDOW = 256  # the engine's default ring buffer (EngineConfig.window); the naive scorer keeps the same
NAIVE_SERIES = 20  # series per naive caller (its warm-up is slow by construction)
_SINGLE_INDEX = b"\x1a\x04\x00\x00\x00\x00"  # SampleBatch.series_index = [0], packed fixed32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Batches:
    """ScoreSamples payloads for a fixed set of series, `points` consecutive points of each per call.

    The series table and series_index column are serialised once; each call only encodes its packed
    time and value columns with numpy (cheap for the client). Points are round-robin: the r-th point
    of every series before the (r+1)-th, one minute apart.
    """

    def __init__(self, tag: str, n_series: int, points: int, seed: int) -> None:
        self.n_series, self.points = n_series, points
        self.rng = np.random.default_rng(seed)
        self.base = (time.time_ns() // NS_PER_MIN - 100_000) * NS_PER_MIN
        self.step = 0
        self.table = [
            length_delimited(
                2,
                common_pb2.SeriesKey(
                    name="bench.latency_ms", labels={"caller": tag, "shard": str(s)}
                ).SerializeToString(),
            )
            for s in range(n_series)
        ]
        self.index = {
            p: length_delimited(3, np.tile(np.arange(n_series, dtype="<u4"), p).tobytes())
            for p in (1, points)
        }
        self.tag = tag

    def next(self, points: int | None = None) -> tuple[bytes, int]:
        """The next call for every series."""
        points = points or self.points
        steps = np.repeat(self.step + np.arange(points, dtype=np.int64), self.n_series)
        self.step += points
        times = (self.base + steps * NS_PER_MIN).astype("<i8")
        values = self.rng.gamma(20.0, 15.0, len(steps)).astype("<f8")
        batch = (
            length_delimited(1, f"{self.tag}-{self.step}".encode())
            + b"".join(self.table)
            + self.index[points]
            + length_delimited(4, times.tobytes())
            + length_delimited(5, values.tobytes())
        )
        return length_delimited(1, batch), len(steps)

    def single(self, series: int) -> bytes:
        """One point of one series (the naive client's call); advances that series only."""
        if series == 0:
            self.step += 1
        batch = (
            length_delimited(1, f"{self.tag}-{self.step}-{series}".encode())
            + self.table[series]
            + _SINGLE_INDEX
            + length_delimited(4, np.int64(self.base + self.step * NS_PER_MIN).astype("<i8").tobytes())
            + length_delimited(5, np.float64(self.rng.gamma(20.0, 15.0)).astype("<f8").tobytes())
        )  # fmt: skip
        return length_delimited(1, batch)


def throughput_client(address: str, mode: str, seconds: float, concurrency: int, n_series: int, points: int,
                      worker: int, barrier: Any, results: mp.Queue) -> None:  # fmt: skip
    """One load process: `concurrency` callers, each with its own series.

    mode "batch": every call holds `points` points of each of the caller's `n_series` series;
    mode "single": every call holds one point of one series (cycling through the caller's series).
    All callers first take their series past the window (batched), then the processes meet at the
    barrier and run for `seconds`.
    """
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

    async def run() -> tuple[int, int, float, int]:
        channel = create_channel(address, traced=False)
        call = channel.unary_unary(SCORE_PATH)
        callers = [
            Batches(f"{mode}-{worker}-{i}", n_series, points, seed=worker * 1000 + i)
            for i in range(concurrency)
        ]
        warm_calls = math.ceil((WINDOW + 8) / points)

        async def warm(batches: Batches) -> None:
            for _ in range(warm_calls):
                await call(batches.next()[0], timeout=120)

        await asyncio.gather(*(warm(b) for b in callers))
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
        started = time.perf_counter()
        deadline = started + seconds
        scored = calls = errors = 0

        async def caller(batches: Batches) -> None:
            nonlocal scored, calls, errors
            n = 0
            while time.perf_counter() < deadline:
                if mode == "batch":
                    payload, count = batches.next()
                else:
                    payload, count = batches.single(n % batches.n_series), 1
                n += 1
                try:
                    await call(payload, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                scored += count
                calls += 1

        await asyncio.gather(*(caller(b) for b in callers))
        elapsed = time.perf_counter() - started
        await channel.close()
        return scored, calls, elapsed, errors

    results.put(asyncio.run(run()))


def throughput(address: str, mode: str, *, seconds: float, processes: int, concurrency: int, n_series: int,
               points: int) -> dict[str, float]:  # fmt: skip
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    barrier = ctx.Barrier(processes)
    workers = [
        ctx.Process(target=throughput_client,
                    args=(address, mode, seconds, concurrency, n_series, points, w, barrier, results))
        for w in range(processes)
    ]  # fmt: skip
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=seconds + 600) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = max(r[2] for r in collected)
    scored = sum(r[0] for r in collected)
    return {
        "points": scored,
        "per_s": scored / elapsed,
        "calls_per_s": sum(r[1] for r in collected) / elapsed,
        "errors": sum(r[3] for r in collected),
    }


def latency_client(address: str, calls: int, results: mp.Queue) -> None:
    """One caller, sequential: one new point for each of 1000 series per call, after warm-up."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

    async def run() -> list[float]:
        channel = create_channel(address, traced=False)
        call = channel.unary_unary(SCORE_PATH)
        batches = Batches("latency", LATENCY_SERIES, 10, seed=7)
        for _ in range(math.ceil((WINDOW + 8) / 10)):
            await call(batches.next()[0], timeout=120)
        for _ in range(20):
            await call(batches.next(1)[0], timeout=60)
        latencies = []
        for _ in range(calls):
            payload = batches.next(1)[0]
            started = time.perf_counter()
            await call(payload, timeout=60)
            latencies.append(time.perf_counter() - started)
        await channel.close()
        return latencies

    results.put(asyncio.run(run()))


def latency(address: str, calls: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    worker = ctx.Process(target=latency_client, args=(address, calls, results))
    worker.start()
    lat = np.array(results.get(timeout=600)) * 1000
    worker.join()
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(lat.max()), "calls": len(lat)}  # fmt: skip


def engine_alone(seconds: float, callers: int, n_series: int, points: int) -> float:
    """Points/s of the kernel alone, one thread, on `callers` x `n_series` series, `points` per call."""
    scorer = StreamingScorer(EngineConfig(capacity=callers * n_series))
    rng = np.random.default_rng(11)
    base = (time.time_ns() // NS_PER_MIN - 100_000) * NS_PER_MIN
    steps = [0] * callers
    # Inputs made before the clock starts: only the engine is timed (values cycle through a pool).
    slots = [np.tile(np.arange(n_series) + c * n_series, points) for c in range(callers)]
    offsets = np.repeat(np.arange(points), n_series) * NS_PER_MIN
    values = rng.gamma(20.0, 15.0, (16, n_series * points))
    calls = 0

    def call(c: int) -> int:
        nonlocal calls
        times = base + steps[c] * NS_PER_MIN + offsets
        steps[c] += points
        calls += 1
        scorer.score(slots[c], times, values[calls % len(values)])
        return len(slots[c])

    for _ in range(math.ceil((WINDOW + 8) / points)):
        for c in range(callers):
            call(c)
    scored = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for c in range(callers):
            scored += call(c)
    return scored / (time.perf_counter() - started)


# --- naive baseline: per-series pure-Python rolling robust z-score, one RPC per point -------------


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


class NaiveScorer:
    """Rolling robust z-score per series: median and MAD of the last WINDOW values, plain lists."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}

    def score(self, key: tuple[str, tuple[tuple[str, str], ...]], value: float) -> tuple[float, float]:
        window = self.windows.setdefault(key, [])
        if len(window) < 8:
            score, baseline = 0.0, math.nan
        else:
            baseline = _median(sorted(window))
            mad = _median(sorted(abs(v - baseline) for v in window)) * 1.4826 or 1e-9
            z = abs(value - baseline) / mad
            score = 1.0 - math.exp(-z / 3.0)
        window.append(value)
        if len(window) > WINDOW:
            window.pop(0)
        return score, baseline


def naive_server(port: int) -> None:
    """Serve DetectionService.ScoreSamples with NaiveScorer, a Python loop over the points."""
    scorer = NaiveScorer()
    pb = detection_service_pb2

    async def score_samples(request: pb.ScoreSamplesRequest, context: object) -> pb.ScoreSamplesResponse:
        batch = request.batch
        keys = [(s.name, tuple(sorted(s.labels.items()))) for s in batch.series]
        scores, anomalous, baselines = [], [], []
        for index, value in zip(batch.series_index, batch.value, strict=True):
            score, baseline = scorer.score(keys[index], value)
            scores.append(score)
            anomalous.append(score >= 0.7)
            baselines.append(baseline)
        columns = detection_pb2.ScoreColumns(
            score=scores, is_anomaly=anomalous, baseline=baselines, threshold=0.7
        )
        return pb.ScoreSamplesResponse(batch_id=batch.batch_id, scores=columns)

    async def serve() -> None:
        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            score_samples,
            request_deserializer=pb.ScoreSamplesRequest.FromString,
            response_serializer=pb.ScoreSamplesResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE_NAME, {"ScoreSamples": handler})]
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(1)

    asyncio.run(serve())


# --- orchestration ----------------------------------------------------------------------------------


class RssSampler:
    """Peak resident memory of a process, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.peak = 0.0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._proc.memory_info().rss / 2**20)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def wait_serving(address: str) -> None:
    channel = create_channel(address, traced=False)
    try:
        await wait_until_serving(channel, peer=address, timeout_s=120)
    finally:
        await channel.close()


async def wait_connectable(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=60)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=8, help="callers per client process")
    parser.add_argument("--series", type=int, default=1000, help="series per caller (throughput phase)")
    parser.add_argument(
        "--points", type=int, default=10, help="points per series per call (throughput phase)"
    )
    parser.add_argument(
        "--latency-calls", type=int, default=500, help="sequential calls of the latency phase"
    )
    parser.add_argument("--naive-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server is not None:
        naive_server(args.naive_server)
        return

    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-detect-"))
    callers = args.processes * args.concurrency
    max_series = callers * args.series + LATENCY_SERIES + 1000
    detect_port, naive_port = free_port(), free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SENTINEL_PORT": str(detect_port),
           "SENTINEL_STORAGE_ADDR": "", "SENTINEL_INCIDENT_MANAGER_ADDR": "", "SENTINEL_MAX_SERIES": str(max_series)}  # fmt: skip
    env.pop("SENTINEL_REDIS_URL", None)
    detection = subprocess.Popen(
        [sys.executable, "-m", "sentinel.detection"], env=env, stdout=(work / "detection.log").open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    address = f"127.0.0.1:{detect_port}"
    naive = None
    try:
        with RssSampler(detection.pid) as rss:
            asyncio.run(wait_serving(address))
            peak = throughput(address, "batch", seconds=args.seconds, processes=args.processes,
                              concurrency=args.concurrency, n_series=args.series, points=args.points)  # fmt: skip
            lat = latency(address, args.latency_calls)
        stop(detection)
        # The naive server runs alone, like the real one: it gets the CPUs the detection process had.
        naive = subprocess.Popen(
            [sys.executable, __file__, "--naive-server", str(naive_port)], env=env,
            stdout=(work / "naive.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        naive_address = f"127.0.0.1:{naive_port}"
        asyncio.run(wait_connectable(naive_address))
        baseline = throughput(naive_address, "single", seconds=args.seconds, processes=args.processes,
                              concurrency=args.concurrency, n_series=NAIVE_SERIES, points=args.points)  # fmt: skip
    finally:
        for process in (detection, naive):
            if process is not None and process.poll() is None:
                stop(process)
    engine = engine_alone(args.seconds, callers, args.series, args.points)

    figures = {
        "points_per_s": round(peak["per_s"]),
        "p99_ms_1000_series": round(lat["p99_ms"], 2),
        "naive_points_per_s": round(baseline["per_s"]),
        "speedup": round(peak["per_s"] / baseline["per_s"], 1),
        "rss_mb": round(rss.peak, 1),
        "engine_points_per_s": round(engine),
        "ratio_to_engine": round(peak["per_s"] / engine, 2),
    }
    rows = [
        (f"ScoreSamples, {args.series} series x {args.points} points", f"{peak['per_s']:,.0f} points/s",
         f"{peak['calls_per_s']:,.1f} calls/s", f"{peak['errors']} errors"),
        (f"1 point x {LATENCY_SERIES} series, sequential", f"p50 {lat['p50_ms']:.2f} ms",
         f"p99 {lat['p99_ms']:.2f} ms", f"max {lat['max_ms']:.2f} ms"),
        ("engine alone, no gRPC, 1 thread", f"{engine:,.0f} points/s", "", ""),
        ("naive: 1 RPC per point, Python loop", f"{baseline['per_s']:,.0f} points/s",
         f"{baseline['calls_per_s']:,.1f} calls/s", f"{baseline['errors']} errors"),
    ]  # fmt: skip
    print(f"\nbench-detect: {args.processes} client processes x {args.concurrency} callers, each with its own "
          f"series, {args.seconds:.0f} s per throughput phase, {os.cpu_count()} CPUs")  # fmt: skip
    for row in rows:
        print(f"  {row[0]:<40} {row[1]:>22} {row[2]:>18} {row[3]:>14}")
    print(f"  speedup over the naive baseline: {figures['speedup']}x; {figures['ratio_to_engine']:.0%} of the "
          f"engine alone; latency over {lat['calls']} calls")  # fmt: skip
    print(f"  peak RSS of the detection process: {rss.peak:.0f} MB ({max_series:,} series capacity)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
