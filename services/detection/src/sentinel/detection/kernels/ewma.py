"""Incremental exponentially weighted mean and variance."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def ewma_update(
    mean: npt.ArrayLike, var: npt.ArrayLike, x: npt.ArrayLike, alpha: float | npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """One step of the exponentially weighted mean and variance (West's incremental form).

    ``d = x - mean; mean' = mean + alpha d; var' = (1 - alpha)(var + alpha d^2)``.
    A series without a mean yet (``mean`` NaN) starts at ``x`` with variance 0;
    a missing point (``x`` NaN) leaves the series unchanged.

    Args:
        mean: ``(n_series,)`` float64 current means (NaN = no data yet).
        var: ``(n_series,)`` float64 current variances.
        x: ``(n_series,)`` float64 new values (NaN = missing).
        alpha: smoothing factor in (0, 1], scalar or ``(n_series,)``.

    Returns:
        ``(mean, var)``, new ``(n_series,)`` float64 arrays.
    """
    m = np.asarray(mean, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    xv = np.asarray(x, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)
    start = np.isnan(m) & ~np.isnan(xv)
    d = xv - m
    new_m = m + a * d
    new_v = (1.0 - a) * (v + a * d * d)
    new_m = np.where(start, xv, new_m)
    new_v = np.where(start, 0.0, new_v)
    skip = np.isnan(xv)
    return (
        np.asarray(np.where(skip, m, new_m), dtype=np.float64),
        np.asarray(np.where(skip, v, new_v), dtype=np.float64),
    )
