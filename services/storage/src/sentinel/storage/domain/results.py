"""What the storage use cases return."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentinel.storage.domain.partitions import Partition
from sentinel.storage.domain.series import SeriesKey


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one WriteSamples call."""

    batch_id: str
    points_written: int
    duplicate: bool = False
    points_dropped: int = 0
    series_created: int = 0


@dataclass(frozen=True)
class SeriesPoints:
    """Points of one series on one page, columnar, ordered by time.

    Attributes:
        time_unix_nano: (n,) int64; the bucket start when aggregated.
        value: (n,) float64; the aggregate when aggregated.
    """

    series_id: int
    key: SeriesKey
    time_unix_nano: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]


@dataclass(frozen=True)
class QueryPage:
    """One page of QuerySamples."""

    results: tuple[SeriesPoints, ...]
    next_page_token: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    """One stored series with its sample-time extent (None before the first flush of it)."""

    series_id: int
    key: SeriesKey
    first_sample_unix_nano: int | None
    last_sample_unix_nano: int | None


@dataclass(frozen=True)
class SeriesPage:
    """One page of ListSeries."""

    series: tuple[SeriesInfo, ...]
    next_page_token: str = ""


@dataclass(frozen=True)
class RetentionOutcome:
    """Partitions dropped (or, in a dry run, that would be), oldest first."""

    partitions: tuple[Partition, ...]
