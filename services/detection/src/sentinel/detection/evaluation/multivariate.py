"""Precision / recall of the multivariate detectors on synthetic LLM telemetry.

Usage::

    python -m sentinel.detection.evaluation.multivariate [--seeds 7 11] [--days 14] [--sweep]

Per seed: six (service, model) pairs at a 5-minute step (`synthetic.simulate`), each with four
injected anomalies, the kinds of `synthetic.KINDS` and `joint_degradation` (latency, TTFT, error
rate and tokens all moderately worse together) in turn. Every bucket goes through the same
`MultivariateScorer` the service runs (one pooled model, one parameter set). A flagged bucket is a
true positive inside an injection, from its start to one hour after its end (a level shift: its
first day, after which the history has absorbed it), else a false positive. Recall counts
injections with at least one flag. Printed for the ensemble and for each detector alone (its own
calibrated score at the same threshold), and for the univariate streaming engine (a pair's bucket
flagged if any of its metrics is, at the engine's own threshold). `--sweep` prints F1 over thresholds
(choose on one seed, report on another). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from sentinel.detection.domain.multivariate import (
    DETECTORS,
    ClosedBucket,
    Group,
    MultivariateConfig,
    MultivariateScorer,
)
from sentinel.detection.engine import EngineConfig, StreamingScorer
from sentinel.detection.evaluation import synthetic

FloatArray = npt.NDArray[np.float64]
STEP_S = 300
TOLERANCE = 3600 // STEP_S
LEVEL_SHIFT_SPAN = 86_400 // STEP_S
PAIRS = 6
KINDS = (*(kind for _, kind in synthetic.KINDS), "joint_degradation")


@dataclass(frozen=True)
class Event:
    pair: int
    kind: str
    start: int
    end: int  # exclusive, tolerance included


@dataclass
class Run:
    """One seed's scores: per (pair, step) the ensemble score and each detector's own score."""

    events: list[Event]
    steps: int
    score: FloatArray  # (PAIRS, steps), NaN where not scored
    own: FloatArray  # (PAIRS, steps, len(DETECTORS))
    univariate_joint_caught: int
    univariate: npt.NDArray[np.bool_]  # (PAIRS, steps): the univariate engine flagged a metric


def simulate(seed: int, days: int) -> tuple[list[dict[str, FloatArray]], list[Event], int]:
    rng = np.random.default_rng(seed)
    n = days * 86_400 // STEP_S
    per_hour = 3600 // STEP_S
    start = datetime(2024, 3, 4, tzinfo=UTC)
    warm = 2 * 86_400 // STEP_S  # two days of history before the first injection
    series, events = [], []
    for p in range(PAIRS):
        kinds = [KINDS[(p * 4 + j) % len(KINDS)] for j in range(4)]
        slots = np.linspace(warm, n - n // 10, num=len(kinds))
        planned = []
        for kind, centre in zip(kinds, slots, strict=True):
            a = int(centre + rng.integers(0, n // 40))
            b = n if kind == "level_shift" else min(n, a + synthetic.duration(kind, per_hour, rng))
            planned.append(("", kind, a, b))
            end = a + LEVEL_SHIFT_SPAN if kind == "level_shift" else b + TOLERANCE
            events.append(Event(p, kind, a, min(n, end)))
        series.append(synthetic.simulate(rng, n, STEP_S, start, planned))
    return series, events, n


def features(values: dict[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
    """Raw feature rows (steps, N_FEATURES) and calls per step, as the service's buckets hold."""
    requests = values["request_rate"] * STEP_S
    safe = np.maximum(requests, 1.0)
    raw = np.column_stack(
        [
            values["request_rate"],
            values["latency_ms"],
            values["ttft_ms"],
            values["total_tokens"],
            values["cost_usd"] / safe,
            values["error_rate"],
        ]
    )
    return raw, requests


def univariate_flags(values: dict[str, FloatArray], n: int) -> npt.NDArray[np.bool_]:
    """Per step: did the univariate engine flag any metric of the pair."""
    metrics = list(values)
    scorer = StreamingScorer(EngineConfig(capacity=len(metrics)))
    times = np.arange(n, dtype=np.int64) * STEP_S * 1_000_000_000 + 1_709_510_400 * 1_000_000_000
    slots = np.repeat(np.arange(len(metrics), dtype=np.int64), n)
    out = scorer.score(slots, np.tile(times, len(metrics)), np.concatenate([values[m] for m in metrics]))
    return np.asarray(out.is_anomaly.reshape(len(metrics), n).any(axis=0))


