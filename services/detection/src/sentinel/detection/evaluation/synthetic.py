"""Synthetic LLM telemetry with labelled, injected anomalies, in NAB's layout.

Usage::

    python -m sentinel.detection.evaluation.synthetic --out ROOT [--seed 7] [--days 14]
    python -m sentinel.detection.evaluation.nab --data ROOT/data --out RESULTS
    python /work/shared/nab/nab_score.py RESULTS --nab-root ROOT

``ROOT`` gets ``data/<service>.<model>/<metric>.csv`` (``timestamp,value``),
``labels/combined_windows.json`` (NAB windows: one window per injected anomaly,
centred on its start, ``10% of the file / number of anomalies`` wide, as NAB
builds its windows), ``labels/anomalies.json`` (kind, metric, start, end of each
injection) and ``config/profiles.json`` (NAB's three published cost matrices),
so NAB's scorer (``--nab-root ROOT``) scores it with the same rules.

Per (service, model), at a fixed interval: request rate with a diurnal and
weekly load curve and Poisson noise, latency and TTFT that rise with load,
tokens per request, cost per interval, and error rate (binomial errors over
the interval's requests). Everything is drawn from one seeded generator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

METRICS = ("request_rate", "latency_ms", "ttft_ms", "total_tokens", "cost_usd", "error_rate")
# (metric, kind): the kinds of anomaly injected, and into which metric.
KINDS: tuple[tuple[str, str], ...] = (
    ("latency_ms", "latency_spike"),
    ("ttft_ms", "level_shift"),
    ("error_rate", "error_rate_increase"),
    ("total_tokens", "token_usage_spike"),
    ("cost_usd", "cost_anomaly"),
    ("request_rate", "throughput_drop"),
    ("latency_ms", "variance_change"),
)
# joint_degradation (not in KINDS, so the NAB corpus is unchanged): factors of each metric.
JOINT_SHIFT = {"latency_ms": 1.12, "ttft_ms": 1.15, "error_rate": 1.6, "total_tokens": 1.1}
# NAB's published cost matrices (tpWeight, fnWeight, fpWeight per profile).
PROFILES = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}


@dataclasses.dataclass(frozen=True, slots=True)
class Injection:
    """One injected anomaly."""

    series: str
    kind: str
    start: int
    end: int  # exclusive


def _load_curve(hours: FloatArray, weekday: npt.NDArray[np.int64]) -> FloatArray:
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)
    weekly = np.where(weekday >= 5, 0.65, 1.0)
    return np.asarray(daily * weekly, dtype=np.float64)


def simulate(
    rng: np.random.Generator,
    n: int,
    step_s: int,
    start: datetime,
    injections: Sequence[tuple[str, str, int, int]],
) -> dict[str, FloatArray]:
    """One (service, model)'s metrics with the given injections ``(metric, kind, start, end)``."""
    t = np.arange(n) * step_s
    hours = (start.hour + start.minute / 60.0 + t / 3600.0) % 24.0
    weekday = ((start.weekday() + (start.hour * 3600 + t) // 86400) % 7).astype(np.int64)
    base_rps = rng.uniform(2.0, 20.0)
    base_lat = rng.uniform(400.0, 2500.0)
    base_tok = rng.uniform(300.0, 2000.0)
    price = rng.uniform(1e-6, 2e-5)
    p_err = rng.uniform(0.002, 0.02)
    load = _load_curve(hours, weekday)
    lam = base_rps * load
    drop = np.ones(n)
    err_p = np.full(n, p_err)
    lat_mult = np.ones(n)
    lat_noise = np.full(n, 0.08)
    ttft_shift = np.ones(n)
    tok_mult = np.ones(n)
    cost_mult = np.ones(n)
    for _metric, kind, a, b in injections:
        if kind == "throughput_drop":
            drop[a:b] = 0.3
        elif kind == "error_rate_increase":
            err_p[a:b] = min(0.5, p_err * 6 + 0.03)
        elif kind == "latency_spike":
            lat_mult[a:b] = 3.0
        elif kind == "variance_change":
            lat_noise[a:b] = 0.4
        elif kind == "level_shift":
            ttft_shift[a:] = 1.5
        elif kind == "token_usage_spike":
            tok_mult[a:b] = 4.0
        elif kind == "cost_anomaly":
            cost_mult[a:b] = 2.5
        elif kind == "joint_degradation":
            # Several metrics worse at once, each by less than a univariate detector flags.
            lat_mult[a:b] = JOINT_SHIFT["latency_ms"]
            ttft_shift[a:b] = JOINT_SHIFT["ttft_ms"]
            err_p[a:b] = p_err * JOINT_SHIFT["error_rate"]
            tok_mult[a:b] = JOINT_SHIFT["total_tokens"]
    requests = rng.poisson(lam * step_s * drop).astype(np.float64)
    rate = requests / step_s
    lat = base_lat * (1.0 + 0.25 * load) * lat_mult * rng.lognormal(0.0, lat_noise)
    ttft = 0.25 * base_lat * (1.0 + 0.15 * load) * ttft_shift * rng.lognormal(0.0, 0.1, n)
    safe = np.maximum(requests, 1.0)
    tokens = base_tok * tok_mult * (1.0 + rng.normal(0.0, 0.5, n) / np.sqrt(safe))
    cost = requests * tokens * price * cost_mult
    errors = rng.binomial(requests.astype(np.int64), np.clip(err_p, 0.0, 1.0)).astype(np.float64)
    err_rate = np.where(requests > 0, errors / safe, 0.0)
    return {
        "request_rate": rate,
        "latency_ms": lat,
        "ttft_ms": ttft,
        "total_tokens": tokens,
        "cost_usd": cost,
        "error_rate": err_rate,
    }


def duration(kind: str, per_hour: int, rng: np.random.Generator) -> int:
    hours = {
        "latency_spike": 0.25,
        "token_usage_spike": 0.15,
        "error_rate_increase": 2.0,
        "cost_anomaly": 6.0,
        "throughput_drop": 2.0,
        "variance_change": 24.0,
        "joint_degradation": 2.0,
    }[kind]
    return max(1, round(hours * per_hour * rng.uniform(0.7, 1.3)))


def generate(
    out: Path,
    *,
    seed: int = 7,
    days: int = 14,
    step_s: int = 300,
    services: Sequence[str] = ("chat-api", "rag-search", "agent-runner"),
    models: Sequence[str] = ("gpt-4o", "claude-3-5-sonnet"),
) -> list[Injection]:
    """Write the corpus under ``out``; returns the injections."""
    rng = np.random.default_rng(seed)
    n = days * 86400 // step_s
    per_hour = 3600 // step_s
    start = datetime(2024, 3, 4, tzinfo=UTC)
    stamps = [(start + timedelta(seconds=i * step_s)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]
    probation = min(int(0.15 * n), 750)
    windows: dict[str, list[list[str]]] = {}
    injections: list[Injection] = []
    pairs = [(s, m) for s in services for m in models]
    for p_idx, (service, model) in enumerate(pairs):
        # Each pair gets a different subset of the kinds (one pair stays clean).
        chosen = [] if p_idx == len(pairs) - 1 else [KINDS[(p_idx * 2 + j) % len(KINDS)] for j in range(4)]
        planned: list[tuple[str, str, int, int]] = []
        slots = np.linspace(probation + n // 10, n - n // 10, num=max(len(chosen), 1))
        for (metric, kind), centre in zip(chosen, slots, strict=False):
            a = int(centre + rng.integers(-n // 40, n // 40))
            end = n if kind == "level_shift" else min(n, a + duration(kind, per_hour, rng))
            planned.append((metric, kind, a, end))
        values = simulate(rng, n, step_s, start, planned)
        category = f"{service}.{model}"
        by_metric: dict[str, list[tuple[str, int, int]]] = {m: [] for m in METRICS}
        for metric, kind, a, b in planned:
            # Cost follows tokens and requests; error rate is its own series.
            affected = {metric}
            if kind in ("token_usage_spike", "throughput_drop"):
                affected.add("cost_usd")
            for m in affected:
                by_metric[m].append((kind, a, b))
        for metric in METRICS:
            rel = f"{category}/{metric}.csv"
            path = out / "data" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w") as fh:
                fh.write("timestamp,value\n")
                for ts, v in zip(stamps, values[metric].tolist(), strict=True):
                    fh.write(f"{ts},{v:.6g}\n")
            events = sorted(by_metric[metric], key=lambda e: e[1])
            win: list[list[str]] = []
            if events:
                width = max(2, int(0.1 * n / len(events)))
                for kind, a, b in events:
                    lo, hi = max(0, a - width // 2), min(n - 1, a + width // 2)
                    if win and lo <= _index(win[-1][1], stamps):
                        lo = _index(win[-1][1], stamps) + 1
                    if lo <= hi:
                        win.append([stamps[lo] + ".000000", stamps[hi] + ".000000"])
                    injections.append(Injection(rel, kind, a, b))
            windows[rel] = win
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "config").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "combined_windows.json").write_text(json.dumps(windows, indent=2, sort_keys=True))
    (out / "labels" / "anomalies.json").write_text(
        json.dumps(
            [
                {"file": i.series, "kind": i.kind, "start": stamps[i.start], "end": stamps[min(i.end, n) - 1]}
                for i in injections
            ],
            indent=2,
        )
    )
    (out / "config" / "profiles.json").write_text(
        json.dumps({k: {"CostMatrix": v} for k, v in PROFILES.items()}, indent=2)
    )
    return injections


def _index(stamp: str, stamps: list[str]) -> int:
    return stamps.index(stamp.split(".")[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description="Write a labelled synthetic LLM-telemetry corpus (NAB layout).")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--step-seconds", type=int, default=300)
    args = ap.parse_args(argv)
    inj = generate(args.out, seed=args.seed, days=args.days, step_s=args.step_seconds)
    print(json.dumps({"files": len(list((args.out / "data").rglob("*.csv"))), "injections": len(inj)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
