"""The multivariate evaluation's corpus and its precision / recall arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from sentinel.detection.evaluation import multivariate as ev
from sentinel.detection.evaluation import synthetic


def test_a_joint_degradation_moves_several_metrics_moderately_and_only_inside_it() -> None:
    start = datetime(2024, 3, 4, tzinfo=UTC)
    clean = synthetic.simulate(np.random.default_rng(1), 600, 300, start, [])
    joint = synthetic.simulate(
        np.random.default_rng(1), 600, 300, start, [("", "joint_degradation", 200, 300)]
    )
    for metric in ("latency_ms", "ttft_ms", "total_tokens"):
        ratio = joint[metric][200:300] / clean[metric][200:300]
        assert np.allclose(ratio, synthetic.JOINT_SHIFT[metric])
        assert np.array_equal(joint[metric][:200], clean[metric][:200])
    assert joint["error_rate"][200:300].mean() > clean["error_rate"][200:300].mean()


def test_the_corpus_is_seeded_and_holds_joint_degradations() -> None:
    a, events, n = ev.simulate(3, 4)
    b, again, _ = ev.simulate(3, 4)
    assert events == again and np.array_equal(a[0]["latency_ms"], b[0]["latency_ms"])
    assert len(events) == 4 * ev.PAIRS and {e.kind for e in events} == set(ev.KINDS)
    assert all(0 <= e.start < e.end <= n for e in events)


def test_precision_counts_flags_and_recall_counts_injections() -> None:
    events = [ev.Event(0, "joint_degradation", 10, 20), ev.Event(1, "latency_spike", 5, 8)]
    flags = np.zeros((ev.PAIRS, 30), dtype=bool)
    flags[0, [12, 13, 25]] = True  # two inside the first injection, one false alarm
    m = ev.prf(flags, events)
    assert m["precision"] == round(2 / 3, 3) and m["recall"] == 0.5
    assert m["false_positives"] == 1 and (m["joint_caught"], m["joint_total"]) == (1, 1)