def run(seed: int, days: int, config: MultivariateConfig) -> Run:
    series, events, n = simulate(seed, days)
    rows = [features(v) for v in series]
    groups = [Group("eval", (("pair", str(p)),)) for p in range(PAIRS)]
    scorer = MultivariateScorer(config)
    score = np.full((PAIRS, n), np.nan)
    own = np.full((PAIRS, n, len(DETECTORS)), np.nan)
    index = {g: p for p, g in enumerate(groups)}
    for t in range(n):
        buckets = [
            ClosedBucket(groups[p], t * config.width_ns, int(rows[p][1][t]), rows[p][0][t])
            for p in range(PAIRS)
        ]
        for f in scorer.observe(buckets):
            p = index[f.group]
            score[p, t] = f.score
            own[p, t] = f.detector_scores
    uni = np.stack([univariate_flags(values, n) for values in series])
    caught = sum(1 for e in events if e.kind == "joint_degradation" and uni[e.pair, e.start : e.end].any())
    return Run(events, n, score, own, caught, uni)


def prf(flags: npt.NDArray[np.bool_], events: Sequence[Event]) -> dict[str, float]:
    """Point precision, event recall and F1 of flags shaped (PAIRS, steps)."""
    positive = np.zeros_like(flags)
    for e in events:
        positive[e.pair, e.start : e.end] = True
    tp = int(np.count_nonzero(flags & positive))
    fp = int(np.count_nonzero(flags & ~positive))
    found = [bool(flags[e.pair, e.start : e.end].any()) for e in events]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = sum(found) / len(events)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    joint = [f for e, f in zip(events, found, strict=True) if e.kind == "joint_degradation"]
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "false_positives": fp,
        "joint_caught": sum(joint),
        "joint_total": len(joint),
    }


def measure_pyod(config: MultivariateConfig) -> dict[str, float]:
    """Import time of the four PyOD detectors, warm-up time and the RSS both add (this process)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    import pyod.models.copod, pyod.models.ecod, pyod.models.hbos, pyod.models.iforest  # noqa: E401, F401, I001

    imported = time.perf_counter()
    MultivariateScorer(config).warm()
    warmed = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "import_s": round(imported - started, 2),
        "warm_s": round(warmed - imported, 2),
        "rss_added_mb": round((after - before) / 1024, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description="Multivariate detectors on synthetic LLM telemetry.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--sweep", action="store_true", help="F1 over thresholds, per seed")
    args = ap.parse_args(argv)
    base = MultivariateConfig(bucket_s=STEP_S)
    config = base if args.threshold is None else MultivariateConfig(bucket_s=STEP_S, threshold=args.threshold)
    cost = measure_pyod(config)
    print(f"pyod: import {cost['import_s']} s, warm-up {cost['warm_s']} s, RSS +{cost['rss_added_mb']} MB")
    report: dict[str, object] = {"pyod": cost, "threshold": config.threshold, "seeds": {}}
    for seed in args.seeds:
        r = run(seed, args.days, config)
        scored = ~np.isnan(r.score)
        rows = {"ensemble": prf(scored & (r.score >= config.threshold), r.events)}
        for d, name in enumerate(DETECTORS):
            rows[name] = prf(scored & (r.own[..., d] >= config.threshold), r.events)
        rows["univariate"] = prf(r.univariate, r.events)  # the streaming engine, any metric of a pair
        print(f"seed {seed}: {len(r.events)} injections, threshold {config.threshold}")
        for name, m in rows.items():
            print(
                f"  {name:9s} P {m['precision']:.2f}  R {m['recall']:.2f}  F1 {m['f1']:.2f}  "
                f"FP {m['false_positives']:4d}  joint {m['joint_caught']}/{m['joint_total']}"
            )
        if args.sweep:
            for th in np.arange(0.5, 0.86, 0.05):
                m = prf(scored & (r.score >= th), r.events)
                print(f"    threshold {th:.2f}: P {m['precision']:.2f} R {m['recall']:.2f} F1 {m['f1']:.2f}")
        seeds = report["seeds"]
        assert isinstance(seeds, dict)
        seeds[str(seed)] = rows
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
