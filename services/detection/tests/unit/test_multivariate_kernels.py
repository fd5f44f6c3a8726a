"""Multivariate feature and calibration kernels against naive loops, plus hypothesis properties."""

from __future__ import annotations

import math
import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentinel.detection.kernels import multivariate as mk
from sentinel.detection.kernels.robust import MAD_TO_SIGMA

SEED = 20261124


def test_bucket_sums_match_a_naive_loop() -> None:
    rng = np.random.default_rng(SEED)
    n, cells = 500, 7
    cell = rng.integers(0, cells, n)
    column = rng.integers(0, len(mk.INPUTS), n)
    value = rng.normal(10, 3, n)
    sums, counts = mk.bucket_sums(cell, column, value, cells)
    want_s = [[0.0] * len(mk.INPUTS) for _ in range(cells)]
    want_c = [[0.0] * len(mk.INPUTS) for _ in range(cells)]
    for c, j, v in zip(cell.tolist(), column.tolist(), value.tolist(), strict=True):
        want_s[c][j] += v
        want_c[c][j] += 1
    np.testing.assert_allclose(sums, want_s)
    np.testing.assert_array_equal(counts, want_c)


def naive_features(calls: list[dict[str, float]], width_s: float) -> list[float]:
    """One bucket's features from its calls, each a dict of the inputs it carries."""

    def mean(name: str) -> float:
        vals = [c[name] for c in calls if name in c]
        return sum(vals) / len(vals) if vals else math.nan

    requests = sum(c.get("llm.requests", 0.0) for c in calls)
    errors = sum(c.get("llm.errors", 0.0) for c in calls)
    return [
        requests / width_s if requests else math.nan,
        mean("llm.latency_ms"),
        mean("llm.ttft_ms"),
        mean("llm.tokens.total"),
        mean("llm.cost_usd"),
        errors / requests if requests else math.nan,
    ]


def test_raw_features_match_per_call_means() -> None:
    rng = np.random.default_rng(SEED)
    buckets: list[list[dict[str, float]]] = []
    for b in range(5):
        calls = []
        for _ in range(int(rng.integers(1, 30))):
            call = {
                "llm.requests": 1.0,
                "llm.errors": float(rng.random() < 0.1),
                "llm.latency_ms": float(rng.lognormal(6, 0.3)),
                "llm.tokens.total": float(rng.integers(10, 900)),
                "llm.cost_usd": float(rng.random() * 1e-3),
            }
            if b != 2:  # bucket 2 has no TTFT at all
                call["llm.ttft_ms"] = float(rng.lognormal(4, 0.2))
            calls.append(call)
        buckets.append(calls)
    cell, column, value = [], [], []
    for b, calls in enumerate(buckets):
        for call in calls:
            for name, v in call.items():
                cell.append(b)
                column.append(mk.INPUTS.index(name))
                value.append(v)
    sums, counts = mk.bucket_sums(np.array(cell), np.array(column), np.array(value), len(buckets))
    got = mk.raw_features(sums, counts, 60.0)
    want = np.array([naive_features(calls, 60.0) for calls in buckets])
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[2, mk.FEATURES.index("ttft_ms")])


def test_model_space_is_monotone_and_keeps_nan() -> None:
    raw = np.array([[1.0, 100.0, 10.0, 50.0, 1e-4, 0.01], [2.0, 200.0, np.nan, 60.0, 2e-4, 0.25]])
    out = mk.model_space(raw)
    assert np.isnan(out[1, 2])
    assert np.all(out[1, [0, 1, 3, 4, 5]] > out[0, [0, 1, 3, 4, 5]])
    assert math.isclose(out[1, mk.ERROR_RATE], math.asin(0.5))


