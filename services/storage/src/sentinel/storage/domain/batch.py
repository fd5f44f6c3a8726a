"""Columnar sample batches (NumPy columns) and their validation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.partitions import NANOS_PER_DAY
from sentinel.storage.domain.series import SeriesKey, validate_series_key

MAX_POINTS = 100_000
MAX_SERIES = 100_000
MAX_BATCH_ID = 128
# Every day a batch touches is a partition to check (and maybe create): bound them.
MAX_DAYS_PER_BATCH = 366


@dataclass(frozen=True)
class SampleBatch:
    """One batch: a series table and three per-point columns of equal length.

    Attributes:
        batch_id: idempotency id; empty means "derive one from the content".
        series: the series table.
        series_index: (n,) uint32 index into `series` per point.
        time_unix_nano: (n,) int64 nanoseconds since the Unix epoch per point.
        value: (n,) float64 per point; must be finite.
    """

    batch_id: str
    series: tuple[SeriesKey, ...]
    series_index: npt.NDArray[np.uint32]
    time_unix_nano: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.value)


def validate_batch(batch: SampleBatch) -> None:
    """Check a batch, vectorised over its points.

    Raises:
        InvalidArgumentError: naming the first offending field and index, e.g.
            `batch.value[17]: must be finite`, `batch.series[2].name: must not be empty`.
    """
    if len(batch.batch_id) > MAX_BATCH_ID:
        raise InvalidArgumentError("batch.batch_id", f"must be at most {MAX_BATCH_ID} characters")
    n = len(batch.value)
    for field, column in (("series_index", batch.series_index), ("time_unix_nano", batch.time_unix_nano)):
        if len(column) != n:
            raise InvalidArgumentError(
                f"batch.{field}",
                f"has {len(column)} points but batch.value has {n}; every column must have the same length",
            )
    if n > MAX_POINTS:
        raise InvalidArgumentError("batch.value", f"has {n} points; at most {MAX_POINTS} per batch")
    if len(batch.series) > MAX_SERIES:
        raise InvalidArgumentError("batch.series", f"has {len(batch.series)} series; at most {MAX_SERIES}")
    if n and not batch.series:
        raise InvalidArgumentError("batch.series", "must not be empty when the batch has points")
    for i, key in enumerate(batch.series):
        validate_series_key(key, f"batch.series[{i}]")
    if n == 0:
        return
    _first_bad(
        batch.series_index >= len(batch.series),
        "batch.series_index",
        f"out of range: the batch has {len(batch.series)} series",
    )
    _first_bad(~np.isfinite(batch.value), "batch.value", "must be finite")
    _first_bad(batch.time_unix_nano < 0, "batch.time_unix_nano", "must not be before 1970-01-01 (Unix epoch)")
    days = np.unique(batch.time_unix_nano // NANOS_PER_DAY)
    if len(days) > MAX_DAYS_PER_BATCH:
        raise InvalidArgumentError(
            "batch.time_unix_nano", f"spans {len(days)} days; at most {MAX_DAYS_PER_BATCH} per batch"
        )


def _first_bad(mask: npt.NDArray[np.bool_], field: str, problem: str) -> None:
    if mask.any():
        raise InvalidArgumentError(f"{field}[{int(np.argmax(mask))}]", problem)


def derive_batch_id(batch: SampleBatch) -> str:
    """A content-derived id for a batch sent without one: the same content gives the same id."""
    digest = hashlib.sha256()
    for key in batch.series:
        digest.update(repr((key.name, key.labels)).encode("utf-8"))
        digest.update(b"\x00")
    for column in (
        batch.series_index.astype("<u4"),
        batch.time_unix_nano.astype("<i8"),
        batch.value.astype("<f8"),
    ):
        digest.update(np.ascontiguousarray(column).tobytes())
    return "sha256:" + digest.hexdigest()[:48]
