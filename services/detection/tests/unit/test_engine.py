"""The streaming engine: causality, rounds, slot independence, checkpoints, outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sentinel.detection.engine import (
    AnomalyKind,
    AnomalyType,
    Detector,
    EngineConfig,
    Severity,
    StreamingScorer,
    anomaly_type_for,
    rounds_of,
)

SEED = 7
NS_MIN = 60_000_000_000
CFG = EngineConfig(capacity=8, window=64, warmup_points=40, reference_refresh=2)


def series(n: int, seed: int = SEED, spike_at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.int64) * 5 * NS_MIN + 1_700_000_000_000_000_000
    x = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 1, n)
    if spike_at is not None:
        x[spike_at] += 40
    return t, x


def test_rounds_hold_the_kth_point_of_each_slot_in_input_order() -> None:
    slots = np.array([3, 1, 3, 3, 1, 2])
    rounds = rounds_of(slots)
    assert [r.tolist() for r in rounds] == [[0, 1, 5], [2, 4], [3]]


def test_a_batch_scores_like_one_point_per_call() -> None:
    t, x = series(300)
    one = StreamingScorer(CFG)
    single = np.array([one.score([0], t[i : i + 1], x[i : i + 1]).score[0] for i in range(300)])
    batched = StreamingScorer(CFG).score(np.zeros(300, dtype=np.int64), t, x).score
    np.testing.assert_array_equal(single, batched)


def test_slots_are_independent_of_each_other() -> None:
    t, a = series(250, seed=1)
    _, b = series(250, seed=2)
    alone = StreamingScorer(CFG).score(np.zeros(250, dtype=np.int64), t, a).score
    slots = np.empty(500, dtype=np.int64)
    slots[0::2], slots[1::2] = 5, 2
    tt = np.repeat(t, 2)
    xx = np.empty(500)
    xx[0::2], xx[1::2] = a, b
    mixed = StreamingScorer(CFG).score(slots, tt, xx).score
    np.testing.assert_array_equal(mixed[0::2], alone)


def test_a_score_depends_only_on_the_past() -> None:
    t, x = series(300)
    y = x.copy()
    y[200:] += 1000.0
    sx = StreamingScorer(CFG).score(np.zeros(300, dtype=np.int64), t, x).score
    sy = StreamingScorer(CFG).score(np.zeros(300, dtype=np.int64), t, y).score
    np.testing.assert_array_equal(sx[:200], sy[:200])


def test_warm_up_scores_zero_and_a_spike_scores_high() -> None:
    t, x = series(600, spike_at=500)
    res = StreamingScorer(CFG).score(np.zeros(600, dtype=np.int64), t, x)
    assert np.all(res.score[: CFG.warmup_points] == 0)
    assert np.all((res.score >= 0) & (res.score <= 1))
    assert res.is_anomaly[500]
    assert res.score[500] == res.score[300:].max()
    assert res.kind[500] in (AnomalyKind.SPIKE, AnomalyKind.SEASONAL_DEVIATION, AnomalyKind.LEVEL_SHIFT)
    assert res.direction[500] == 1
    assert res.severity[500] >= Severity.LOW
    assert abs(res.baseline[500] - (x[500] - 40)) < 15
    assert res.contributions.shape == (600, len(Detector))
    assert res.contributions[500].max() == pytest.approx(res.score[500])


def test_missing_values_score_zero_and_are_not_learnt() -> None:
    t, x = series(200)
    y = x.copy()
    y[150] = np.nan
    s1 = StreamingScorer(CFG)
    r = s1.score(np.zeros(200, dtype=np.int64), t, y)
    assert r.score[150] == 0
    s2 = StreamingScorer(CFG)
    s2.score(np.zeros(199, dtype=np.int64), np.delete(t, 150), np.delete(y, 150))
    np.testing.assert_array_equal(s1.state.floats["buf"][0], s2.state.floats["buf"][0])


def test_exported_state_resumes_exactly() -> None:
    t, x = series(400, spike_at=350)
    ref = StreamingScorer(CFG)
    ref.score(np.full(200, 3), t[:200], x[:200])
    blob = ref.state.export(3)
    want = ref.score(np.full(200, 3), t[200:], x[200:]).score
    restored = StreamingScorer(CFG)
    restored.state.import_(6, blob)
    got = restored.score(np.full(200, 6), t[200:], x[200:]).score
    np.testing.assert_array_equal(got, want)


def test_import_rejects_foreign_state() -> None:
    s = StreamingScorer(CFG)
    blob = s.state.export(0)
    with pytest.raises(ValueError, match="magic"):
        s.state.import_(0, b"XXXX" + blob[4:])
    with pytest.raises(ValueError, match="window"):
        StreamingScorer(dataclasses.replace(CFG, window=32)).state.import_(0, blob)
    with pytest.raises(ValueError, match="bytes"):
        s.state.import_(0, blob[:-8])


def test_reset_gives_a_fresh_series() -> None:
    t, x = series(200)
    s = StreamingScorer(CFG)
    first = s.score(np.zeros(200, dtype=np.int64), t, x).score
    s.reset([0])
    again = s.score(np.zeros(200, dtype=np.int64), t, x).score
    np.testing.assert_array_equal(first, again)


def test_bad_input_is_rejected() -> None:
    s = StreamingScorer(CFG)
    with pytest.raises(ValueError, match="slot"):
        s.score([CFG.capacity], [0], [1.0])
    with pytest.raises(ValueError, match="length"):
        s.score([0, 1], [0], [1.0])
    with pytest.raises(ValueError, match="weights"):
        EngineConfig(weights=(1.0,))


@pytest.mark.parametrize(
    ("metric", "direction", "detector", "want"),
    [
        ("latency_ms", 1, Detector.SPIKE, AnomalyType.LATENCY_SPIKE),
        ("ttft_ms", 1, Detector.LEVEL_SHIFT, AnomalyType.LATENCY_SPIKE),
        ("latency_ms", -1, Detector.SPIKE, AnomalyType.LEVEL_SHIFT),
        ("request_rate", -1, Detector.LEVEL_SHIFT, AnomalyType.THROUGHPUT_DROP),
        ("tokens_per_s", -1, Detector.SPIKE, AnomalyType.THROUGHPUT_DROP),
        ("error_rate", 1, Detector.CUSUM, AnomalyType.ERROR_RATE_INCREASE),
        ("total_tokens", 1, Detector.SPIKE, AnomalyType.TOKEN_USAGE_SPIKE),
        ("cost_usd", -1, Detector.DRIFT, AnomalyType.COST_ANOMALY),
        ("queue_depth", 1, Detector.VARIANCE_CHANGE, AnomalyType.VARIANCE_CHANGE),
        ("queue_depth", 1, Detector.DRIFT, AnomalyType.DRIFT),
        ("queue_depth", 1, Detector.SEASONAL, AnomalyType.SEASONAL_DEVIATION),
    ],
)
def test_anomaly_type_for_maps_metric_and_direction(
    metric: str, direction: int, detector: Detector, want: AnomalyType
) -> None:
    assert anomaly_type_for(metric, direction, detector) is want


def test_config_lists_its_scalar_parameters() -> None:
    params = EngineConfig().parameters()
    assert params["threshold"] == EngineConfig().threshold
    assert "window" in params