def naive_center_scale(rows: np.ndarray, floor: float) -> tuple[float, float]:
    vals = [float(v) for v in rows if not math.isnan(v)]
    if not vals:
        return math.nan, floor
    med = statistics.median(vals)
    mad = statistics.median(abs(v - med) for v in vals)
    return med, max(MAD_TO_SIGMA * mad, floor)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 25), st.integers(1, 3)),
        elements=st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(np.nan)),
    )
)
def test_robust_center_scale_matches_a_naive_loop(history: np.ndarray) -> None:
    center, scale = mk.robust_center_scale(history, 0.05)
    for i in range(history.shape[0]):
        for f in range(history.shape[2]):
            want_c, want_s = naive_center_scale(history[i, :, f], 0.05)
            if math.isnan(want_c):
                assert math.isnan(center[i, f])
            else:
                assert math.isclose(center[i, f], want_c, rel_tol=1e-9, abs_tol=1e-9)
            assert math.isclose(scale[i, f], want_s, rel_tol=1e-9, abs_tol=1e-9)


def test_standardise_treats_unobserved_as_typical_and_clips() -> None:
    z = mk.standardise(np.array([[np.nan, 100.0, 1.0]]), np.zeros((1, 3)), np.ones((1, 3)), 20.0)
    np.testing.assert_array_equal(z, [[0.0, 20.0, 1.0]])


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-50, 50, allow_nan=False)),
    hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-100, 100, allow_nan=False)),
    st.integers(1, 30),
)
def test_tail_pvalues_are_valid_and_decrease_with_the_score(
    train: np.ndarray, scores: np.ndarray, tail: int
) -> None:
    train = np.sort(train)
    p = mk.tail_pvalues(train, scores, tail)
    assert np.all((p > 0) & (p <= 1))
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(p[order]) <= 1e-15)


def test_tail_pvalues_match_the_ecdf_below_the_tail_and_go_past_the_max() -> None:
    train = np.arange(100, dtype=np.float64)
    p = mk.tail_pvalues(train, np.array([10.0, 50.0, 99.0, 120.0]), 10)
    assert math.isclose(p[0], (1 + 90) / 101)
    assert math.isclose(p[1], (1 + 50) / 101)
    assert p[2] <= 2 / 101
    assert 0 < p[3] < p[2] / 100


def test_tail_pvalues_are_uniform_on_fresh_in_distribution_scores() -> None:
    rng = np.random.default_rng(SEED)
    train = np.sort(rng.gamma(2.0, 1.0, 4000))
    p = mk.tail_pvalues(train, rng.gamma(2.0, 1.0, 20_000), 100)
    for q in (0.01, 0.05, 0.1, 0.5):
        assert abs(float(np.mean(p <= q)) - q) < 0.25 * q + 0.004


def test_cauchy_combination_of_one_detector_is_the_identity() -> None:
    p = np.array([[0.5], [0.01], [1e-20]])
    combined, share = mk.cauchy_combine(p, np.array([1.0]))
    np.testing.assert_allclose(combined, p[:, 0], rtol=1e-6)
    np.testing.assert_allclose(share, 1.0)


def test_cauchy_combination_is_uniform_under_the_null_and_shares_sum_to_one() -> None:
    rng = np.random.default_rng(SEED)
    p = np.clip(rng.random((50_000, 4)), 1e-12, 1.0)
    combined, share = mk.cauchy_combine(p, np.ones(4))
    assert abs(float(np.mean(combined <= 0.01)) - 0.01) < 0.003
    np.testing.assert_allclose(share.sum(axis=1), 1.0, rtol=1e-9)


def test_cauchy_combination_is_led_by_the_smallest_p() -> None:
    combined, share = mk.cauchy_combine(np.array([[1e-8, 0.5, 0.5, 0.5]]), np.ones(4))
    assert combined[0] < 1e-7
    assert share[0].argmax() == 0


def test_surprise_score_maps_half_to_one_half() -> None:
    s = mk.surprise_score(np.array([1.0, 1e-2, 1e-300]), 2.0)
    np.testing.assert_allclose(s, [0.0, 0.5, 300 / 302])


def test_the_error_rate_scale_is_at_least_its_binomial_sampling_sd() -> None:
    rng = np.random.default_rng(SEED)
    n = 40
    p_hat = rng.binomial(n, 0.03, 100_000) / n
    sd = float(np.std(np.arcsin(np.sqrt(p_hat))))
    floor = mk.sampling_floor(np.full((1, mk.N_FEATURES), 1e-3), np.array([float(n)]))
    assert floor[0, mk.ERROR_RATE] >= 0.6 * sd
    assert floor[0, 0] == 1e-3
