"""`sentinel ingest` and `sentinel query` against the real pipeline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


async def sentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "sentinel"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_ingest_jsonl_of_mixed_forms_then_query_them_back(pipeline: Any, tmp_path: Path) -> None:
    now = time.time()
    lines = []
    for i in range(2500):
        if i % 2:
            lines.append({"model_name": "gpt-4o", "service_name": "cli", "latency_ms": float(i),
                          "timestamp": now - 600 + i * 0.1})  # fmt: skip
        else:
            lines.append({"service_name": "cli", "model": "gpt-4o", "latency_ms": float(i),
                          "event_time": now - 600 + i * 0.1, "prompt": {"tokens": 3}})  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")

    ingested = await sentinel(
        "ingest", str(events), "--target", pipeline.ingestion_address, "--batch-size", "500"
    )
    again = await sentinel(
        "ingest", str(events), "--target", pipeline.ingestion_address, "--batch-size", "500"
    )
    queried = await sentinel(
        "query", 'llm.latency_ms{service="cli",model="gpt-4o"}', "--from", "-1h", "--to", "now",
        "--target", pipeline.storage_address, "--json",
    )  # fmt: skip

    assert ingested.returncode == 0, ingested.stderr
    assert "2,500 accepted, 1 rejected" in ingested.stderr
    assert "line 2501" in ingested.stderr
    assert "5 duplicate batches" in again.stderr, "re-sending the same file stores nothing twice"
    assert queried.returncode == 0, queried.stderr
    (result,) = [json.loads(line) for line in queried.stdout.splitlines()]
    assert sorted(point[1] for point in result["points"]) == [float(i) for i in range(2500)]


async def test_ingest_csv_samples_and_query_aggregated_by_step(pipeline: Any, tmp_path: Path) -> None:
    start = int(time.time()) // 60 * 60 - 3600
    rows = ["timestamp,value"] + [f"{start + i},{i % 60}" for i in range(3600)]
    samples = tmp_path / "samples.csv"
    samples.write_text("\n".join(rows) + "\n")

    ingested = await sentinel(
        "ingest", str(samples), "--series", 'disk.busy{host="db1"}', "--target", pipeline.ingestion_address
    )
    queried = await sentinel(
        "query", 'disk.busy{host="db1"}', "--from", str(start), "--to", str(start + 3600),
        "--step", "1m", "--agg", "max", "--target", pipeline.storage_address, "--json",
    )  # fmt: skip
    table = await sentinel(
        "query", "disk.busy", "--from", str(start), "--to", str(start + 120), "--step", "1m", "--agg", "avg",
        "--target", pipeline.storage_address,
    )  # fmt: skip

    assert ingested.returncode == 0, ingested.stderr
    assert "3,600 accepted, 0 rejected" in ingested.stderr
    (result,) = [json.loads(line) for line in queried.stdout.splitlines()]
    assert [point[1] for point in result["points"]] == [59.0] * 60
    assert table.returncode == 0, table.stderr
    assert 'disk.busy{host="db1"}  (2 points)' in table.stdout
    assert "29.5" in table.stdout


async def test_query_reports_a_bad_selector_clearly(pipeline: Any) -> None:
    bad = await sentinel("query", "llm.latency_ms{service=chat}", "--target", pipeline.storage_address)

    assert bad.returncode != 0
    assert "bad label matcher" in bad.stderr
