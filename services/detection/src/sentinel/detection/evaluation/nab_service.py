"""NAB through the real detection service: `sentinel detect`, then NAB's scorer.

Usage::

    python -m sentinel.detection.evaluation.nab_service --nab /work/shared/nab --out var/nab-service

1. `sentinel detect --input-dir <nab>/data --output-dir <out>/scores` streams every file in order
   through a detection service (a local one on a loopback port unless `--target`), fresh state
   per file; the same with `--threshold <engine threshold>` into `<out>/decisions`.
2. `python <nab>/nab_score.py` scores both: all three profiles with the scorer's own threshold
   sweep, and the service's fixed threshold.
3. With `--compare-offline`, the offline engine (`evaluation.nab`) scores the same files and
   every result file is compared byte for byte: the service must not change a single score.

The last line is one JSON object with the NAB scores.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel.detection.engine import EngineConfig

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def detect(data: Path, out: Path, *, target: str | None, threshold: float | None) -> None:
    command = [sys.executable, "-m", "sentinel.sdk.cli", "detect", "--input-dir", str(data)]
    command += ["--output-dir", str(out), "--concurrency", "64"]
    if target:
        command += ["--target", target]
    if threshold is not None:
        command += ["--threshold", repr(threshold)]
    subprocess.run(command, check=True)


def nab_score(nab: Path, results: Path, threshold: float | None = None) -> dict[str, Any]:
    scores_json = results.parent / f"{results.name}.nab.json"
    command = [sys.executable, str(nab / "nab_score.py"), str(results), "--out", str(scores_json)]
    command += ["--no-detail"]
    if threshold is not None:
        command += ["--threshold", repr(threshold)]
    subprocess.run(command, check=True)
    raw: dict[str, Any] = json.loads(scores_json.read_text())
    return raw


def profile_scores(raw: dict[str, Any]) -> dict[str, float]:
    """{profile: normalised score} from nab_score.py's JSON (its layout, tolerated loosely)."""
    corpus = raw.get("corpus", raw.get("profiles", raw))
    out = {}
    for name in PROFILES:
        entry = corpus.get(name, {})
        value = entry.get("score", entry.get("normalized_score", entry.get("nab_score")))
        if isinstance(value, int | float):
            out[name] = round(float(value), 2)
    return out


def same_files(left: Path, right: Path) -> tuple[int, list[str]]:
    """How many result files are equal; the relative paths of those that differ."""
    files = sorted(p.relative_to(left) for p in left.rglob("*.csv"))
    differ = [str(p) for p in files if not filecmp.cmp(left / p, right / p, shallow=False)]
    return len(files) - len(differ), differ


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--nab", type=Path, default=Path("/work/shared/nab"), help="NAB folder (data/, nab_score.py)"
    )
    ap.add_argument("--out", type=Path, default=Path("var/nab-service"))
    ap.add_argument("--target", help="detection HOST:PORT (default: a local one)")
    ap.add_argument("--compare-offline", action="store_true", help="check scores equal the offline engine's")
    args = ap.parse_args(argv)
    threshold = EngineConfig().threshold
    data = args.nab / "data"
    scores_dir, decisions_dir = args.out / "scores", args.out / "decisions"
    detect(data, scores_dir, target=args.target, threshold=None)
    detect(data, decisions_dir, target=args.target, threshold=threshold)
    summary: dict[str, Any] = {
        "profiles": profile_scores(nab_score(args.nab, scores_dir)),
        "fixed_threshold": threshold,
        "profiles_at_fixed_threshold": profile_scores(nab_score(args.nab, decisions_dir, threshold)),
    }
    if args.compare_offline:
        from sentinel.detection.evaluation import nab as offline

        offline_dir = args.out / "offline"
        offline.run(data, offline_dir, offline.config_from_json(None))
        equal, differ = same_files(offline_dir, scores_dir)
        summary["files_equal_to_offline"] = equal
        summary["files_differing_from_offline"] = differ
    print(json.dumps(summary))
    return 1 if summary.get("files_differing_from_offline") else 0


if __name__ == "__main__":
    raise SystemExit(main())
