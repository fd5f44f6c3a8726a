"""PostgreSQL binary COPY payloads built from NumPy columns, without per-row Python work.

The payload is the documented `COPY ... FROM STDIN (FORMAT binary)` stream: an 11-byte
signature, two int32 header words, one tuple per row and an int16 -1 trailer. Every tuple of
`samples (series_id bigint, time timestamptz, value float8)` has the same 38-byte layout, so
the rows are one big-endian structured array filled column by column.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # flags, extension length
TRAILER = (-1).to_bytes(2, "big", signed=True)

# Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 00:00:00 UTC).
PG_EPOCH_OFFSET_US = 946_684_800_000_000

SAMPLE_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("series_id_len", ">i4"),
        ("series_id", ">i8"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)
assert SAMPLE_ROW.itemsize == 38  # packed: no alignment padding between fields


def unix_nanos_to_micros(time_unix_nano: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Nanoseconds to PostgreSQL's resolution: floor to the microsecond (sub-µs digits are lost)."""
    return np.floor_divide(time_unix_nano, 1000)


def encode_samples(
    series_id: npt.NDArray[np.int64],
    time_unix_micro: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
) -> bytes:
    """The binary COPY stream of `samples (series_id, time, value)` rows.

    Args:
        series_id: (n,) int64 series ids.
        time_unix_micro: (n,) int64 microseconds since the Unix epoch.
        value: (n,) float64 values.

    Returns:
        Header, n tuples of 38 bytes, trailer.
    """
    n = len(series_id)
    if not (len(time_unix_micro) == n and len(value) == n):
        raise ValueError("columns differ in length")
    rows = np.empty(n, dtype=SAMPLE_ROW)
    rows["fields"] = 3
    rows["series_id_len"] = 8
    rows["series_id"] = series_id
    rows["time_len"] = 8
    rows["time"] = time_unix_micro - PG_EPOCH_OFFSET_US
    rows["value_len"] = 8
    rows["value"] = value
    return b"".join((HEADER, rows.tobytes(), TRAILER))


def decode_samples(
    payload: bytes,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Inverse of `encode_samples` (for tests and diagnostics): series ids, Unix µs, values.

    Raises:
        ValueError: not a binary COPY stream of samples rows.
    """
    if not payload.startswith(HEADER) or not payload.endswith(TRAILER):
        raise ValueError("not a binary COPY stream with an empty header extension")
    body = payload[len(HEADER) : len(payload) - len(TRAILER)]
    if len(body) % SAMPLE_ROW.itemsize:
        raise ValueError("truncated tuple")
    rows = np.frombuffer(body, dtype=SAMPLE_ROW)
    if len(rows) and not (
        (rows["fields"] == 3).all()
        and (rows["series_id_len"] == 8).all()
        and (rows["time_len"] == 8).all()
        and (rows["value_len"] == 8).all()
    ):
        raise ValueError("unexpected tuple layout")
    return (
        rows["series_id"].astype(np.int64),
        rows["time"].astype(np.int64) + PG_EPOCH_OFFSET_US,
        rows["value"].astype(np.float64),
    )
