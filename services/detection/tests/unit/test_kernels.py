"""Kernels against deliberately naive per-series loops, plus hypothesis properties."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentinel.detection import kernels as k

SEED = 20240607
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def windows(draw_rows: int = 6, max_w: int = 40) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, draw_rows), st.integers(2, max_w)),
        elements=st.one_of(finite, st.just(np.nan)),
    )


def naive_median(row: np.ndarray) -> float:
    vals = [float(v) for v in row if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def naive_scale(row: np.ndarray, center: float, mean_dev_floor: float, floor: float) -> float:
    vals = [float(v) for v in row if not math.isnan(v)]
    if not vals:
        return math.nan
    devs = [abs(v - center) for v in vals]
    mad = statistics.median(devs)
    return max(1.482602218505602 * mad, mean_dev_floor * 1.2533141373155001 * sum(devs) / len(devs), floor)


@settings(max_examples=60, deadline=None)
@given(windows())
def test_nanmedian_rows_matches_a_per_row_loop(a: np.ndarray) -> None:
    got = k.nanmedian_rows(a)
    want = np.array([naive_median(r) for r in a])
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(windows(), st.floats(0.0, 2.0))
def test_robust_zscore_matches_a_per_row_loop(a: np.ndarray, mdf: float) -> None:
    rng = np.random.default_rng(SEED)
    x = np.asarray(rng.normal(size=a.shape[0]), dtype=np.float64) * 10
    got = k.robust_zscore(a, x, mean_dev_floor=mdf, floor=1e-6)
    for i, row in enumerate(a):
        c = naive_median(row)
        s = naive_scale(row, c, mdf, 1e-6)
        n = int(np.sum(~np.isnan(row)))
        want = (x[i] - c) / s if n >= 2 else math.nan
        assert got.center[i] == pytest.approx(c, rel=1e-9, nan_ok=True)
        assert got.scale[i] == pytest.approx(s, rel=1e-9, nan_ok=True)
        assert got.z[i] == pytest.approx(want, rel=1e-9, abs=1e-9, nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(3, 30)), elements=st.floats(-100, 100)),
    st.floats(0.1, 100),
    st.floats(-1000, 1000),
)
def test_robust_zscore_is_invariant_to_affine_rescaling(a: np.ndarray, mul: float, add: float) -> None:
    x = a[:, 0] + 1.0
    z1 = k.robust_zscore(a, x, floor=1e-12).z
    z2 = k.robust_zscore(a * mul + add, x * mul + add, floor=1e-12 * mul).z
    ok = k.robust_zscore(a, x, floor=1e-12).scale > 1e-6
    np.testing.assert_allclose(z1[ok], z2[ok], rtol=1e-6, atol=1e-6)


def test_robust_scale_floor_keeps_counts_and_flat_stretches_finite() -> None:
    counts = np.array([[0.0] * 30 + [1.0] * 5, [3.0] * 35])
    r = k.robust_zscore(counts, np.array([1.0, 4.0]), mean_dev_floor=0.5, floor=0.01)
    assert np.all(np.isfinite(r.z))
    assert r.scale[0] > 0.05  # the mean deviation sees the minority of ones
    assert r.scale[1] == pytest.approx(0.01)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 50)), elements=st.floats(-1e3, 1e3)),
    st.floats(0.01, 1.0),
)
def test_ewma_update_matches_a_loop(xs: np.ndarray, alpha: float) -> None:
    mean = np.full(xs.shape[0], np.nan)
    var = np.zeros(xs.shape[0])
    for t in range(xs.shape[1]):
        mean, var = k.ewma_update(mean, var, xs[:, t], alpha)
    for i, row in enumerate(xs):
        m, v = float(row[0]), 0.0
        for x in row[1:]:
            d = float(x) - m
            m += alpha * d
            v = (1 - alpha) * (v + alpha * d * d)
        assert mean[i] == pytest.approx(m, rel=1e-9, abs=1e-9)
        assert var[i] == pytest.approx(v, rel=1e-9, abs=1e-6)
        assert var[i] >= 0


def test_ewma_update_skips_missing_points() -> None:
    m, v = k.ewma_update(np.array([1.0]), np.array([2.0]), np.array([np.nan]), 0.5)
    assert (m[0], v[0]) == (1.0, 2.0)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 60)), elements=st.floats(-5, 5)),
    st.floats(0.0, 2.0),
    st.floats(1.0, 20.0),
)
def test_cusum_update_matches_a_loop_and_stays_in_bounds(zs: np.ndarray, kk: float, cap: float) -> None:
    sp = np.zeros(zs.shape[0])
    sn = np.zeros(zs.shape[0])
    for t in range(zs.shape[1]):
        sp, sn = k.cusum_update(sp, sn, zs[:, t], kk, cap)
        assert np.all((sp >= 0) & (sp <= cap) & (sn >= 0) & (sn <= cap))
    for i, row in enumerate(zs):
        p = n = 0.0
        for z in row:
            p = min(max(0.0, p + z - kk), cap)
            n = min(max(0.0, n - z - kk), cap)
        assert sp[i] == pytest.approx(p, abs=1e-9)
        assert sn[i] == pytest.approx(n, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 4_000_000_000))
def test_seasonal_bins_match_the_calendar(seconds: int) -> None:
    bins = k.seasonal_bins(np.array([seconds * 1_000_000_000]))
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    assert bins.hour[0] == dt.hour
    assert bins.dow[0] == dt.weekday()


def test_seasonal_update_matches_a_loop() -> None:
    rng = np.random.default_rng(SEED)
    n, nb, steps, alpha = 3, 4, 200, 0.1
    prof = np.full((n, nb), np.nan)
    cnt = np.zeros((n, nb))
    bins = rng.integers(0, nb, size=(steps, n))
    ys = rng.normal(size=(steps, n))
    ys[5, 1] = np.nan
    for t in range(steps):
        prof, cnt = k.seasonal_update(prof, cnt, bins[t], ys[t], alpha)
    for i in range(n):
        for b in range(nb):
            m, c = math.nan, 0
            for t in range(steps):
                if bins[t, i] != b or math.isnan(ys[t, i]):
                    continue
                c += 1
                m = ys[t, i] if math.isnan(m) else m + max(alpha, 1 / c) * (ys[t, i] - m)
            assert cnt[i, b] == c
            assert prof[i, b] == pytest.approx(m, rel=1e-9, nan_ok=True)
    np.testing.assert_array_equal(k.seasonal_predict(prof, np.array([0, 1, 2])), prof[[0, 1, 2], [0, 1, 2]])


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(4, 40)), elements=st.floats(-100, 100)),
    hnp.arrays(np.float64, st.tuples(st.just(4), st.integers(3, 12)), elements=st.floats(-100, 100)),
)
def test_level_and_variance_tests_match_a_loop(ref: np.ndarray, rec_all: np.ndarray) -> None:
    rec = rec_all[: ref.shape[0]]
    lz = k.level_shift_z(ref, rec, max_eff_n=4.0, floor=1e-3)
    vz = k.variance_change_z(ref, rec, max_eff_n=8.0, floor=1e-3)
    for i in range(ref.shape[0]):
        c = naive_median(ref[i])
        s = naive_scale(ref[i], c, 0.5, 1e-3)
        m = len(rec[i])
        want_l = (naive_median(rec[i]) - c) / (1.2533141373155001 * s / math.sqrt(min(m, 4.0)))
        cr = naive_median(rec[i])
        s_rec = max(1.2533141373155001 * sum(abs(v - cr) for v in rec[i]) / m, 1e-3)
        want_v = math.log(s_rec / s) * math.sqrt(2 * (min(m, 8.0) - 1))
        assert lz[i] == pytest.approx(want_l, rel=1e-9, abs=1e-9)
        assert vz[i] == pytest.approx(want_v, rel=1e-9, abs=1e-9)
    # negating the data negates the level shift and keeps the variance change
    np.testing.assert_allclose(k.level_shift_z(-ref, -rec, max_eff_n=4.0, floor=1e-3), -lz, atol=1e-9)
    np.testing.assert_allclose(k.variance_change_z(-ref, -rec, max_eff_n=8.0, floor=1e-3), vz, atol=1e-9)


def test_rate_tests_match_their_formulas_and_grow_with_the_count() -> None:
    counts = np.arange(0, 30, dtype=np.float64)
    z = k.poisson_upper_z(counts, np.full(30, 4.0))
    np.testing.assert_allclose(z, (counts - 0.5 - 4.0) / 2.0)
    assert np.all(np.diff(z) > 0)
    zb = k.binomial_upper_z(np.array([5.0, 50.0, 1.0]), np.array([100.0, 100.0, 0.0]), np.array([0.05] * 3))
    assert zb[0] == pytest.approx((5 - 0.5 - 5) / math.sqrt(100 * 0.05 * 0.95))
    assert zb[1] > 10
    assert math.isnan(zb[2])
    # a series that never erred still gets a finite z for its first errors
    assert np.isfinite(k.poisson_upper_z(np.array([3.0]), np.array([0.0]))[0])


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 40)), elements=st.floats(-10, 10)),
    hnp.arrays(np.float64, st.tuples(st.just(4), st.integers(2, 20)), elements=st.floats(-10, 10)),
)
def test_psi_matches_a_loop_and_is_non_negative(ref: np.ndarray, rec_all: np.ndarray) -> None:
    rec = rec_all[: ref.shape[0]]
    edges = np.array([-1.0, 0.0, 1.0])
    center = np.zeros(ref.shape[0])
    scale = np.full(ref.shape[0], 2.0)
    hq = k.binned_counts(ref, center, scale, edges)
    hr = k.binned_counts(rec, center, scale, edges)
    got = k.psi(hq, hr)
    for i in range(ref.shape[0]):

        def hist(row: np.ndarray) -> list[float]:
            h = [0.0] * 4
            for v in row:
                u = v / 2.0
                h[sum(1 for e in edges if u >= e)] += 1
            return h

        q, r = hist(ref[i]), hist(rec[i])
        assert list(hq[i]) == q
        assert list(hr[i]) == r
        qp = [(c + 0.5) / (sum(q) + 2.0) for c in q]
        rp = [(c + 0.5) / (sum(r) + 2.0) for c in r]
        want = sum((b - a) * math.log(b / a) for a, b in zip(qp, rp, strict=True))
        assert got[i] == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert got[i] >= 0
    same = k.psi(hq, hq)
    np.testing.assert_allclose(same, 0.0, atol=1e-12)
    assert np.all(np.diff(k.psi_logsf(np.array([0.0, 0.1, 0.5, 2.0]), 8.0, 4)) < 0)


@pytest.mark.parametrize("z", [-4.0, -1.0, 0.0, 0.3, 1.5, 3.0, 6.0, 12.0, 30.0])
def test_normal_logsf_matches_erfc(z: float) -> None:
    want = math.log(0.5 * math.erfc(z / math.sqrt(2)))
    assert float(k.normal_logsf(np.array([z]))[0]) == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_tail_transforms_are_monotone_and_keep_nan() -> None:
    z = np.linspace(-5, 60, 500)
    assert np.all(np.diff(k.normal_logsf(z)) < 0)
    assert np.all(np.diff(k.chi2_logsf(np.linspace(0, 200, 300), 6.0)) < 0)
    assert np.isnan(k.normal_logsf(np.array([np.nan]))[0])
    s = k.two_sided_surprise(np.array([0.0, np.nan, 3.0, -3.0]))
    assert s[0] == pytest.approx(0.0, abs=1e-6)
    assert s[1] == 0.0
    assert s[2] == pytest.approx(-math.log10(math.erfc(3 / math.sqrt(2))), rel=1e-6)
    assert s[2] == s[3]


def naive_hist(row: np.ndarray, center: float, scale: float, edges: np.ndarray) -> list[float]:
    h = [0.0] * (len(edges) + 1)
    for v in row:
        u = (v - center) / scale
        if not math.isnan(u):
            h[sum(1 for e in edges if u >= e)] += 1
    return h


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.sampled_from([3, 8, 33, 64, 256, 300])),
        elements=st.one_of(st.floats(-50, 50), st.just(np.nan), st.sampled_from([0.0, 1.0, 2.0])),
    ),
    st.floats(-5, 5),
    st.floats(0.01, 10),
)
def test_binned_counts_match_a_loop_for_short_and_wide_rows(a: np.ndarray, c: float, s: float) -> None:
    # widths up to 33 take the packed-count path, wider ones the bincount path
    edges = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    center = np.full(a.shape[0], c)
    scale = np.full(a.shape[0], s)
    got = k.binned_counts(a, center, scale, edges)
    for i, row in enumerate(a):
        assert list(got[i]) == naive_hist(row, c, s, edges)
    finite = ~np.isnan(a).any(axis=1)
    if finite.any():
        srt = np.sort(a[finite], axis=1)
        np.testing.assert_array_equal(
            k.binned_counts_sorted(srt, center[finite], scale[finite], edges), got[finite]
        )


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(2, 70)),
        elements=st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, 1.0, 5.0])),
    )
)
def test_mad_of_sorted_matches_the_median_of_deviations(a: np.ndarray) -> None:
    center = k.nanmedian_rows(a)
    got = k.mad_of_sorted(np.sort(a, axis=1), center)
    for i, row in enumerate(a):
        assert got[i] == naive_median(np.abs(row - center[i]))
