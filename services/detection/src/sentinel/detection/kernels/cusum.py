"""Standardised two-sided CUSUM."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def cusum_update(
    s_pos: npt.ArrayLike, s_neg: npt.ArrayLike, z: npt.ArrayLike, k: float, cap: float = np.inf
) -> tuple[FloatArray, FloatArray]:
    """One step of Page's two-sided CUSUM on standardised residuals.

    ``S+' = min(cap, max(0, S+ + z - k))`` and ``S-' = min(cap, max(0, S- - z - k))``.
    Under the null (``z`` ~ N(0, 1) independent) the reflected walk's stationary
    tail is close to ``P(S > h) = exp(-2 k h)``, which is how the ensemble turns
    ``max(S+, S-)`` into a probability.

    Args:
        s_pos: ``(n_series,)`` float64 upper sums (>= 0).
        s_neg: ``(n_series,)`` float64 lower sums (>= 0).
        z: ``(n_series,)`` float64 standardised residuals (NaN = missing, sums unchanged).
        k: reference value (allowance) in sigma units, >= 0.
        cap: upper bound of each sum, so one huge outlier cannot hold the alarm forever.

    Returns:
        ``(s_pos, s_neg)``, new ``(n_series,)`` arrays.
    """
    sp = np.asarray(s_pos, dtype=np.float64)
    sn = np.asarray(s_neg, dtype=np.float64)
    zv = np.asarray(z, dtype=np.float64)
    miss = np.isnan(zv)
    zz = np.where(miss, 0.0, zv)
    new_p = np.minimum(np.maximum(sp + zz - k, 0.0), cap)
    new_n = np.minimum(np.maximum(sn - zz - k, 0.0), cap)
    return (
        np.asarray(np.where(miss, sp, new_p), dtype=np.float64),
        np.asarray(np.where(miss, sn, new_n), dtype=np.float64),
    )
