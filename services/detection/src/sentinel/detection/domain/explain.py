"""Human-readable explanations of scores (pure)."""

from __future__ import annotations

import math

from sentinel.detection.engine import DETECTOR_NAMES, Detector, Severity

_WHAT = {
    Detector.SPIKE: "a single-point deviation from the robust window median",
    Detector.LEVEL_SHIFT: "a shift of the recent median away from the window median",
    Detector.VARIANCE_CHANGE: "a change of the recent spread",
    Detector.CUSUM: "a sustained drift accumulated by CUSUM",
    Detector.SEASONAL: "a deviation from the learnt hour-of-day / day-of-week profile",
    Detector.DRIFT: "a change of the value distribution (PSI)",
}


def detector_description(detector: Detector) -> str:
    """What a detector's alarm means, in words."""
    return _WHAT[detector]


def explain(
    *,
    metric: str,
    value: float,
    baseline: float,
    score: float,
    threshold: float,
    severity: int,
    detector: int,
    direction: int,
) -> str:
    """One sentence on why a point scored what it did.

    e.g. ``llm.latency_ms 2400 is 531.6% above its expected 380: score 0.93 (HIGH, anomalous),
    driven by spike (a single-point deviation from the robust window median)``.
    """
    if math.isnan(baseline):
        where = f"{metric} {value:.6g} has no baseline yet (warming up)"
    else:
        side = "above" if direction > 0 else "below" if direction < 0 else "at"
        if baseline != 0 and direction != 0:
            pct = abs(value - baseline) / abs(baseline) * 100
            where = f"{metric} {value:.6g} is {pct:.1f}% {side} its expected {baseline:.6g}"
        else:
            where = f"{metric} {value:.6g} is {side} its expected {baseline:.6g}"
    verdict = "anomalous" if score >= threshold else "normal"
    sev = Severity(severity).name if score >= threshold else "none"
    det = Detector(detector)
    return (
        f"{where}: score {score:.2f} ({sev}, {verdict} at threshold {threshold:.2f}), "
        f"driven by {DETECTOR_NAMES[det]} ({detector_description(det)})"
    )
