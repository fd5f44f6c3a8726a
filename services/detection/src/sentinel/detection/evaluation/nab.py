"""Stream every NAB CSV through a fresh engine and write NAB result files.

Usage::

    python -m sentinel.detection.evaluation.nab --data /work/shared/nab/data --out OUTDIR
    python /work/shared/nab/nab_score.py OUTDIR

Each file gets a fresh :class:`StreamingScorer` (fresh state), is scored in
time order in one ``score`` call (one point per round, so strictly causal) and
is written to ``OUTDIR/<same relative path>`` with columns
``timestamp,value,anomaly_score``. One :class:`EngineConfig` serves every file.
``--threshold X`` replaces the scores by 0/1 decisions at X (the fixed
production threshold), so the scorer's own threshold sweep cannot help.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentinel.detection.engine import EngineConfig, ScoreBatch, StreamingScorer
from sentinel.detection.evaluation.csvio import read_series, write_scores


def config_from_json(text: str | None) -> EngineConfig:
    """An :class:`EngineConfig` with the overrides of a JSON object (tuples given as lists)."""
    if not text:
        return EngineConfig(capacity=1)
    raw: dict[str, Any] = json.loads(text)
    fixed: dict[str, Any] = {key: tuple(v) if isinstance(v, list) else v for key, v in raw.items()}
    return dataclasses.replace(EngineConfig(capacity=1), **fixed)


def score_files(
    files: Sequence[Path], config: EngineConfig, *, batched: bool = True
) -> tuple[list[ScoreBatch], list[tuple[list[str], list[str]]], float]:
    """Score each file from a fresh state; returns results, raw columns and seconds in ``score``.

    ``batched`` gives every file its own slot of one engine and scores all files
    in one call (rounds keep each file's points in order, slots never share
    state), which is identical to a fresh engine per file and much faster; the
    per-file mode exists to show that.
    """
    series = [read_series(p) for p in files]
    raws = [(stamps, raw) for stamps, raw, _, _ in series]
    busy = 0.0
    if batched:
        scorer = StreamingScorer(dataclasses.replace(config, capacity=max(len(files), 1)))
        slots = np.concatenate([np.full(len(v), i, dtype=np.int64) for i, (_, _, _, v) in enumerate(series)])
        times = np.concatenate([t for _, _, t, _ in series])
        values = np.concatenate([v for _, _, _, v in series])
        t0 = time.perf_counter()
        result = scorer.score(slots, times, values)
        busy = time.perf_counter() - t0
        bounds = np.cumsum([len(v) for _, _, _, v in series])[:-1]
        parts = [np.split(a, bounds) for a in (result.score, result.baseline)]
        contrib = np.split(result.contributions, bounds)
        results = [
            dataclasses.replace(
                result,
                score=parts[0][i],
                baseline=parts[1][i],
                contributions=contrib[i],
                is_anomaly=np.split(result.is_anomaly, bounds)[i],
                severity=np.split(result.severity, bounds)[i],
                kind=np.split(result.kind, bounds)[i],
                detector=np.split(result.detector, bounds)[i],
                direction=np.split(result.direction, bounds)[i],
            )
            for i in range(len(files))
        ]
        return results, raws, busy
    results = []
    for _, _, times, values in series:
        scorer = StreamingScorer(dataclasses.replace(config, capacity=1))
        t0 = time.perf_counter()
        results.append(scorer.score(np.zeros(len(values), dtype=np.int64), times, values))
        busy += time.perf_counter() - t0
    return results, raws, busy


def run(
    data: Path, out: Path, config: EngineConfig, threshold: float | None = None, *, batched: bool = True
) -> dict[str, float]:
    """Score every CSV under ``data`` into ``out``; returns points, seconds and points/s."""
    start = time.perf_counter()
    files = sorted(data.rglob("*.csv"))
    results, raws, busy = score_files(files, config, batched=batched)
    points = 0
    for path, result, (stamps, raw) in zip(files, results, raws, strict=True):
        scores = result.score if threshold is None else (result.score >= threshold).astype(np.float64)
        write_scores(out / path.relative_to(data), stamps, raw, scores)
        points += len(scores)
    wall = time.perf_counter() - start
    return {
        "files": len(files),
        "points": points,
        "score_seconds": busy,
        "wall_seconds": wall,
        "points_per_s": points / busy if busy else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of timestamp,value CSVs")
    ap.add_argument("--out", type=Path, required=True, help="results folder (same relative paths)")
    ap.add_argument("--threshold", type=float, default=None, help="write 0/1 decisions at this score")
    ap.add_argument("--config-json", default=None, help="EngineConfig overrides as a JSON object")
    ap.add_argument(
        "--per-file", action="store_true", help="one fresh engine per file (default: one slot per file)"
    )
    args = ap.parse_args(argv)
    stats = run(
        args.data, args.out, config_from_json(args.config_json), args.threshold, batched=not args.per_file
    )
    json.dump(stats, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
