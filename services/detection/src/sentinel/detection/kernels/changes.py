"""Level-shift and variance-change tests: a recent window against a reference window."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.detection.kernels.robust import MEAN_AD_TO_SIGMA, nanmedian_rows, robust_scale

FloatArray = npt.NDArray[np.float64]


def level_shift_z(
    reference: npt.ArrayLike,
    recent: npt.ArrayLike,
    *,
    max_eff_n: float = np.inf,
    mean_dev_floor: float = 0.5,
    floor: npt.ArrayLike = 1e-9,
) -> FloatArray:
    """Standardised difference of medians, recent minus reference.

    ``z = (median(recent) - median(reference)) / (1.2533 * scale_ref / sqrt(n_eff))``
    where ``scale_ref`` is the floored robust sigma of the reference (see
    :func:`~sentinel.detection.kernels.robust.robust_scale`) and ``n_eff`` is the
    number of recent values capped at ``max_eff_n``: autocorrelated telemetry
    holds fewer independent points than it has points, and the cap keeps the
    statistic honest on it.

    Args:
        reference: ``(n_series, w_ref)`` float64, NaN = empty slot.
        recent: ``(n_series, w_recent)`` float64, NaN = empty slot.
        max_eff_n: cap on the effective sample size of the recent window.
        mean_dev_floor: see ``robust_scale``.
        floor: absolute scale floor, scalar or ``(n_series,)``.

    Returns:
        ``(n_series,)`` float64 signed z; NaN where either window has fewer than 2 values.
    """
    ref = np.asarray(reference, dtype=np.float64)
    c_ref = nanmedian_rows(ref)
    s_ref = robust_scale(ref, c_ref, mean_dev_floor=mean_dev_floor, floor=floor)
    s_ref = np.where(np.sum(~np.isnan(ref), axis=1) >= 2, s_ref, np.nan)
    return shift_z(recent, c_ref, s_ref, max_eff_n=max_eff_n)


def shift_z(
    recent: npt.ArrayLike, ref_center: npt.ArrayLike, ref_scale: npt.ArrayLike, *, max_eff_n: float = np.inf
) -> FloatArray:
    """:func:`level_shift_z` with the reference already summarised (median and robust sigma).

    Args:
        recent: ``(n_series, w_recent)`` float64, NaN = empty slot.
        ref_center: ``(n_series,)`` reference median (NaN = no reference).
        ref_scale: ``(n_series,)`` reference robust sigma (> 0, NaN = no reference).
        max_eff_n: cap on the effective sample size of the recent window.

    Returns:
        ``(n_series,)`` float64 signed z; NaN where the recent window has fewer than 2 values.
    """
    rec = np.asarray(recent, dtype=np.float64)
    c_rec = nanmedian_rows(rec)
    n_rec = np.sum(~np.isnan(rec), axis=1).astype(np.float64)
    return shift_z_of(c_rec, n_rec, ref_center, ref_scale, max_eff_n=max_eff_n)


def shift_z_of(
    c_rec: FloatArray,
    n_rec: FloatArray,
    ref_center: npt.ArrayLike,
    ref_scale: npt.ArrayLike,
    *,
    max_eff_n: float = np.inf,
) -> FloatArray:
    """:func:`shift_z` from the recent windows' median ``c_rec`` and count of values ``n_rec`` (float64)."""
    n_eff = np.minimum(n_rec, max_eff_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (c_rec - np.asarray(ref_center, dtype=np.float64)) / (
            MEAN_AD_TO_SIGMA * np.asarray(ref_scale, dtype=np.float64) / np.sqrt(n_eff)
        )
    return np.asarray(np.where(n_rec >= 2, z, np.nan), dtype=np.float64)


def variance_change_z(
    reference: npt.ArrayLike,
    recent: npt.ArrayLike,
    *,
    max_eff_n: float = np.inf,
    mean_dev_floor: float = 0.5,
    floor: npt.ArrayLike = 1e-9,
) -> FloatArray:
    """Standardised log ratio of the recent to the reference spread.

    ``z = ln(s_recent / s_ref) * sqrt(2 (n_eff - 1))``, the normal approximation
    of a log variance ratio. ``s_recent`` is ``1.2533 * mean |r - median(r)|``
    of the recent window, ``s_ref`` the floored robust sigma of the reference;
    both are floored by ``floor``. Positive z = the series got noisier.

    Args:
        reference: ``(n_series, w_ref)`` float64, NaN = empty slot.
        recent: ``(n_series, w_recent)`` float64, NaN = empty slot.
        max_eff_n: cap on the effective sample size of the recent window.
        mean_dev_floor: see ``robust_scale``.
        floor: absolute floor of both spreads, scalar or ``(n_series,)``.

    Returns:
        ``(n_series,)`` float64 signed z; NaN where the recent window has fewer
        than 3 values or the reference fewer than 2.
    """
    ref = np.asarray(reference, dtype=np.float64)
    fl = np.broadcast_to(np.asarray(floor, dtype=np.float64), (ref.shape[0],))
    s_ref = robust_scale(ref, nanmedian_rows(ref), mean_dev_floor=mean_dev_floor, floor=fl)
    s_ref = np.where(np.sum(~np.isnan(ref), axis=1) >= 2, s_ref, np.nan)
    return spread_z(recent, s_ref, max_eff_n=max_eff_n, floor=fl)


def spread_z(
    recent: npt.ArrayLike, ref_scale: npt.ArrayLike, *, max_eff_n: float = np.inf, floor: npt.ArrayLike = 1e-9
) -> FloatArray:
    """:func:`variance_change_z` with the reference already summarised (robust sigma).

    Args:
        recent: ``(n_series, w_recent)`` float64, NaN = empty slot.
        ref_scale: ``(n_series,)`` reference robust sigma (> 0, NaN = no reference).
        max_eff_n: cap on the effective sample size of the recent window.
        floor: floor of the recent spread, scalar or ``(n_series,)``.

    Returns:
        ``(n_series,)`` float64 signed z; NaN where the recent window has fewer than 3 values.
    """
    rec = np.asarray(recent, dtype=np.float64)
    c_rec = nanmedian_rows(rec)
    dev = np.abs(rec - c_rec[:, None])
    n_rec = np.sum(~np.isnan(rec), axis=1).astype(np.float64)
    return spread_z_of(np.nansum(dev, axis=1), n_rec, ref_scale, max_eff_n=max_eff_n, floor=floor)


def spread_z_of(
    sum_dev: FloatArray,
    n_rec: FloatArray,
    ref_scale: npt.ArrayLike,
    *,
    max_eff_n: float = np.inf,
    floor: npt.ArrayLike = 1e-9,
) -> FloatArray:
    """:func:`spread_z` from the recent windows' sum of absolute deviations from their median
    (NaN-free, ``np.nansum`` order) and count of values ``n_rec`` (float64)."""
    fl = np.broadcast_to(np.asarray(floor, dtype=np.float64), (len(n_rec),))
    with np.errstate(invalid="ignore", divide="ignore"):
        s_rec = np.fmax(MEAN_AD_TO_SIGMA * sum_dev / n_rec, fl)
        n_eff = np.minimum(n_rec, max_eff_n)
        z = np.log(s_rec / np.asarray(ref_scale, dtype=np.float64)) * np.sqrt(
            2.0 * np.maximum(n_eff - 1.0, 0.0)
        )
    return np.asarray(np.where(n_rec >= 3, z, np.nan), dtype=np.float64)
