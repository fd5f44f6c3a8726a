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
    # bin = number of edges <= u (searchsorted side="right"), accumulated edge by
    # edge: one compare per edge is far cheaper than a per-element binary search.
    n_edges = len(e)
    b = np.zeros(u.shape, dtype=np.int8 if n_edges < 127 else np.intp)
    ge = np.empty(u.shape, dtype=bool)
    for edge in e:
        np.greater_equal(u, edge, out=ge)
        b += ge
    nan = np.isnan(u)
    any_nan = bool(nan.any())
    bits = max(1, int(v.shape[1]).bit_length())  # a count fits in `bits` bits
    if n_bins * bits <= 63:
        # Pack per-row counts into one int64: field j < n_edges counts u >= edges[j],
        # field n_edges counts the non-NaN values; one row sum then counts them all.
        fields = [sum(1 << (bits * j) for j in range(bb)) + (1 << (bits * n_edges)) for bb in range(n_bins)]
        lut = np.array([*fields, 0], dtype=np.int64)
        if any_nan:
            b[nan] = n_bins
        tot = lut[b].sum(axis=1)
        ge_counts = (tot[:, None] >> (bits * np.arange(n_bins, dtype=np.int64))) & ((1 << bits) - 1)
        return _hist_from_ge(ge_counts[:, :n_edges], ge_counts[:, n_edges])
    bi = b.astype(np.intp)
    bi += (np.arange(n, dtype=np.intp) * n_bins)[:, None]
    flat = bi[~nan] if any_nan else bi.ravel()
    return np.bincount(flat, minlength=n * n_bins).reshape(n, n_bins).astype(np.float64)


def binned_counts_sorted(
    sorted_values: npt.ArrayLike, center: npt.ArrayLike, scale: npt.ArrayLike, edges: npt.ArrayLike
) -> FloatArray:
    """:func:`binned_counts` of rows that are sorted ascending, finite, with finite center and scale > 0.

    ``u = (v - center) / scale`` is non-decreasing along such a row (rounding is
    monotone), so the count of ``u >= edge`` is found by a binary search per
    row and edge, computing ``u`` exactly as :func:`binned_counts` does at the
    probed positions only: the counts are identical at a fraction of the cost.

    Args:
        sorted_values: ``(n_series, w)`` float64, each row sorted, no NaN.
        center: ``(n_series,)`` float64 finite location.
        scale: ``(n_series,)`` float64 finite positive scale.
        edges: ``(n_bins - 1,)`` sorted float64 cut points.

    Returns:
        ``(n_series, n_bins)`` float64 counts.
    """
    srt = np.ascontiguousarray(sorted_values, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    n, w = srt.shape
    flat = srt.ravel()
    base = (np.arange(n, dtype=np.intp) * w)[:, None]
    c = np.asarray(center, dtype=np.float64)[:, None]
    s = np.asarray(scale, dtype=np.float64)[:, None]
    lo = np.zeros((n, len(e)), dtype=np.intp)
    hi = np.full((n, len(e)), w, dtype=np.intp)
    for _ in range(int(w).bit_length()):
        mid = (lo + hi) >> 1
        u = (flat[base + np.minimum(mid, w - 1)] - c) / s
        ge = u >= e
        open_ = lo < hi
        hi = np.where(ge & open_, mid, hi)
        lo = np.where(~ge & open_, mid + 1, lo)
    return _hist_from_ge(w - lo, np.full(n, w))


def _hist_from_ge(ge_counts: npt.NDArray[np.int64], n_valid: npt.NDArray[np.int64]) -> FloatArray:
    """Bin counts from the counts of values at or above each edge and the count of values."""
    n, n_edges = ge_counts.shape
    out = np.empty((n, n_edges + 1))
    if n_edges == 0:
        out[:, 0] = n_valid
        return out
    out[:, 0] = n_valid - ge_counts[:, 0]
    out[:, 1:n_edges] = ge_counts[:, :-1] - ge_counts[:, 1:]
    out[:, n_edges] = ge_counts[:, -1]
    return out


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
