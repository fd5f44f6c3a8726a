"""`sentinel detect`: CSVs streamed through a local detection service equal the offline engine."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from sentinel.detection.evaluation import nab as offline
from sentinel.sdk.detect_cli import run_detect


def write_csv(path: Path, n: int, seed: int, spike: int) -> None:
    rng = np.random.default_rng(seed)
    values = 50 + 5 * np.sin(np.arange(n) / 20) + rng.normal(0, 1, n)
    values[spike] += 30
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            stamp = f"2014-04-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00"
            writer.writerow([stamp, repr(float(v))])


async def test_detect_writes_nab_results_equal_to_the_offline_engine(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_csv(data / "a" / "one.csv", 700, seed=1, spike=500)
    write_csv(data / "two.csv", 400, seed=2, spike=350)
    out, decisions, reference = tmp_path / "out", tmp_path / "decisions", tmp_path / "offline"
    log = io.StringIO()
    assert await run_detect(data, out, endpoint=None, batch_size=128, out=log) == 0
    assert await run_detect(data, decisions, endpoint=None, threshold=0.7, out=log) == 0
    offline.run(data, reference, offline.config_from_json(None))
    for relative in ("a/one.csv", "two.csv"):
        assert (out / relative).read_text() == (reference / relative).read_text()
        rows = list(csv.DictReader((decisions / relative).open()))
        assert {row["anomaly_score"] for row in rows} <= {"0.000000", "1.000000"}
        assert rows[0].keys() == {"timestamp", "value", "anomaly_score"}
    assert "2 files" in log.getvalue()
