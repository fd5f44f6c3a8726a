"""Seasonal baseline: an hour-of-day and day-of-week profile learnt online with EWMA per bin.

Times are integer nanoseconds since the Unix epoch (UTC), the service's
``time_unix_nano``. The profile is additive: ``expected = hod[hour] + dow[day]``
where ``hod`` learns the value per hour of day and ``dow`` learns the mean
residual per day of week (Monday = 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NS_PER_HOUR = 3_600_000_000_000
HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7
# 1970-01-01 was a Thursday: day index 0 is weekday 3 with Monday = 0.
_EPOCH_WEEKDAY = 3


class SeasonalBins(NamedTuple):
    """Calendar bins of each time; both ``(n,)`` int64."""

    hour: IntArray
    """Hour of day, 0..23 (UTC)."""
    dow: IntArray
    """Day of week, 0..6, Monday = 0 (UTC)."""


def seasonal_bins(times_ns: npt.ArrayLike) -> SeasonalBins:
    """Hour-of-day and day-of-week bins of UTC nanosecond timestamps (any shape, int64)."""
    t = np.asarray(times_ns, dtype=np.int64)
    hours = np.floor_divide(t, NS_PER_HOUR)
    hour = np.mod(hours, HOURS_PER_DAY)
    dow = np.mod(np.floor_divide(hours, HOURS_PER_DAY) + _EPOCH_WEEKDAY, DAYS_PER_WEEK)
    return SeasonalBins(hour.astype(np.int64), dow.astype(np.int64))


def seasonal_predict(profile: npt.ArrayLike, bins: npt.ArrayLike) -> FloatArray:
    """Read each series' profile at its bin.

    Args:
        profile: ``(n_series, n_bins)`` float64 (NaN = bin never visited).
        bins: ``(n_series,)`` int bin index per series.

    Returns:
        ``(n_series,)`` float64 (NaN where the bin was never visited).
    """
    p = np.asarray(profile, dtype=np.float64)
    b = np.asarray(bins, dtype=np.int64)
    return np.asarray(p[np.arange(p.shape[0]), b], dtype=np.float64)


def seasonal_update(
    profile: npt.ArrayLike,
    counts: npt.ArrayLike,
    bins: npt.ArrayLike,
    target: npt.ArrayLike,
    alpha: float,
) -> tuple[FloatArray, FloatArray]:
    """EWMA update of one bin per series.

    Each bin averages its first ``1/alpha`` visits exactly (step ``1/count``) and
    then forgets with ``alpha``, so a young profile is not dominated by its first
    visit. A NaN target leaves the series unchanged.

    Args:
        profile: ``(n_series, n_bins)`` float64 bin means (NaN = never visited).
        counts: ``(n_series, n_bins)`` float64 visits per bin.
        bins: ``(n_series,)`` int bin visited by each series' new point.
        target: ``(n_series,)`` float64 value to learn in that bin.
        alpha: steady-state smoothing factor in (0, 1].

    Returns:
        ``(profile, counts)``, new arrays of the input shapes.
    """
    p = np.array(profile, dtype=np.float64, copy=True)
    c = np.array(counts, dtype=np.float64, copy=True)
    b = np.asarray(bins, dtype=np.int64)
    y = np.asarray(target, dtype=np.float64)
    rows = np.arange(p.shape[0])
    ok = ~np.isnan(y)
    rows, b, y = rows[ok], b[ok], y[ok]
    old = p[rows, b]
    n = c[rows, b] + 1.0
    step = np.maximum(alpha, 1.0 / n)
    p[rows, b] = np.where(np.isnan(old), y, old + step * (y - old))
    c[rows, b] = n
    return p, c
