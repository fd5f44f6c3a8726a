"""The vectorised COPY encoder against a naive per-row struct.pack reference, and its inverse."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentinel.storage.adapters.pgcopy import (
    PG_EPOCH_OFFSET_US,
    decode_samples,
    encode_samples,
    unix_nanos_to_micros,
)


def naive_encode(series_id: list[int], time_micro: list[int], value: list[float]) -> bytes:
    """The COPY BINARY format as the PostgreSQL docs describe it, one row at a time."""
    out = bytearray(b"PGCOPY\n\xff\r\n\x00")
    out += struct.pack(">ii", 0, 0)
    for sid, t, v in zip(series_id, time_micro, value, strict=True):
        out += struct.pack(">h", 3)
        out += struct.pack(">iq", 8, sid)
        out += struct.pack(">iq", 8, t - PG_EPOCH_OFFSET_US)
        out += struct.pack(">id", 8, v)
    out += struct.pack(">h", -1)
    return bytes(out)


columns = st.integers(0, 300).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(1, 2**63 - 1)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 9_000_000_000_000_000)),
        hnp.arrays(np.float64, n, elements=st.floats(allow_nan=False, allow_infinity=False)),
    )
)


@given(columns)
def test_encoder_is_byte_identical_to_the_naive_reference(cols: tuple[np.ndarray, ...]) -> None:
    sid, t, v = cols
    assert encode_samples(sid, t, v) == naive_encode(sid.tolist(), t.tolist(), v.tolist())


@given(columns)
def test_decoding_the_payload_gives_the_columns_back(cols: tuple[np.ndarray, ...]) -> None:
    sid, t, v = cols
    back = decode_samples(encode_samples(sid, t, v))
    for original, decoded in zip(cols, back, strict=True):
        np.testing.assert_array_equal(original, decoded)


def test_an_empty_batch_is_header_and_trailer_only() -> None:
    empty = np.array([], dtype=np.int64)
    assert encode_samples(empty, empty, np.array([], dtype=np.float64)) == naive_encode([], [], [])


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        encode_samples(np.ones(2, np.int64), np.ones(1, np.int64), np.ones(2))


def test_nanoseconds_are_floored_to_postgres_microseconds() -> None:
    nanos = np.array([0, 999, 1_000, 1_772_409_600_123_456_789], dtype=np.int64)
    assert unix_nanos_to_micros(nanos).tolist() == [0, 0, 1, 1_772_409_600_123_456]
