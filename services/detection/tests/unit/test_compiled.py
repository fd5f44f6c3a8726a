"""Compiled kernels: bit-identical to the NumPy kernels they replace (and to a naive reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentinel.detection import kernels as k
from sentinel.detection.engine import EngineConfig, StreamingScorer
from sentinel.detection.kernels import compiled
from sentinel.detection.kernels.robust import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA

SEED = 20240607
wide = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
EDGES = np.array(EngineConfig().psi_edges)


def naive_pairwise(values: list[float]) -> float:
    """NumPy's pairwise summation written out plainly (numpy/_core/src/umath/loops_utils.h)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n <= 128:
        acc = values[:8]
        i = 8
        while i < n - n % 8:
            acc = [acc[j] + values[i + j] for j in range(8)]
            i += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for v in values[i:]:
            total += v
        return total
    half = n // 2
    half -= half % 8
    return naive_pairwise(values[:half]) + naive_pairwise(values[half:])


@given(hnp.arrays(np.float64, st.integers(0, 1200), elements=wide))
@settings(max_examples=200, deadline=None)
def test_pairwise_sum_adds_in_numpys_order(a: np.ndarray) -> None:
    got = compiled.pairwise_sum(a, 0, len(a))
    assert got == np.sum(a) or (math.isnan(got) and math.isnan(np.sum(a)))
    assert got == naive_pairwise(a.tolist()) or math.isnan(got)


def test_pairwise_sum_is_not_a_left_to_right_sum() -> None:
    # the test above could not tell the two apart on tame data: this one can
    a = np.array([1.0] + [1e-16] * 300)
    assert compiled.pairwise_sum(a, 0, len(a)) == np.sum(a) != math.fsum([1.0]) + 0.0
    left_to_right = 0.0
    for v in a:
        left_to_right += v
    assert compiled.pairwise_sum(a, 0, len(a)) != left_to_right


def _windows(rng: np.random.Generator, kind: int, rows: int, w: int) -> np.ndarray:
    if kind == 0:
        return rng.normal(100, 10, (rows, w))
    if kind == 1:  # counts: MAD is 0, the mean-deviation floor decides
        return rng.integers(0, 3, (rows, w)).astype(np.float64)
    if kind == 2:  # flat with rare steps: the range floor decides
        win = np.full((rows, w), 3.0)
        win[:, ::7] = 4.0
        return win
    if kind == 3:  # magnitudes far apart
        return rng.gamma(2.0, 1.0, (rows, w)) * 10.0 ** rng.integers(-300, 300, (rows, 1))
    return rng.standard_cauchy((rows, w))


@pytest.mark.parametrize("w", [32, 33, 100, 256, 257, 300])
@pytest.mark.parametrize("kind", range(5))
def test_compiled_reference_equals_the_numpy_reference(w: int, kind: int) -> None:
    rng = np.random.default_rng(SEED + w * 7 + kind)
    scorer = StreamingScorer(EngineConfig(capacity=1, window=w))
    for _ in range(5):
        rows = int(rng.integers(1, 40))
        win = _windows(rng, kind, rows, w)
        spread = np.where(rng.random(rows) < 0.2, np.nan, rng.random(rows) * 100)
        got = scorer._reference(win, spread)
        want = scorer._reference_numpy(win, spread)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(8, 70)), elements=wide),
    st.floats(0, 1e300),
)
@settings(max_examples=200, deadline=None)
def test_compiled_reference_equals_the_numpy_kernels(win: np.ndarray, spread: float) -> None:
    cfg = EngineConfig()
    srt = np.sort(win, axis=1)
    spreads = np.full(len(win), spread)
    center, scale, hist = compiled.reference_sorted_rows(
        win, srt, spreads, EDGES, cfg.abs_floor, cfg.rel_floor, cfg.range_floor, MAD_TO_SIGMA,
        cfg.mean_dev_floor * MEAN_AD_TO_SIGMA,
    )  # fmt: skip
    np.testing.assert_array_equal(center, k.nanmedian_rows(win))
    floor = np.fmax(cfg.abs_floor + cfg.rel_floor * np.abs(np.nan_to_num(center)), cfg.range_floor * spreads)
    np.testing.assert_array_equal(
        scale, k.robust_scale(win, center, mean_dev_floor=cfg.mean_dev_floor, floor=floor)
    )
    ok = np.isfinite(center) & np.isfinite(scale)
    np.testing.assert_array_equal(hist[ok], k.binned_counts(win[ok], center[ok], scale[ok], EDGES))


def test_a_batch_mixing_young_and_full_windows_equals_the_general_kernels() -> None:
    rng = np.random.default_rng(SEED)
    scorer = StreamingScorer(EngineConfig(capacity=1))
    for kind in range(5):
        win = _windows(rng, kind, 30, 256)
        win[::3, : int(rng.integers(1, 250))] = np.nan  # every third series younger than the window
        spread = rng.random(30) * 10
        got = scorer._reference(win, spread)
        want = scorer._reference_partial(win, spread)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


@given(
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(1, 12),
    st.integers(3, 40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.1, 0.5]),
)
@settings(max_examples=150, deadline=None)
def test_recent_window_stats_equal_the_numpy_kernels(
    rounds: int, n: int, level_n: int, spread_n: int, seed: int, nan_share: float
) -> None:
    rng = np.random.default_rng(seed)
    m = max(level_n, spread_n) - 1
    x = rng.normal(50, 5, (rounds, n)) * rng.choice([1.0, 1e-3, 1e200], (1, n))
    x[rng.random(x.shape) < nan_share] = np.nan
    history = rng.normal(50, 5, (n, m + rounds))
    history[rng.random(history.shape) < nan_share] = np.nan
    history[:, :3] = np.round(history[:, :3])  # ties
    n_before = np.cumsum(rng.integers(0, 2, (rounds, n)), axis=0) - 1
    n_before = np.clip(n_before, 0, rounds - 1)
    center = rng.normal(50, 1, (rounds, n))
    center[:, 0] = np.nan  # a series without a reference yet
    scale = np.abs(rng.normal(5, 1, (rounds, n)))
    got = compiled.recent_window_stats(x, history, n_before, level_n, spread_n, center, scale, EDGES)
    # the windows, materialised the plain way
    win = np.empty((rounds, n, m + 1))
    for r in range(rounds):
        for i in range(n):
            win[r, i, 0] = x[r, i]
            for c in range(1, m + 1):
                win[r, i, c] = history[i, n_before[r, i] + m - c]
    rows = win.reshape(rounds * n, m + 1)
    level, spread = rows[:, :level_n], rows[:, :spread_n]
    c_spread = k.nanmedian_rows(spread)
    want = (
        k.nanmedian_rows(level),
        np.sum(~np.isnan(level), axis=1).astype(np.float64),
        c_spread,
        np.sum(~np.isnan(spread), axis=1).astype(np.float64),
        np.nansum(np.abs(spread - c_spread[:, None]), axis=1),
        k.binned_counts(spread, center.ravel(), scale.ravel(), EDGES),
    )
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.reshape(b.shape), b)
