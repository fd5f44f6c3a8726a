"""Protobuf wire-format pieces for code that writes message bytes directly.

The hot paths hand NumPy columns to the wire as packed fields (`tobytes()`), which is much cheaper
than filling repeated fields element by element; these helpers frame such bytes. Concatenated
fields are a valid message (protobuf merges them), so a request can be assembled from parts.
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    """`n` (>= 0) as a base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """Field `field` (wire type 2: bytes, message or packed scalars) holding `payload`."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload
