"""Compiled (numba) versions of the hottest row kernels, bit-identical to the NumPy ones.

The NumPy kernels stay the reference: every function here is tested for exact equality with
them (``tests/unit/test_compiled.py``). What makes them faster is not other arithmetic but fusion:
the NumPy engine makes a dozen passes over ``(rows, window)`` temporaries per reference refresh,
each paying NumPy's dispatch and memory traffic; a compiled row loop does one pass per row.

Exactness rules kept throughout (no ``fastmath``, so LLVM never reassociates or fuses into FMA):

* every element is computed with the same operations in the same order as NumPy does;
* sums follow NumPy's pairwise summation order (:func:`pairwise_sum`), since float addition is
  not associative and ``np.sum`` does not add left to right;
* full windows (hundreds of values) are sorted by NumPy, whose vectorised sort beats a compiled
  quicksort several times, and the kernel reads the sorted rows; the short recent windows (tens
  of values) are sorted by insertion inside the kernel. Order statistics do not depend on the
  sort used.

Compiled functions are cached on disk (numba's ``cache=True``), so a restart loads them in
milliseconds instead of compiling for seconds; the service compiles or loads them in its warm-up,
before it reports SERVING. The cache lives in ``NUMBA_CACHE_DIR`` when set, else in
``__pycache__`` beside this file; on a read-only root filesystem set ``NUMBA_CACHE_DIR`` to a
writable path (e.g. ``NUMBA_CACHE_DIR=/tmp/numba``); unset, this module falls back to a per-user
directory under the system temporary directory, and compiles without caching if none is writable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt


def _settle_cache_dir() -> bool:
    """Point numba's cache at a writable directory; False if there is none (compile, no cache).

    numba reads NUMBA_CACHE_DIR when imported, and with ``cache=True`` but no writable place it
    fails at import instead of merely not caching. An explicit NUMBA_CACHE_DIR wins; otherwise
    ``__pycache__`` beside this file, or (read-only root filesystems, as in the Helm chart and
    compose file, where /tmp is the writable mount) a per-user directory under the system
    temporary directory.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return True
    if os.access(Path(__file__).resolve().parent, os.W_OK):
        return True
    tmp = Path(tempfile.gettempdir())
    if not os.access(tmp, os.W_OK):
        return False
    os.environ["NUMBA_CACHE_DIR"] = str(tmp / f"numba-cache-{os.getuid()}")
    return True


CACHE = _settle_cache_dir()

import numba  # noqa: E402 - after the cache directory is settled

FloatArray = npt.NDArray[np.float64]

