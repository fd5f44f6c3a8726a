"""`sentinel detect --input-dir DIR --output-dir OUT`: score CSV series through the detection service.

Every `timestamp,value` CSV under DIR is streamed in time order through DetectionService
(ScoreSamples, in chunks, each file under its own series key so it starts from empty state) and
written to `OUT/<same relative path>` as `timestamp,value,anomaly_score` (NAB's result format).
Without `--target`, a detection service is started locally on a free loopback port (as a child
process: libraries never import a service) with no Redis, storage or incident-manager, and
stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import math
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2, detection_service_pb2, detection_service_pb2_grpc
from sentinel.runtime.peers import wait_until_serving
from sentinel.sdk.client import Endpoint, retrying

METRIC = "detect.value"


@dataclass(frozen=True)
class SeriesFile:
    """One input CSV: raw columns (written back unchanged) and parsed times and values."""

    relative: Path
    stamps: list[str]
    raw_values: list[str]
    times: list[int]
    values: list[float]


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the Unix epoch of an ISO-8601 timestamp (naive = UTC) or epoch seconds."""
    text = text.strip()
    try:
        return round(float(text) * 1e9)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def read_series(path: Path, root: Path) -> SeriesFile:
    """Read a CSV with `timestamp` and `value` columns."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.reader(fh) if row]
    header = [h.strip() for h in rows[0]]
    ti, vi = header.index("timestamp"), header.index("value")
    stamps = [row[ti] for row in rows[1:]]
    raw = [row[vi] for row in rows[1:]]
    values = []
    for v in raw:
        try:
            values.append(float(v))
        except ValueError:
            values.append(math.nan)
    return SeriesFile(path.relative_to(root), stamps, raw, [parse_time_ns(s) for s in stamps], values)


def read_all(root: Path) -> list[SeriesFile]:
    """Every CSV under `root`, in path order."""
    return [read_series(path, root) for path in sorted(root.rglob("*.csv"))]


def write_scores(path: Path, series: SeriesFile, scores: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for stamp, raw, score in zip(series.stamps, series.raw_values, scores, strict=True):
            writer.writerow([stamp, raw, f"{score:.6f}"])


async def score_file(
    stub: Any,
    endpoint: Endpoint,
    series: SeriesFile,
    *,
    run_id: str,
    batch_size: int,
) -> list[float]:
    """Stream one file in order under a series key unique to (file, run); returns a score per row.

    Rows without a finite value are not sent and score 0. Streaming scoring needs time order, so
    a row whose timestamp goes backwards (NAB's machine_temperature_system_failure.csv repeats
    an hour) is sent at the latest time seen so far (equal times are scored in input order); its
    row keeps its own timestamp in the output.
    """
    key = common_pb2.SeriesKey(name=METRIC, labels={"file": str(series.relative), "run": run_id})
    sendable = [i for i, v in enumerate(series.values) if math.isfinite(v)]
    scores = [0.0] * len(series.values)
    sent_times = list(itertools.accumulate(series.times, max))
    for number, at in enumerate(range(0, len(sendable), batch_size)):
        rows = sendable[at : at + batch_size]
        request = detection_service_pb2.ScoreSamplesRequest(
            batch=common_pb2.SampleBatch(
                batch_id=f"detect-{run_id}-{series.relative}-{number}"[-128:],
                series=[key],
                series_index=[0] * len(rows),
                time_unix_nano=[sent_times[i] for i in rows],
                value=[series.values[i] for i in rows],
            ),
            out_of_order_policy=detection_pb2.OUT_OF_ORDER_POLICY_SKIP,
        )
        response: Any = await retrying(_sender(stub, request, endpoint))
        for i, score in zip(rows, response.scores.score, strict=True):
            scores[i] = 0.0 if math.isnan(score) else score
    return scores


def _sender(
    stub: Any, request: detection_service_pb2.ScoreSamplesRequest, endpoint: Endpoint
) -> Callable[[], Awaitable[Any]]:
    return lambda: stub.ScoreSamples(request, metadata=endpoint.metadata, timeout=120)  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def local_detection(max_series: int, timeout_s: float = 120.0) -> AsyncIterator[str]:
    """A detection service on a free loopback port for the duration of the block."""
    port = _free_port()
    # Memory-only state, no peers, no auth, no metrics port: a private scorer for this run.
    dropped = ("SENTINEL_REDIS_URL", "SENTINEL_METRICS_PORT", "SENTINEL_API_KEYS", "SENTINEL_API_KEYS_FILE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        {
            "SENTINEL_HOST": "127.0.0.1",
            "SENTINEL_PORT": str(port),
            "SENTINEL_STORAGE_ADDR": "",
            "SENTINEL_INCIDENT_MANAGER_ADDR": "",
            "SENTINEL_MAX_SERIES": str(max_series),
            "SENTINEL_LOG_LEVEL": env.get("SENTINEL_LOG_LEVEL", "WARNING"),
            "OPENBLAS_NUM_THREADS": "1",
        }
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "sentinel.detection", env=env)
    address = f"127.0.0.1:{port}"
    try:
        channel = Endpoint(address).channel()
        try:
            await wait_until_serving(channel, peer=f"detection at {address}", timeout_s=timeout_s)
        finally:
            await channel.close()
        yield address
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_detect(
    input_dir: Path,
    output_dir: Path,
    *,
    endpoint: Endpoint | None,
    threshold: float | None = None,
    batch_size: int = 1000,
    concurrency: int = 16,
    out: TextIO = sys.stderr,
) -> int:
    """Score every CSV under `input_dir` into `output_dir`; returns the exit status."""
    series = await asyncio.to_thread(read_all, input_dir)
    if not series:
        out.write(f"sentinel detect: no *.csv under {input_dir}\n")
        return 1
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        if endpoint is None:
            address = await stack.enter_async_context(local_detection(max_series=max(len(series), 64)))
            endpoint = Endpoint(address)
        channel = endpoint.channel()
        stack.push_async_callback(channel.close)
        stub = detection_service_pb2_grpc.DetectionServiceStub(channel)
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(item: SeriesFile) -> None:
            nonlocal done
            async with gate:
                scores = await score_file(stub, endpoint, item, run_id=run_id, batch_size=batch_size)
            if threshold is not None:
                scores = [1.0 if s >= threshold else 0.0 for s in scores]
            write_scores(output_dir / item.relative, item, scores)
            done += 1
            out.write(f"\r{done}/{len(series)} files scored")
            out.flush()

        await asyncio.gather(*(one(item) for item in series))
    points = sum(len(s.values) for s in series)
    elapsed = time.monotonic() - started
    out.write(
        f"\n{len(series)} files, {points:,} points in {elapsed:.1f}s ({points / elapsed:,.0f} points/s)\n"
    )
    return 0
