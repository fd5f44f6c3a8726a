"""The wire helpers agree with protobuf's own encoding."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sentinel.api.common.v1 import common_pb2
from sentinel.runtime.wire import length_delimited, varint


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_is_base_128_with_continuation_bits_and_no_padding(n: int) -> None:
    encoded = varint(n)
    decoded, shift = 0, 0
    for position, byte in enumerate(encoded):
        decoded |= (byte & 0x7F) << shift
        shift += 7
        assert (byte & 0x80 != 0) == (position < len(encoded) - 1)
    assert decoded == n
    assert len(encoded) == max(1, -(-n.bit_length() // 7))


@given(st.text(max_size=300), st.lists(st.floats(allow_nan=False), max_size=50))
def test_hand_framed_fields_parse_as_the_message(name: str, values: list[float]) -> None:
    key = length_delimited(1, name.encode())
    assert common_pb2.SeriesKey.FromString(key) == common_pb2.SeriesKey(name=name)
    column = np.array(values, dtype="<f8").tobytes()
    batch = common_pb2.SampleBatch.FromString(length_delimited(5, column))
    assert list(batch.value) == values
