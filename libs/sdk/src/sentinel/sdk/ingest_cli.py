"""`sentinel ingest FILE`: JSONL telemetry events (any accepted form) or CSV samples."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import struct_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc, telemetry_pb2
from sentinel.sdk.client import Endpoint, retrying
from sentinel.sdk.selectors import parse_selector


@dataclass
class Progress:
    """Counts for the progress line and the summary."""

    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    last_print: float = 0.0
    problems: list[str] = field(default_factory=list)

    def report(self, out: TextIO, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_print < 1.0:
            return
        self.last_print = now
        rate = self.rows / max(now - self.started, 1e-9)
        out.write(
            f"\r{self.rows:,} rows sent, {self.accepted:,} accepted, {self.rejected:,} rejected, "
            f"{self.duplicates} duplicate batches ({rate:,.0f} rows/s)" + ("\n" if final else "")
        )
        out.flush()


def _events(path: Path, progress: Progress) -> Iterator[telemetry_pb2.TelemetryEvent]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                progress.rejected += 1
                progress.problems.append(f"line {number}: {exc}")
                continue
            event = telemetry_pb2.TelemetryEvent()
            event.json.CopyFrom(_struct(obj))
            yield event


def _struct(obj: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(obj)
    return struct


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _time_ns(text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1e6) * 1000
    # Epoch: seconds, milliseconds or nanoseconds by magnitude.
    if number > 1e17:
        return int(number)
    if number > 1e11:
        return int(number * 1e6)
    return int(number * 1e9)


def _sample_batches(
    path: Path, series: str | None, size: int, progress: Progress
) -> Iterator[common_pb2.SampleBatch]:
    """CSV with `timestamp,value` (+ `series` column holding a selector, or --series for all rows)."""
    default_key = _series_key(series) if series else None
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise SystemExit(f"{path}: a CSV needs 'timestamp' and 'value' columns")
        if default_key is None and "series" not in reader.fieldnames:
            raise SystemExit(f"{path}: no 'series' column: pass --series NAME{{label=\"v\"}}")
        for rows in _chunks(iter(reader), size):
            batch = common_pb2.SampleBatch()
            index_of: dict[str, int] = {}
            for number, row in enumerate(rows):
                try:
                    key_text = row.get("series") or ""
                    if default_key is not None and not key_text:
                        key = default_key
                        key_text = series or ""
                    else:
                        key = _series_key(key_text)
                    if key_text not in index_of:
                        index_of[key_text] = len(batch.series)
                        batch.series.append(key)
                    value = float(row["value"])
                    time_ns = _time_ns(row["timestamp"])
                except (ValueError, KeyError, TypeError) as exc:
                    progress.rejected += 1
                    progress.problems.append(f"row {progress.rows + number + 2}: {exc}")
                    continue
                batch.series_index.append(index_of[key_text])
                batch.time_unix_nano.append(time_ns)
                batch.value.append(value)  # NaN/inf are the server's to reject, by index
            yield batch


def _series_key(selector: str) -> common_pb2.SeriesKey:
    name, matchers = parse_selector(selector)
    if not name or any(m.op != "=" for m in matchers):
        raise ValueError(f"a series needs a name and only '=' labels: {selector!r}")
    return common_pb2.SeriesKey(name=name, labels={m.label: m.value for m in matchers})


async def run_ingest(
    path: Path, endpoint: Endpoint, *, batch_size: int, series: str | None, concurrency: int, out: TextIO
) -> int:
    """Send the file in batches (several in flight); each batch retried until acknowledged."""
    progress = Progress()
    is_csv = path.suffix.lower() == ".csv"
    channel = endpoint.channel()
    stub = ingestion_service_pb2_grpc.IngestionServiceStub(channel)
    slots = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def send(request: Any, rows: int) -> None:
        try:
            response: Any = await retrying(
                (lambda: stub.WriteSamples(request, metadata=endpoint.metadata, timeout=30))
                if is_csv
                else (lambda: stub.IngestEvents(request, metadata=endpoint.metadata, timeout=30))
            )
            progress.accepted += response.accepted_count
            progress.rejected += len(response.rejected_rows)
            progress.duplicates += int(response.duplicate)
            for error in response.rejected_rows[:3]:
                progress.problems.append(
                    f"batch {response.batch_id}: row {error.index}.{error.field}: {error.reason}"
                )
        except grpc.aio.AioRpcError as exc:
            failures.append(f"{exc.code().name}: {exc.details()}")
            progress.rejected += rows
        finally:
            slots.release()
        progress.report(out)

    requests: Iterator[tuple[Any, int]]
    if is_csv:
        requests = (
            (ingestion_service_pb2.WriteSamplesRequest(batch=batch), len(batch.value))
            for batch in _sample_batches(path, series, batch_size, progress)
        )
    else:
        requests = (
            (ingestion_service_pb2.IngestEventsRequest(events=chunk), len(chunk))
            for chunk in _chunks(_events(path, progress), batch_size)
        )
    tasks = []
    try:
        for request, rows in requests:
            await slots.acquire()
            progress.rows += rows
            progress.batches += 1
            tasks.append(asyncio.create_task(send(request, rows)))
        await asyncio.gather(*tasks)
    finally:
        await channel.close()
    progress.report(out, final=True)
    for problem in (progress.problems + failures)[:10]:
        print(f"  {problem}", file=sys.stderr)
    return 1 if failures else 0
