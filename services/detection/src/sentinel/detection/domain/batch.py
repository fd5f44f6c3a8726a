"""Columnar scoring requests (NumPy columns), their validation and the out-of-order check."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentinel.detection.domain.series import SeriesKey, validate_series_key
from sentinel.runtime.errors import InvalidArgumentError

MAX_POINTS = 100_000
MAX_SERIES_POINTS = 1_000_000
MAX_BATCH_ID = 128

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class OutOfOrder(enum.Enum):
    """What streaming scoring does with a point older than its series' last scored time."""

    REJECT = "reject"
    SKIP = "skip"


@dataclass(frozen=True)
class ScoreRequest:
    """One batch to score against live state.

    Attributes:
        batch_id: idempotency id; empty means no retry protection.
        series: the series table.
        series_index: (n,) int64 index into `series` per point.
        time_unix_nano: (n,) int64 per point.
        value: (n,) float64 per point; must be finite.
    """

    batch_id: str
    series: tuple[SeriesKey, ...]
    series_index: IntArray
    time_unix_nano: IntArray
    value: FloatArray
    out_of_order: OutOfOrder = OutOfOrder.REJECT
    report_anomalies: bool = False
    include_detector_scores: bool = False
    keys_valid: bool = False
    """Every key of `series` is known to pass `validate_series_key` (checked when first seen)."""

    def __len__(self) -> int:
        return len(self.value)


def _first(mask: BoolArray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def invalid_point(field: str, index: int, problem: str, reason: str) -> InvalidArgumentError:
    """INVALID_ARGUMENT naming `field[index]`, with ErrorInfo metadata "index"."""
    return InvalidArgumentError(f"{field}[{index}]", problem, reason=reason, metadata={"index": str(index)})


def validate_request(request: ScoreRequest) -> None:
    """Check a scoring request as a whole (vectorised over its points).

    Raises:
        InvalidArgumentError: with the reasons of the contract (COLUMN_LENGTH_MISMATCH,
            BATCH_TOO_LARGE, INVALID_SERIES_KEY, SERIES_INDEX_OUT_OF_RANGE, NON_FINITE_VALUE).
    """
    if len(request.batch_id) > MAX_BATCH_ID:
        raise InvalidArgumentError("batch.batch_id", f"must be at most {MAX_BATCH_ID} characters")
    n = len(request.value)
    for field, column in (
        ("series_index", request.series_index),
        ("time_unix_nano", request.time_unix_nano),
    ):
        if len(column) != n:
            raise InvalidArgumentError(
                f"batch.{field}",
                f"has {len(column)} points but batch.value has {n}; every column must have the same length",
                reason="COLUMN_LENGTH_MISMATCH",
            )
    if n > MAX_POINTS:
        raise InvalidArgumentError(
            "batch.value", f"has {n} points; at most {MAX_POINTS} per request", reason="BATCH_TOO_LARGE"
        )
    if not request.keys_valid:
        for i, key in enumerate(request.series):
            validate_series_key(key, f"batch.series[{i}]")
    if n == 0:
        return
    bad = _first(request.series_index >= len(request.series))
    if bad is not None:
        raise invalid_point(
            "batch.series_index",
            bad,
            f"out of range: the batch has {len(request.series)} series",
            "SERIES_INDEX_OUT_OF_RANGE",
        )
    bad = _first(~np.isfinite(request.value))
    if bad is not None:
        raise invalid_point("batch.value", bad, "must be finite", "NON_FINITE_VALUE")


def out_of_order(slots: IntArray, times: IntArray, last_time: IntArray) -> BoolArray:
    """Points older than their series' last time, counting earlier points of the same batch.

    Args:
        slots: (n,) series slot per point.
        times: (n,) int64 time per point.
        last_time: (n,) int64 last scored time of each point's series before this batch
            (``np.iinfo(np.int64).min`` for a new series).

    Returns:
        (n,) bool: True where ``time < max(last_time, times of earlier points of the series)``.
        Equal times are in order.
    """
    n = len(slots)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad
    order = np.argsort(slots, kind="stable")
    s, t, last = slots[order], times[order], last_time[order]
    start = np.ones(n, dtype=bool)
    start[1:] = s[1:] != s[:-1]
    # Fast path: every series' points are non-decreasing and start at or after its last time.
    decreasing = np.zeros(n, dtype=bool)
    decreasing[1:] = (t[1:] < t[:-1]) & ~start[1:]
    early = start & (t < last)
    if not (decreasing.any() or early.any()):
        return bad
    # Slow path, only for the series that have a problem: a running maximum per series.
    troubled = np.unique(s[decreasing | early])
    for slot in troubled.tolist():
        where = order[s == slot]
        running = int(last_time[where[0]])
        for i in where.tolist():
            ti = int(times[i])
            if ti < running:
                bad[i] = True
            else:
                running = ti
    return bad