# NumPy's pairwise summation: blocks of at most 128 elements are summed with 8 interleaved
# accumulators; longer runs split in two at a multiple of 8 (numpy/_core/src/umath/loops_utils.h).
_PW_BLOCKSIZE = 128
_MAX_FLOAT = float(np.finfo(np.float64).max)


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _fmax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.fmax`` of two scalars: the non-NaN one if either is NaN."""
    if np.isnan(a):
        return b
    if np.isnan(b):
        return a
    return a if a >= b else b


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _nan_to_num(x: float) -> float:  # pragma: no cover - compiled
    """``np.nan_to_num`` of a scalar: NaN -> 0, +-inf -> the largest finite float of that sign."""
    if np.isnan(x):
        return 0.0
    if np.isinf(x):
        return _MAX_FLOAT if x > 0 else -_MAX_FLOAT
    return x


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
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


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
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


@numba.njit(cache=CACHE, nogil=True, inline="always")
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


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
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


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _median_sorted(buf: FloatArray, nv: int) -> float:  # pragma: no cover
    """The order statistics of ``kernels.robust.nanmedian_rows`` on ``nv`` sorted values."""
    if nv == 0:
        return np.nan
    return float(0.5 * (buf[(nv - 1) // 2] + buf[nv // 2]))


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
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
    lh = level_n - 1  # past values in each window (the point itself comes on top)
    sh = spread_n - 1
    c_level = np.empty((K, n))
    n_level = np.empty((K, n))
    c_spread = np.empty((K, n))
    n_spread = np.empty((K, n))
    sum_dev = np.empty((K, n))
    hist = np.zeros((K, n, len(edges) + 1))
    lev = np.empty(max(lh, 1))  # the window's past values, valid ones, sorted
    spr = np.empty(max(sh, 1))
    dev = np.empty(spread_n)
    past = np.zeros(len(edges) + 1)  # histogram of `spr` against (p_cen, p_sc), when `have`
    p_cen = p_sc = np.nan
    for i in range(n):
        have = False
        # Consecutive points of a series share all but one past value: the sorted past values
        # slide (one removal, one insertion) instead of every window being sorted afresh.
        cur = n_before[0, i]
        nl = _insert_valid(history[i], cur + m - lh, cur + m, lev, 0)
        ns = _insert_valid(history[i], cur + m - sh, cur + m, spr, 0)
        for r in range(K):
            cv = n_before[r, i]
            if cv < cur:  # not a forward slide: rebuild
                cur = cv
                nl = _insert_valid(history[i], cur + m - lh, cur + m, lev, 0)
                ns = _insert_valid(history[i], cur + m - sh, cur + m, spr, 0)
                have = False
            while cur < cv:
                new = history[i, cur + m]
                if lh > 0:
                    nl = _remove_value(lev, nl, history[i, cur + m - lh])
                    nl = _insert_value(lev, nl, new)
                if sh > 0:
                    old = history[i, cur + m - sh]
                    ns = _remove_value(spr, ns, old)
                    ns = _insert_value(spr, ns, new)
                    if have:  # the histogram slides too, while the reference stays the same
                        b = _bin(old, p_cen, p_sc, edges)
                        if b >= 0:
                            past[b] -= 1.0
                        b = _bin(new, p_cen, p_sc, edges)
                        if b >= 0:
                            past[b] += 1.0
                cur += 1
            v = x[r, i]
            med, nv = _median_with(lev, nl, v)
            c_level[r, i] = med
            n_level[r, i] = nv
            med, nv = _median_with(spr, ns, v)
            c_spread[r, i] = med
            n_spread[r, i] = nv
            # histogram: the past values' (recounted only when the reference moved), plus the point
            cen = center[r, i]
            sc = scale[r, i]
            if not (have and cen == p_cen and sc == p_sc):
                past[:] = 0.0
                _histogram_sorted(spr, ns, cen, sc, edges, past)
                p_cen, p_sc, have = cen, sc, True
            out = hist[r, i]
            out[:] = past
            b = _bin(v, cen, sc, edges)
            if b >= 0:
                out[b] += 1.0
            # absolute deviations from the spread median in window order (NaN as 0, as nansum)
            d = abs(v - med)
            dev[0] = 0.0 if np.isnan(d) else d
            for c in range(1, spread_n):
                d = abs(history[i, cv + m - c] - med)
                dev[c] = 0.0 if np.isnan(d) else d
            sum_dev[r, i] = pairwise_sum(dev, 0, spread_n)
    return c_level, n_level, c_spread, n_spread, sum_dev, hist


@numba.njit(cache=CACHE, nogil=True, inline="always", error_model="numpy")
def _bin(v: float, cen: float, sc: float, edges: FloatArray) -> int:  # pragma: no cover - compiled
    """``binned_counts``' bin of one value: edges at or below ``(v - cen) / sc``; -1 if NaN."""
    u = (v - cen) / sc
    if np.isnan(u):
        return -1
    b = 0
    while b < len(edges) and u >= edges[b]:
        b += 1
    return b


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _insert_value(buf: FloatArray, nv: int, v: float) -> int:  # pragma: no cover - compiled
    """Insert ``v`` (unless NaN) into the sorted ``buf[:nv]``; the new count."""
    if np.isnan(v):
        return nv
    b = nv - 1
    while b >= 0 and buf[b] > v:
        buf[b + 1] = buf[b]
        b -= 1
    buf[b + 1] = v
    return nv + 1


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _remove_value(buf: FloatArray, nv: int, v: float) -> int:  # pragma: no cover - compiled
    """Remove one ``v`` (unless NaN) from the sorted ``buf[:nv]``, which holds it; the new count."""
    if np.isnan(v):
        return nv
    lo = 0
    hi = nv - 1
    while lo < hi:  # first position holding v
        mid = (lo + hi) >> 1
        if buf[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    for j in range(lo, nv - 1):
        buf[j] = buf[j + 1]
    return nv - 1


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _insert_valid(
    row: FloatArray, start: int, stop: int, buf: FloatArray, nv: int
) -> int:  # pragma: no cover
    """Insert the non-NaN values of ``row[start:stop]`` into the sorted ``buf[:nv]``; new count."""
    for c in range(start, stop):
        nv = _insert_value(buf, nv, row[c])
    return nv


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _median_with(buf: FloatArray, nv: int, v: float) -> tuple[float, int]:  # pragma: no cover - compiled
    """Median (as ``nanmedian_rows``) and count of the sorted ``buf[:nv]`` plus ``v`` (unless NaN).

    ``v`` is not inserted: the k-th of the union is read off ``buf`` around ``v``'s position.
    """
    if np.isnan(v):
        return _median_sorted(buf, nv), nv
    p = 0
    hi = nv
    while p < hi:  # v's position: after every value below it
        mid = (p + hi) >> 1
        if buf[mid] < v:
            p = mid + 1
        else:
            hi = mid
    total = nv + 1
    k1 = (total - 1) // 2
    k2 = total // 2
    a = buf[k1] if k1 < p else (v if k1 == p else buf[k1 - 1])
    b = buf[k2] if k2 < p else (v if k2 == p else buf[k2 - 1])
    return float(0.5 * (a + b)), total


@numba.njit(cache=CACHE, nogil=True, inline="always", error_model="numpy")
def _histogram_sorted(
    buf: FloatArray, nv: int, cen: float, sc: float, edges: FloatArray, out: FloatArray
) -> None:  # pragma: no cover - compiled
    """``binned_counts`` of the sorted values ``buf[:nv]`` into ``out`` (zeros on entry).

    ``u = (v - cen) / sc`` is non-decreasing along sorted values (rounding is monotone, sc > 0),
    so one pass with a rising edge pointer bins them; a NaN ``u`` is not counted, as there.
    """
    n_edges = len(edges)
    b = 0
    for j in range(nv):
        u = (buf[j] - cen) / sc
        if np.isnan(u):
            continue
        while b < n_edges and u >= edges[b]:
            b += 1
        out[b] += 1.0


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _np_maximum(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.maximum`` of two scalars: NaN if either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return a if a >= b else b


@numba.njit(cache=CACHE, nogil=True, inline="always")
def _np_minimum(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.minimum`` of two scalars: NaN if either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return np.nan
    return a if a <= b else b


@numba.njit(cache=CACHE, nogil=True, error_model="numpy")
def recurrences(
    x: FloatArray,
    scale: FloatArray,
    floor: FloatArray,
    gain_scale: FloatArray,
    age_ok: npt.NDArray[np.bool_],
    fh: npt.NDArray[np.int64],
    fd: npt.NDArray[np.int64],
    ew_m: FloatArray,
    ew_v: FloatArray,
    cp: FloatArray,
    cn: FloatArray,
    seas_dev: FloatArray,
    hod_f: FloatArray,
    hod_nf: FloatArray,
    dow_f: FloatArray,
    dow_nf: FloatArray,
    cusum_k: float,
    cusum_cap: float,
    ewma_alpha: float,
    one_minus_alpha: float,
    seasonal_alpha: float,
    min_visits: float,
    mean_ad_to_sigma: float,
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray, FloatArray]:  # pragma: no cover - compiled
    """EWMA + CUSUM and the seasonal profile of a ``(K, n)`` block, point by point per series.

    The per-element arithmetic of ``StreamingScorer._recurrence_rounds`` (the round-by-round
    NumPy loop) in the same order; series are independent (each owns its seasonal bins), so one
    series' rounds run back to back. Updates ``ew_m``, ``ew_v``, ``cp``, ``cn``, ``seas_dev``
    (``(n,)``) and the flat seasonal bins in place.

    Args:
        x, scale, floor, gain_scale: ``(K, n)`` values, robust sigma, sigma floor and
            ``seasonal_gain * scale``.
        age_ok: ``(K, n)`` the series is old enough for the seasonal detector.
        fh, fd: ``(K, n)`` flat index of each point's hour-of-day / day-of-week bin.
        ew_m, ew_v, cp, cn, seas_dev: ``(n,)`` recurrence state.
        hod_f, hod_nf, dow_f, dow_nf: flat seasonal bins and their visit counts.
        cusum_k, cusum_cap, ewma_alpha, one_minus_alpha, seasonal_alpha, min_visits,
            mean_ad_to_sigma: parameters (``one_minus_alpha`` as NumPy forms ``1 - alpha``).

    Returns:
        ``(K, n)`` ``max(S+, S-)``, whether the seasonal detector speaks, its prediction and the
        seasonal z.
    """
    K, n = x.shape
    cusum_max = np.empty((K, n))
    seas_on = np.empty((K, n), dtype=np.bool_)
    pred_all = np.empty((K, n))
    seas_z = np.empty((K, n))
    for i in range(n):
        m_i, v_i, p_i, q_i, sd = ew_m[i], ew_v[i], cp[i], cn[i], seas_dev[i]
        for r in range(K):
            xv = x[r, i]
            # CUSUM of the residual from the EWMA mean (a NaN residual leaves the sums)
            z = (xv - m_i) / scale[r, i]
            if not np.isnan(z):
                p_i = _np_minimum(_np_maximum(p_i + z - cusum_k, 0.0), cusum_cap)
                q_i = _np_minimum(_np_maximum(q_i - z - cusum_k, 0.0), cusum_cap)
            cusum_max[r, i] = _np_maximum(p_i, q_i)
            # EWMA mean/variance (a series starts at its first value)
            if not np.isnan(xv):
                if np.isnan(m_i):
                    m_i = xv
                    v_i = 0.0
                else:
                    d = xv - m_i
                    ad = ewma_alpha * d
                    v_i = one_minus_alpha * (v_i + ad * d)
                    m_i = m_i + ad
            # seasonal profile: hour-of-day level plus day-of-week effect
            h = fh[r, i]
            w = fd[r, i]
            hod_pred = hod_f[h]
            visits = hod_nf[h]
            dow_raw = dow_f[w]
            dow_eff = _nan_to_num(dow_raw)
            pred = hod_pred + dow_eff
            pred_all[r, i] = pred
            resid = xv - pred
            seas_scale = _fmax(mean_ad_to_sigma * sd, floor[r, i])
            seas_on[r, i] = visits >= min_visits and age_ok[r, i] and seas_scale < gain_scale[r, i]
            seas_z[r, i] = resid / seas_scale
            # learn the seasonal bins (targets as in kernels.seasonal_update)
            y = xv - dow_eff
            if not np.isnan(y):
                n_h = visits + 1.0
                step_h = _np_maximum(seasonal_alpha, 1.0 / n_h)
                hod_f[h] = y if np.isnan(hod_pred) else hod_pred + step_h * (y - hod_pred)
                hod_nf[h] = n_h
            y2 = xv - hod_pred
            if not np.isnan(y2):
                n_d = dow_nf[w] + 1.0
                step_d = _np_maximum(seasonal_alpha, 1.0 / n_d)
                dow_f[w] = y2 if np.isnan(dow_raw) else dow_raw + step_d * (y2 - dow_raw)
                dow_nf[w] = n_d
            # residual sigma from clipped residuals (NaN residual: unchanged)
            abs_res = _np_minimum(abs(resid), 5.0 * seas_scale)
            if not np.isnan(abs_res):
                sd = abs_res if np.isnan(sd) else sd + ewma_alpha * (abs_res - sd)
        ew_m[i], ew_v[i], cp[i], cn[i], seas_dev[i] = m_i, v_i, p_i, q_i, sd
    return cusum_max, seas_on, pred_all, seas_z
