"""The NumPy-built binary COPY stream stores exactly what asyncpg's own record COPY stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np

from sentinel.storage.adapters.pgcopy import encode_samples

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def test_numpy_copy_payload_matches_copy_records_to_table(postgres_dsn: str) -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    series_id = rng.integers(1, 2**62, n, dtype=np.int64)
    time_micro = rng.integers(0, 9_000_000_000_000_000, n, dtype=np.int64)  # 1970 .. 2255
    value = rng.normal(0, 1e6, n)
    series_id[:3] = [1, 2**63 - 1, 5]
    time_micro[:3] = [
        0,
        946_684_800_000_000,
        946_684_799_999_999,
    ]  # Unix epoch, PostgreSQL epoch, just before
    value[:6] = [0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.5, 1 / 3]

    connection = await asyncpg.connect(postgres_dsn)
    try:
        for table in ("by_numpy", "by_records"):
            await connection.execute(
                f"CREATE TABLE {table} (n serial, series_id bigint, time timestamptz, value float8)"
            )
        await connection.copy_to_table(
            "by_numpy",
            source=memoryview(encode_samples(series_id, time_micro, value)),
            columns=["series_id", "time", "value"],
            format="binary",
        )
        records = [
            (int(s), EPOCH + timedelta(microseconds=int(t)), float(v))
            for s, t, v in zip(series_id, time_micro, value, strict=True)
        ]
        await connection.copy_records_to_table(
            "by_records", records=records, columns=["series_id", "time", "value"]
        )
        query = "SELECT series_id, time, value, value::text AS text FROM {} ORDER BY n"
        by_numpy = await connection.fetch(query.format("by_numpy"))
        by_records = await connection.fetch(query.format("by_records"))
    finally:
        await connection.close()
    assert [tuple(r) for r in by_numpy] == [tuple(r) for r in by_records]
    assert by_numpy[1]["text"] == "-0"  # bit-exact, sign of zero included
