"""Compiled (numba) versions of the hottest row kernels, bit-identical to the NumPy ones.

The NumPy kernels stay the reference: every function here is tested for exact equality with
them (``tests/unit/test_compiled.py``). What makes them faster is not other arithmetic but fusion:
the NumPy engine makes a dozen passes over ``(rows, window)`` temporaries per reference refresh,
each paying NumPy's dispatch and memory traffic; a compiled row loop does one pass per row.

Exactness rules kept throughout (no ``fastmath``, so LLVM never reassociates or fuses into FMA):

* every element is computed with the same operations in the same order as NumPy does;
* sums follow NumPy's pairwise summation order (:func:`pairwise_sum`), since float addition is
  not associative and ``np.sum`` does not add left to right;
* sorting stays in NumPy (its vectorised sort beats a compiled quicksort several times); the
  compiled kernels read sorted rows.

Compiled functions are cached on disk (``cache=True``) in numba's cache directory. It defaults to
``__pycache__`` beside this file; where that is not writable (read-only root filesystems in
containers), set ``NUMBA_CACHE_DIR`` (e.g. ``/tmp/numba``). Unset, this module points it at a
per-user directory under the system temporary directory when the package directory is read-only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt


def _default_cache_dir() -> None:
    # numba reads NUMBA_CACHE_DIR when imported; without a writable place, `cache=True` fails at
    # the first compilation instead of merely not caching.
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    here = Path(__file__).resolve().parent
    if not os.access(here, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"numba-cache-{os.getuid()}")


_default_cache_dir()

import numba  # noqa: E402 - after the cache directory is settled

FloatArray = npt.NDArray[np.float64]

# NumPy's pairwise summation: blocks of at most 128 elements are summed with 8 interleaved
# accumulators; longer runs split in two at a multiple of 8 (numpy/_core/src/umath/loops_utils.h).
_PW_BLOCKSIZE = 128
_MAX_FLOAT = float(np.finfo(np.float64).max)


@numba.njit(cache=True, nogil=True, inline="always")
def _fmax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.fmax`` of two scalars: the non-NaN one if either is NaN."""
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return a if a >= b else b


