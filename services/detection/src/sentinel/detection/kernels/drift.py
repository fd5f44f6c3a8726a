"""Population stability index (PSI) between a reference and a recent window."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.detection.kernels.tails import chi2_logsf

FloatArray = npt.NDArray[np.float64]


def binned_counts(
    values: npt.ArrayLike, center: npt.ArrayLike, scale: npt.ArrayLike, edges: npt.ArrayLike
) -> FloatArray:
    """Histogram each row on bins fixed in standardised units.

    Values are standardised per row, ``u = (v - center) / scale``, and counted in
    the ``len(edges) + 1`` bins cut at ``edges`` (sorted, in sigma units), so one
    set of edges serves every series. NaN values are not counted.

    Args:
        values: ``(n_series, w)`` float64, NaN = empty slot.
        center: ``(n_series,)`` float64 location.
        scale: ``(n_series,)`` float64 positive scale.
        edges: ``(n_bins - 1,)`` sorted float64 cut points.

    Returns:
        ``(n_series, n_bins)`` float64 counts.
    """
    v = np.asarray(values, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    n, _ = v.shape
    n_bins = len(e) + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (v - np.asarray(center, dtype=np.float64)[:, None]) / np.asarray(scale, dtype=np.float64)[:, None]
    ok = ~np.isnan(u)
    b = np.searchsorted(e, np.where(ok, u, 0.0), side="right")
    flat = (np.arange(n)[:, None] * n_bins + b)[ok]
    return np.bincount(flat, minlength=n * n_bins).reshape(n, n_bins).astype(np.float64)


def psi(
    reference_counts: npt.ArrayLike, recent_counts: npt.ArrayLike, *, smoothing: float = 0.5
) -> FloatArray:
    """PSI = sum_b (r_b - q_b) ln(r_b / q_b) over bins, per row.

    Proportions are additively smoothed (``smoothing`` pseudo-counts per bin) so
    empty bins stay finite.

    Args:
        reference_counts: ``(n_series, n_bins)`` float64 counts.
        recent_counts: ``(n_series, n_bins)`` float64 counts.
        smoothing: pseudo-count added to every bin (> 0).

    Returns:
        ``(n_series,)`` float64 PSI >= 0; NaN where either histogram is empty.
    """
    q_c = np.asarray(reference_counts, dtype=np.float64)
    r_c = np.asarray(recent_counts, dtype=np.float64)
    n_q = q_c.sum(axis=1)
    n_r = r_c.sum(axis=1)
    nb = q_c.shape[1]
    q = (q_c + smoothing) / (n_q + smoothing * nb)[:, None]
    r = (r_c + smoothing) / (n_r + smoothing * nb)[:, None]
    out = np.sum((r - q) * np.log(r / q), axis=1)
    return np.asarray(np.where((n_q > 0) & (n_r > 0), out, np.nan), dtype=np.float64)


def psi_logsf(value: npt.ArrayLike, n_eff: npt.ArrayLike, n_bins: int) -> FloatArray:
    """Log tail probability of a PSI value: ``n_eff * PSI`` is close to chi-square(n_bins - 1).

    Args:
        value: ``(n_series,)`` float64 PSI values.
        n_eff: effective size of the recent sample, scalar or ``(n_series,)``.
        n_bins: number of bins.

    Returns:
        ``(n_series,)`` float64 ``log P``; NaN where the PSI is NaN.
    """
    v = np.asarray(value, dtype=np.float64)
    return chi2_logsf(v * np.asarray(n_eff, dtype=np.float64), float(n_bins - 1))
