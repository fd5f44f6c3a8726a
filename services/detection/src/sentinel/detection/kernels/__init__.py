"""Pure NumPy scoring kernels, vectorised across series.

Conventions shared by every kernel (STYLE.md convention 7):

* A *window* is a float64 array shaped ``(n_series, window)``; row ``i`` holds
  series ``i``'s past values in time order. ``NaN`` marks an empty slot (a
  series with less history than the window), never a value.
* A *column* is a float64 array shaped ``(n_series,)``: one value per series.
* Kernels never mutate their inputs, never log, never do I/O and draw no
  random numbers; an update kernel returns new arrays.
"""

from sentinel.detection.kernels.changes import (
    level_shift_z,
    shift_z,
    shift_z_of,
    spread_z,
    spread_z_of,
    variance_change_z,
)
from sentinel.detection.kernels.cusum import cusum_update
from sentinel.detection.kernels.drift import binned_counts, binned_counts_sorted, psi, psi_logsf
from sentinel.detection.kernels.ewma import ewma_update
from sentinel.detection.kernels.rates import binomial_upper_z, poisson_upper_z
from sentinel.detection.kernels.robust import (
    RobustZ,
    mad_of_sorted,
    nanmedian_rows,
    robust_scale,
    robust_zscore,
)
from sentinel.detection.kernels.seasonal import SeasonalBins, seasonal_bins, seasonal_predict, seasonal_update
from sentinel.detection.kernels.tails import chi2_logsf, normal_logsf, surprise_from_logp, two_sided_surprise

__all__ = [
    "RobustZ",
    "SeasonalBins",
    "binned_counts",
    "binned_counts_sorted",
    "binomial_upper_z",
    "chi2_logsf",
    "cusum_update",
    "ewma_update",
    "level_shift_z",
    "mad_of_sorted",
    "nanmedian_rows",
    "normal_logsf",
    "poisson_upper_z",
    "psi",
    "psi_logsf",
    "robust_scale",
    "robust_zscore",
    "seasonal_bins",
    "seasonal_predict",
    "seasonal_update",
    "shift_z",
    "shift_z_of",
    "spread_z",
    "spread_z_of",
    "surprise_from_logp",
    "two_sided_surprise",
    "variance_change_z",
]