@numba.njit(cache=True, nogil=True, inline="always")
def _nan_to_num(x: float) -> float:  # pragma: no cover - compiled
    """``np.nan_to_num`` of a scalar: NaN -> 0, +-inf -> the largest finite float of that sign."""
    if np.isnan(x):
        return 0.0
    if np.isinf(x):
        return _MAX_FLOAT if x > 0 else -_MAX_FLOAT
    return x


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pairwise_block(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """NumPy's leaf sum of ``a[lo:lo + n]``, ``n <= 128``: 8 interleaved accumulators."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return float(res)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pairwise_sum(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """``np.sum(a[lo:lo + n])`` with NumPy's exact summation order (``a`` 1-D float64).

    NumPy sums runs longer than 128 as ``sum(first n2) + sum(rest)`` with ``n2`` half of ``n``
    rounded down to a multiple of 8, recursively. The recursion is unrolled into an explicit
    stack: numba's on-disk cache does not reload recursive functions reliably.
    """
    if n <= _PW_BLOCKSIZE:
        return _pairwise_block(a, lo, n)
    half = n // 2
    half -= half % 8
    if n - half <= _PW_BLOCKSIZE:  # one split (window 256): no stack
        return _pairwise_block(a, lo, half) + _pairwise_block(a, lo + half, n - half)
    depth = 64  # n halves at every level: far more than any int64 length needs
    los = np.empty(depth, dtype=np.int64)
    ns = np.empty(depth, dtype=np.int64)
    stage = np.zeros(depth, dtype=np.int64)  # 0: not split, 1: left pending, 2: right pending
    left = np.empty(depth)
    top = 0
    los[0] = lo
    ns[0] = n
    while True:
        m = ns[top]
        if m > _PW_BLOCKSIZE:
            half = m // 2
            half -= half % 8
            stage[top] = 1
            top += 1
            los[top] = los[top - 1]
            ns[top] = half
            stage[top] = 0
            continue
        value = _pairwise_block(a, los[top], m)
        while True:  # hand the value up until a right half remains to be summed
            if top == 0:
                return value
            top -= 1
            if stage[top] == 1:
                left[top] = value
                stage[top] = 2
                half = ns[top] // 2
                half -= half % 8
                top += 1
                los[top] = los[top - 1] + half
                ns[top] = ns[top - 1] - half
                stage[top] = 0
                break
            value = left[top] + value


@numba.njit(cache=True, nogil=True, inline="always")
def _kth_deviation(srt: FloatArray, c: float, kk: int, p: int) -> float:  # pragma: no cover - compiled
    """The kk-th smallest ``|srt - c|`` of a sorted row with median ``c`` (0-based).

    The deviations are two sorted lists, ``c - srt[p - 1 - t]`` and ``srt[p + u] - c``; a binary
    search finds how many of the kk + 1 smallest come from the first (a linear merge mispredicts
    a branch per step and was several times slower).
    """
    w = len(srt)
    lo = max(0, kk + 1 - (w - p))
    hi = min(kk + 1, p)
    while lo < hi:
        t = (lo + hi) >> 1
        if c - srt[p - 1 - t] < srt[p + kk - t] - c:
            lo = t + 1
        else:
            hi = t
    low_last = c - srt[p - lo] if lo > 0 else -np.inf
    up_last = srt[p + kk - lo] - c if kk - lo >= 0 else -np.inf
    return max(low_last, up_last)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def reference_sorted_rows(
    win: FloatArray,
    srt: FloatArray,
    spread: FloatArray,
    edges: FloatArray,
    abs_floor: float,
    rel_floor: float,
    range_floor: float,
    mad_factor: float,
    mean_ad_factor: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # pragma: no cover - compiled
    """Robust reference of full, finite windows: median, floored sigma and PSI histogram per row.

    Exactly what the engine's NumPy path computes for such rows (``nanmedian_rows``,
    ``mad_of_sorted``, the ring-order mean absolute deviation, the floor, and
    ``binned_counts_sorted``).

    Args:
        win: ``(rows, w)`` float64 windows in ring order (the mean deviation is summed in it).
        srt: ``(rows, w)`` the same rows sorted ascending; all finite.
        spread: ``(rows,)`` range seen so far (``vmax - vmin``, NaN = none), for the floor.
        edges: ``(n_edges,)`` sorted PSI cut points in sigma units.
        abs_floor, rel_floor, range_floor: the sigma floor parameters of the engine.
        mad_factor: ``MAD_TO_SIGMA``.
        mean_ad_factor: ``mean_dev_floor * MEAN_AD_TO_SIGMA`` (one product, as NumPy forms it).

    Returns:
        ``center (rows,)``, ``scale (rows,)``, ``hist (rows, n_edges + 1)``; a row whose center or
        scale is not finite gets a meaningless histogram (the caller recomputes those).
    """
    rows, w = srt.shape
    n_edges = len(edges)
    center = np.empty(rows)
    scale = np.empty(rows)
    hist = np.empty((rows, n_edges + 1))
    dev = np.empty(w)
    k1 = (w - 1) // 2
    k2 = w // 2
    p = (w + 1) // 2  # deviations: lower list c - S[p-1-t], upper list S[p+u] - c
    for r in range(rows):
        c = 0.5 * (srt[r, k1] + srt[r, k2])
        center[r] = c
        # the floor as StreamingScorer._floor (center and spread through np.nan_to_num)
        floor_r = _fmax(abs_floor + rel_floor * abs(_nan_to_num(c)), range_floor * _nan_to_num(spread[r]))
        # mean absolute deviation in ring order, summed as np.sum does
        for j in range(w):
            dev[j] = abs(win[r, j] - c)
        mean_ad = pairwise_sum(dev, 0, w) / w
        # MAD: the k1-th and k2-th smallest deviations (kernels.robust.mad_of_sorted, per row)
        kth1 = _kth_deviation(srt[r], c, k1, p)
        kth2 = _kth_deviation(srt[r], c, k2, p)
        mad = 0.5 * (kth1 + kth2)
        sc = _fmax(_fmax(mad_factor * mad, mean_ad_factor * mean_ad), floor_r)
        scale[r] = sc
        # histogram: values at or above each edge, u = (v - c) / sc non-decreasing along the row
        prev_ge = w
        lo = 0
        for e in range(n_edges):
            edge = edges[e]
            lo_e = lo
            hi_e = w
            while lo_e < hi_e:
                mid = (lo_e + hi_e) >> 1
                if (srt[r, mid] - c) / sc >= edge:
                    hi_e = mid
                else:
                    lo_e = mid + 1
            ge = w - lo_e
            hist[r, e] = prev_ge - ge
            prev_ge = ge
            lo = lo_e
        hist[r, n_edges] = prev_ge
    return center, scale, hist


@numba.njit(cache=True, nogil=True, inline="always")
def _nanmedian_head(win: FloatArray, count: int, buf: FloatArray) -> tuple[float, int]:  # pragma: no cover
    """Median of the non-NaN values among ``win[:count]`` (NaN if none) and their number.

    The order statistics of ``kernels.robust.nanmedian_rows``. Windows are short (tens of
    values): an insertion sort into ``buf`` beats any call into a general sort.
    """
    nv = 0
    for c in range(count):
        v = win[c]
        if not np.isnan(v):
            b = nv - 1
            while b >= 0 and buf[b] > v:
                buf[b + 1] = buf[b]
                b -= 1
            buf[b + 1] = v
            nv += 1
    if nv == 0:
        return np.nan, 0
    return float(0.5 * (buf[(nv - 1) // 2] + buf[nv // 2])), nv


@numba.njit(cache=True, nogil=True, error_model="numpy")
def recent_window_stats(
    x: npt.NDArray[np.float64],
    history: FloatArray,
    n_before: npt.NDArray[np.int64],
    level_n: int,
    spread_n: int,
    center: FloatArray,
    scale: FloatArray,
    edges: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:  # pragma: no cover
    """Statistics of the recent window of every point of a ``(rounds, series)`` block.

    The window of point ``(r, i)``, newest first, is ``x[r, i]`` followed by the ``m`` values that
    precede it in its series: ``history[i, n_before[r, i] + m - c]`` for ``c = 1 .. m``, where
    ``m = history.shape[1] - rounds`` (NaN = empty). The level test reads its first ``level_n``
    values, the variance and PSI tests its first ``spread_n``; no window is materialised.

    Exactly the numbers of ``nanmedian_rows`` (level and spread medians), the value counts,
    ``np.nansum(|w - median|)`` over the spread window in window order, and ``binned_counts``
    of the spread window against ``center`` / ``scale``.

    Args:
        x: ``(K, n)`` float64 the points' values (NaN = missing).
        history: ``(n, m + K)`` float64 per series: the ``m`` values before the block (oldest
            first), then the block's valid values, compacted.
        n_before: ``(K, n)`` int64 valid values of the block before each point.
        level_n, spread_n: window lengths (each ``<= m + 1``).
        center, scale: ``(K, n)`` float64 reference of each point, for the histogram.
        edges: ``(n_edges,)`` sorted PSI cut points in sigma units.

    Returns:
        ``(K, n)`` level median, level count, spread median, spread count, sum of absolute
        deviations, and ``(K, n, n_edges + 1)`` histogram counts; counts as float64.
    """
    K, n = x.shape
    m = history.shape[1] - K
    n_edges = len(edges)
    c_level = np.empty((K, n))
    n_level = np.empty((K, n))
    c_spread = np.empty((K, n))
    n_spread = np.empty((K, n))
    sum_dev = np.empty((K, n))
    hist = np.zeros((K, n, n_edges + 1))
    win = np.empty(m + 1)
    buf = np.empty(m + 1)
    dev = np.empty(m + 1)
    for r in range(K):
        for i in range(n):
            win[0] = x[r, i]
            at = n_before[r, i] + m
            for c in range(1, m + 1):
                win[c] = history[i, at - c]
            med, nv = _nanmedian_head(win, level_n, buf)
            c_level[r, i] = med
            n_level[r, i] = nv
            # spread window: median, absolute deviations (NaN as 0, as nansum), histogram
            med, nv = _nanmedian_head(win, spread_n, buf)
            c_spread[r, i] = med
            n_spread[r, i] = nv
            cen = center[r, i]
            sc = scale[r, i]
            for c in range(spread_n):
                d = abs(win[c] - med)
                dev[c] = 0.0 if np.isnan(d) else d
                u = (win[c] - cen) / sc
                if not np.isnan(u):
                    b = 0
                    for e in range(n_edges):
                        if u >= edges[e]:
                            b += 1
                    hist[r, i, b] += 1.0
            sum_dev[r, i] = pairwise_sum(dev, 0, spread_n)
    return c_level, n_level, c_spread, n_spread, sum_dev, hist
