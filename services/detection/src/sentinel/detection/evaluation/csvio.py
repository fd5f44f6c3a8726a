"""NAB-format CSV reading and writing (``timestamp,value`` in, ``+anomaly_score`` out)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch of a NAB timestamp (naive times are UTC)."""
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def read_series(path: Path) -> tuple[list[str], list[str], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Read a ``timestamp,value`` CSV: raw timestamp strings, raw values, times (ns), values."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    ti, vi = header.index("timestamp"), header.index("value")
    body = [r for r in rows[1:] if r]
    stamps = [r[ti] for r in body]
    raw = [r[vi] for r in body]
    times = np.array([parse_time_ns(s) for s in stamps], dtype=np.int64)
    values = np.array([float(v) if v.strip() else np.nan for v in raw], dtype=np.float64)
    return stamps, raw, times, values


def write_scores(path: Path, stamps: list[str], raw: list[str], scores: npt.NDArray[np.float64]) -> None:
    """Write ``timestamp,value,anomaly_score`` (NAB's result format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for t, v, s in zip(stamps, raw, scores.tolist(), strict=True):
            w.writerow([t, v, f"{s:.6f}"])
