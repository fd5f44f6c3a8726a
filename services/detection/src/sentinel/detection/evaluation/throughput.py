"""Engine throughput (no service, no gRPC): points/s of ``StreamingScorer.score``.

Usage::

    python -m sentinel.detection.evaluation.throughput [--series 1000] [--calls 200] [--points 10]

Measures, each on warm state (every series already past its window):
(a) ``many``: ``--series`` series x 1 point per call;
(b) ``multi``: ``--series`` series x ``--points`` points per call;
(c) ``one``: 1 series x 1 point per call (the fixed per-call cost);
and prints one JSON object. Set ``OPENBLAS_NUM_THREADS=1`` as the services do.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import numpy as np

from sentinel.detection.engine import EngineConfig, StreamingScorer

NS_PER_MIN = 60_000_000_000


def _warm(scorer: StreamingScorer, n_series: int, points: int, rng: np.random.Generator) -> int:
    slots = np.tile(np.arange(n_series, dtype=np.int64), points)
    steps = np.repeat(np.arange(points, dtype=np.int64), n_series)
    scorer.score(slots, steps * NS_PER_MIN, rng.normal(100.0, 5.0, len(slots)))
    return points


def measure(
    n_series: int, calls: int, config: EngineConfig, seed: int = 1, points: int = 1
) -> dict[str, float]:
    """Points/s and per-call latency percentiles for ``n_series`` x ``points`` points per call.

    A call holds ``points`` consecutive points of every series, round-robin
    (the r-th point of every series before the (r+1)-th).
    """
    rng = np.random.default_rng(seed)
    scorer = StreamingScorer(config)
    step = _warm(scorer, n_series, config.window + 8, rng)
    slots = np.tile(np.arange(n_series, dtype=np.int64), points)
    lat = np.empty(calls)
    for i in range(calls):
        t = np.repeat((step + i * points + np.arange(points, dtype=np.int64)) * NS_PER_MIN, n_series)
        values = rng.normal(100.0, 5.0, n_series * points)
        t0 = time.perf_counter()
        scorer.score(slots, t, values)
        lat[i] = time.perf_counter() - t0
    return {
        "series": n_series,
        "points_per_series": points,
        "points_per_s": n_series * points * calls / float(lat.sum()),
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description="Engine throughput")
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--points", type=int, default=10, help="points per series per call of the multi case")
    args = ap.parse_args(argv)
    cfg = EngineConfig(capacity=max(args.series, 1))
    out = {
        "many": measure(args.series, args.calls, cfg),
        "multi": measure(args.series, max(args.calls // args.points, 10), cfg, points=args.points),
        "one": measure(1, args.calls * 10, cfg),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
