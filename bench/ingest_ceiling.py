"""Raw ceiling of sample writes: binary COPY built from NumPy, straight into PostgreSQL.

The same rows and the same statements the storage service uses (one transaction per batch:
the ingest_batches row, then COPY into the partitioned `samples`), from one process, without
gRPC. `make bench-ingest` compares the service's stored points/s with this figure.

    python bench/ingest_ceiling.py [--seconds 10] [--batch 1000] [--btree] [--dsn DSN]

Without --dsn it starts an embedded PostgreSQL in a temporary directory. Prints one JSON object
as the last line: {"copy_ceiling_points_per_s": N, "batch": N, "btree": bool, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np

from sentinel.storage.adapters.migrations import migrate
from sentinel.storage.adapters.pgcopy import encode_samples

DAY0_US = 1_772_409_600 * 1_000_000  # 2026-03-02 UTC


async def measure(dsn: str, *, seconds: float, batch: int, btree: bool, series: int) -> dict[str, object]:
    admin = await asyncpg.connect(dsn)
    database = f"bench_copy_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    bench_dsn = urlunsplit(urlsplit(dsn)._replace(path="/" + database))
    try:
        pool = await asyncpg.create_pool(bench_dsn, min_size=1, max_size=1)
        await migrate(pool)
        await pool.close()
        connection = await asyncpg.connect(bench_dsn)
        await connection.execute(
            "CREATE TABLE samples_p20260302 PARTITION OF samples "
            "FOR VALUES FROM ('2026-03-02 00:00+00') TO ('2026-03-03 00:00+00')"
        )
        if btree:
            await connection.execute("CREATE INDEX samples_series_time_idx ON samples (series_id, time)")
        rng = np.random.default_rng(0)
        rows = 0
        batches = 0
        encode_s = 0.0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            series_id = rng.integers(1, series + 1, batch).astype(np.int64)
            time_us = DAY0_US + (batches * batch + np.arange(batch, dtype=np.int64)) * 1_000
            value = rng.normal(size=batch)
            t0 = time.perf_counter()
            payload = memoryview(encode_samples(series_id, time_us, value))
            encode_s += time.perf_counter() - t0
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO ingest_batches (tenant_id, batch_id, point_count) VALUES ($1, $2, $3)",
                    "bench",
                    f"b{batches}",
                    batch,
                )
                await connection.copy_to_table(
                    "samples", source=payload, columns=["series_id", "time", "value"], format="binary"
                )
            rows += batch
            batches += 1
        elapsed = time.perf_counter() - started
        await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return {
        "copy_ceiling_points_per_s": round(rows / elapsed),
        "batch": batch,
        "btree": btree,
        "rows": rows,
        "seconds": round(elapsed, 2),
        "encode_us_per_row": round(encode_s / rows * 1e6, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--btree", action="store_true", help="add a btree (series_id, time) on samples")
    parser.add_argument("--dsn", help="PostgreSQL admin DSN; default: an embedded server")
    args = parser.parse_args()

    async def run(dsn: str) -> dict[str, object]:
        return await measure(
            dsn, seconds=args.seconds, batch=args.batch, btree=args.btree, series=args.series
        )

    if args.dsn:
        figures = asyncio.run(run(args.dsn))
    else:
        from sentinel.runtime.embedded import start_embedded_postgres

        with tempfile.TemporaryDirectory() as work:
            server = start_embedded_postgres(Path(work) / "postgres")
            try:
                figures = asyncio.run(run(server.dsn))
            finally:
                server.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
