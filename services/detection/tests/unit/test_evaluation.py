"""Offline evaluation: the synthetic corpus and the NAB runner's file layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from sentinel.detection.engine import EngineConfig
from sentinel.detection.evaluation import nab, synthetic


def test_synthetic_corpus_is_seeded_and_labelled(tmp_path: Path) -> None:
    a = synthetic.generate(tmp_path / "a", seed=3, days=4)
    b = synthetic.generate(tmp_path / "b", seed=3, days=4)
    assert a == b
    rel = "chat-api.gpt-4o/latency_ms.csv"
    assert (tmp_path / "a" / "data" / rel).read_text() == (tmp_path / "b" / "data" / rel).read_text()
    windows = json.loads((tmp_path / "a" / "labels" / "combined_windows.json").read_text())
    assert len(windows) == 6 * len(synthetic.METRICS)
    assert sum(len(w) for w in windows.values()) >= len({(i.series, i.start) for i in a})
    kinds = {i.kind for i in a}
    assert {"latency_spike", "error_rate_increase", "throughput_drop"} <= kinds
    profiles = json.loads((tmp_path / "a" / "config" / "profiles.json").read_text())
    assert set(profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_nab_runner_writes_one_result_per_file_and_modes_agree(tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "root", seed=5, days=3, services=("svc",), models=("m1", "m2"))
    data = tmp_path / "root" / "data"
    cfg = EngineConfig(capacity=1, window=64)
    nab.run(data, tmp_path / "batched", cfg)
    nab.run(data, tmp_path / "per_file", cfg, batched=False)
    files = sorted(p.relative_to(data) for p in data.rglob("*.csv"))
    assert len(files) == 2 * len(synthetic.METRICS)
    for rel in files:
        rows = list(csv.DictReader((tmp_path / "batched" / rel).open()))
        assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
        scores = np.array([float(r["anomaly_score"]) for r in rows])
        assert np.all((scores >= 0) & (scores <= 1))
        assert (tmp_path / "batched" / rel).read_text() == (tmp_path / "per_file" / rel).read_text()
    nab.run(data, tmp_path / "fixed", cfg, threshold=0.5)
    fixed = [float(r["anomaly_score"]) for r in csv.DictReader((tmp_path / "fixed" / files[0]).open())]
    assert set(fixed) <= {0.0, 1.0}
