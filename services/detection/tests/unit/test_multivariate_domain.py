"""Bucket folding, the pooled multivariate scorer (real PyOD) and its episodes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sentinel.detection.domain import multivariate as mv
from sentinel.detection.kernels import multivariate as mk

SEED = 20261124
MIN_NS = 60_000_000_000
T0 = 1_800_000_000 * 1_000_000_000 // MIN_NS * MIN_NS
A = mv.Group("acme", (("model", "gpt-4o"), ("service", "chat")))
B = mv.Group("acme", (("model", "claude"), ("service", "rag")))


def folder() -> mv.BucketFolder:
    return mv.BucketFolder(width_ns=MIN_NS, grace_ns=MIN_NS // 2, max_groups=100)


def calls(
    group: int, t: int, latency: float, n: int = 1
) -> tuple[list[int], list[int], list[int], list[float]]:
    g, c, tt, v = [], [], [], []
    for _ in range(n):
        for name, value in (("llm.requests", 1.0), ("llm.errors", 0.0), ("llm.latency_ms", latency)):
            g.append(group)
            c.append(mv.input_column(name))
            tt.append(t)
            v.append(value)
    return g, c, tt, v


def fold(
    f: mv.BucketFolder, *parts: tuple[list[int], list[int], list[int], list[float]]
) -> list[mv.ClosedBucket]:
    g = np.array([x for p in parts for x in p[0]], dtype=np.int64)
    c = np.array([x for p in parts for x in p[1]], dtype=np.int64)
    t = np.array([x for p in parts for x in p[2]], dtype=np.int64)
    v = np.array([x for p in parts for x in p[3]], dtype=np.float64)
    return f.fold([A, B], g, c, t, v)


def test_a_bucket_closes_when_a_later_point_of_its_group_arrives() -> None:
    f = folder()
    assert fold(f, calls(0, T0 + 1, 100.0, 3), calls(0, T0 + 20 * 10**9, 200.0)) == []
    (closed,) = fold(f, calls(0, T0 + MIN_NS + 1, 999.0))
    assert closed.group == A and closed.start_unix_nano == T0 and closed.calls == 4
    assert math.isclose(closed.raw[mk.FEATURES.index("latency_ms")], 125.0)
    assert math.isclose(closed.raw[mk.FEATURES.index("request_rate")], 4 / 60)
    assert closed.raw[mk.FEATURES.index("error_rate")] == 0.0
    assert math.isnan(closed.raw[mk.FEATURES.index("ttft_ms")])


def test_a_quiet_group_closes_once_the_stream_passes_its_bucket_by_the_grace() -> None:
    f = folder()
    fold(f, calls(1, T0 + 5, 50.0))
    assert fold(f, calls(0, T0 + MIN_NS + 10**9, 10.0)) == []  # within the grace
    (closed,) = fold(f, calls(0, T0 + MIN_NS + MIN_NS // 2, 10.0))
    assert closed.group == B and closed.start_unix_nano == T0


def test_points_of_a_closed_bucket_are_counted_late_and_dropped() -> None:
    f = folder()
    fold(f, calls(0, T0 + 5, 50.0))
    fold(f, calls(0, T0 + 2 * MIN_NS, 50.0))  # closes T0 (own point) and moves the watermark past it
    assert fold(f, calls(0, T0 + 7, 50.0)) == []
    assert f.late_points == 3


def test_the_least_recently_seen_group_is_closed_beyond_max_groups() -> None:
    f = mv.BucketFolder(width_ns=MIN_NS, grace_ns=10 * MIN_NS, max_groups=1)
    fold(f, calls(0, T0, 1.0))
    (closed,) = fold(f, calls(1, T0 + 1, 1.0))
    assert closed.group == A and len(f) == 1


# -- scorer --------------------------------------------------------------------------------------

BASES = [
    # rate/s, latency ms, ttft ms, tokens, cost per call, error rate
    (5.0, 800.0, 200.0, 600.0, 0.002, 0.01),
    (40.0, 2500.0, 600.0, 1500.0, 0.02, 0.002),
    (1.0, 300.0, 90.0, 200.0, 0.0003, 0.03),
    (12.0, 1200.0, 300.0, 900.0, 0.008, 0.005),
]
NOISE = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.3])


def draw(rng: np.random.Generator, base: tuple[float, ...], shift: np.ndarray | None = None) -> np.ndarray:
    x = np.array(base) * rng.lognormal(0.0, NOISE)
    if shift is not None:
        x *= shift
    return x


def groups(n: int) -> list[mv.Group]:
    return [mv.Group("t", (("model", f"m{i}"), ("service", f"s{i}"))) for i in range(n)]


def buckets(rng: np.random.Generator, gs: list[mv.Group], step: int) -> list[mv.ClosedBucket]:
    return [
        mv.ClosedBucket(g, T0 + step * MIN_NS, 100, draw(rng, b))
        for g, b in zip(gs, BASES[: len(gs)], strict=True)
    ]


@pytest.fixture(scope="module")
def trained() -> tuple[mv.MultivariateScorer, np.random.Generator, int]:
    rng = np.random.default_rng(SEED)
    scorer = mv.MultivariateScorer(mv.MultivariateConfig(refit_every=10**6))
    gs = groups(len(BASES))
    for step in range(150):
        scorer.observe(
            [
                mv.ClosedBucket(g, T0 + step * MIN_NS, 100, draw(rng, base))
                for g, base in zip(gs, BASES, strict=True)
            ]
        )
    assert scorer.fitted and scorer.fits == 1
    return scorer, rng, 150


def test_calibrated_scores_are_near_uniform_on_in_distribution_buckets(
    trained: tuple[mv.MultivariateScorer, np.random.Generator, int],
) -> None:
    scorer, rng, step = trained
    gs = groups(len(BASES))
    ps = []
    for s in range(step, step + 150):
        findings = scorer.observe(
            [
                mv.ClosedBucket(g, T0 + s * MIN_NS, 100, draw(rng, base))
                for g, base in zip(gs, BASES, strict=True)
            ]
        )
        ps += [f.detector_p for f in findings]
    p = np.array(ps)
    assert p.shape == (600, 4)
    for q in (0.1, 0.5):
        frac = np.mean(p <= q, axis=0)
        assert np.all(np.abs(frac - q) < 0.5 * q + 0.03), frac
    # The false-alarm rate at the service's threshold is small.
    combined = [mk.cauchy_combine(p, np.ones(4))[0]]
    assert float(np.mean(mk.surprise_score(combined[0], 2.0) >= 0.6)) < 0.02


def test_a_moderate_joint_shift_scores_high_and_names_the_moved_metrics(
    trained: tuple[mv.MultivariateScorer, np.random.Generator, int],
) -> None:
    scorer, _, _ = trained
    gs = groups(len(BASES))
    # Each metric moves by about 2.5 of its own sigmas: none alone is remarkable.
    shift = np.array([1.0, 1.28, 1.28, 1.0, 1.0, 2.1])
    base = BASES[0]
    x = np.array(base) * shift
    (finding,) = scorer.observe([mv.ClosedBucket(gs[0], T0 + 10_000 * MIN_NS, 100, x)])
    assert finding.is_anomaly and finding.score >= 0.6
    assert finding.top_feature in (1, 2, 5)
    assert finding.anomaly_type != 0 and finding.severity >= 2
    assert math.isclose(sum(finding.shares), 1.0, rel_tol=1e-9)
    assert len(finding.detector_scores) == len(mv.DETECTORS)
    assert "latency_ms" in finding.explanation and "ttft_ms" in finding.explanation
    # A typical bucket of the same group does not.
    (calm,) = scorer.observe([mv.ClosedBucket(gs[0], T0 + 10_001 * MIN_NS, 100, np.array(base))])
    assert not calm.is_anomaly and calm.severity == 0 and calm.anomaly_type == 0


def test_groups_are_scored_only_after_min_history_and_sparse_buckets_never() -> None:
    made: list[int] = []

    def fake(config: mv.MultivariateConfig) -> list[mv.Detector]:
        made.append(1)
        return mv.pyod_detectors(config)

    cfg = mv.MultivariateConfig(min_history=5, history=10, min_train=16, train_rows=64, refit_every=8)
    scorer = mv.MultivariateScorer(cfg, make_detectors=fake)
    rng = np.random.default_rng(1)
    gs = groups(4)
    out = []
    for step in range(12):
        out.append(
            scorer.observe(
                [
                    mv.ClosedBucket(g, T0 + step * MIN_NS, 100, draw(rng, b))
                    for g, b in zip(gs, BASES, strict=True)
                ]
            )
        )
        scorer.observe([mv.ClosedBucket(gs[0], T0 + step * MIN_NS, 2, draw(rng, BASES[0]))])  # < min_calls
    assert all(not o for o in out[:9])  # 5 of history, then 4 steps x 4 groups = 16 rows to fit
    assert all(len(o) == 4 for o in out[9:])
    assert scorer.fits >= 2 and len(made) == scorer.fits


# -- episodes ------------------------------------------------------------------------------------


def finding(t: int, anomalous: bool, score: float = 0.7) -> mv.Finding:
    return mv.Finding(
        group=A,
        start_unix_nano=t,
        end_unix_nano=t + MIN_NS,
        score=score if anomalous else 0.1,
        p_value=1e-4,
        is_anomaly=anomalous,
        severity=2 if anomalous else 0,
        anomaly_type=1 if anomalous else 0,
        detector_scores=(0.5,) * 4,
        detector_p=(0.01,) * 4,
        shares=(0.25,) * 4,
        values=(1.0,) * 6,
        baselines=(1.0,) * 6,
        z=(0.0,) * 6,
        top_feature=0,
        explanation="",
    )


def test_anomalous_buckets_within_the_gap_fold_into_one_episode_that_closes_after_it() -> None:
    eps = mv.MultivariateEpisodes(gap_ns=2 * MIN_NS)
    (opened,) = eps.observe(finding(T0, True))
    assert opened.opened and opened.end_unix_nano is None
    assert eps.observe(finding(T0 + MIN_NS, False)) == []
    (grown,) = eps.observe(finding(T0 + 2 * MIN_NS, True, score=0.9))
    assert not grown.opened and grown.anomaly_id == opened.anomaly_id and grown.point_count == 2
    assert grown.peak.score == 0.9
    (closed,) = eps.observe(finding(T0 + 5 * MIN_NS, False))
    assert closed.end_unix_nano == T0 + 2 * MIN_NS and closed.anomaly_id == opened.anomaly_id
    (again,) = eps.observe(finding(T0 + 6 * MIN_NS, True))
    assert again.opened and again.anomaly_id != opened.anomaly_id


def test_config_rejects_inconsistent_parameters() -> None:
    with pytest.raises(ValueError, match="threshold"):
        mv.MultivariateConfig(threshold=0.0)
    with pytest.raises(ValueError, match="min_history"):
        mv.MultivariateConfig(history=10, min_history=20)
    assert mv.MultivariateConfig().parameters()["threshold"] == 0.6


# -- checkpoints ---------------------------------------------------------------------------------


def test_an_exported_scorer_restores_to_identical_scores(
    trained: tuple[mv.MultivariateScorer, np.random.Generator, int],
) -> None:
    scorer, rng, _ = trained
    groups_, changed, train = scorer.export()
    assert set(changed) == set(groups_) == set(groups(len(BASES)))
    again = mv.MultivariateScorer(scorer.config)
    assert again.restore(changed, train) == len(BASES)
    assert again.fitted
    scorer.fit()  # the same training rows, the same seed: the same model
    fresh = buckets(rng, groups(len(BASES)), 20_000)
    a = scorer.observe(fresh)
    b = again.observe(fresh)
    assert [f.score for f in a] == pytest.approx([f.score for f in b])
    _, changed_after, _ = scorer.export()
    assert set(changed_after) == set(groups(len(BASES)))  # observed since the last export


def test_unreadable_or_resized_checkpoints_are_skipped_or_trimmed() -> None:
    cfg = mv.MultivariateConfig(history=30, min_history=5, min_train=16, train_rows=64)
    small = mv.MultivariateScorer(cfg)
    rng = np.random.default_rng(2)
    gs = groups(2)
    for step in range(40):
        small.observe(buckets(rng, gs, step))
    _, changed, train = small.export()
    bigger = mv.MultivariateScorer(dataclasses.replace(cfg, history=50))
    assert bigger.restore({**changed, gs[1]: b"garbage"}, train) == 1
    assert bigger.history_length(gs[0]) == 30
    shorter = mv.MultivariateScorer(dataclasses.replace(cfg, history=10))
    assert shorter.restore(changed, train[:-8]) == 2  # the training ring is cut: not restored
    assert shorter.history_length(gs[0]) == 10 and not shorter.fitted
