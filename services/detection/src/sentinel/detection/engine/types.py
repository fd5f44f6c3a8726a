"""Engine-level enums and the metric-aware anomaly type mapping (pure; no protobuf).

The numeric values of :class:`Severity` and :class:`AnomalyType` equal those of
``sentinel.api.common.v1`` so the service converts them by value.
"""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Severity of a scored point (values = ``sentinel.api.common.v1.Severity``)."""

    UNSPECIFIED = 0
    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5


class AnomalyType(enum.IntEnum):
    """Anomaly type (values = ``sentinel.api.common.v1.AnomalyType``)."""

    UNSPECIFIED = 0
    LATENCY_SPIKE = 1
    LEVEL_SHIFT = 2
    THROUGHPUT_DROP = 3
    ERROR_RATE_INCREASE = 4
    TOKEN_USAGE_SPIKE = 5
    COST_ANOMALY = 6
    DRIFT = 7
    VARIANCE_CHANGE = 8
    SEASONAL_DEVIATION = 9


class AnomalyKind(enum.IntEnum):
    """Metric-agnostic shape of a deviation, as the engine sees it."""

    NONE = 0
    SPIKE = 1
    DIP = 2
    LEVEL_SHIFT = 3
    VARIANCE_CHANGE = 4
    DRIFT = 5
    SEASONAL_DEVIATION = 6


class Detector(enum.IntEnum):
    """The ensemble's detectors, in the column order of the results."""

    SPIKE = 0
    LEVEL_SHIFT = 1
    VARIANCE_CHANGE = 2
    CUSUM = 3
    SEASONAL = 4
    DRIFT = 5


DETECTOR_NAMES: tuple[str, ...] = tuple(d.name.lower() for d in Detector)

_LATENCY = ("latency", "ttft", "time_to_first_token", "duration")
_THROUGHPUT = ("request_rate", "requests", "throughput", "tokens_per_s", "rps", "qps")
_ERRORS = ("error", "failure", "fault")
_TOKENS = ("token",)
_COST = ("cost", "spend", "usd")


def kind_for(detector: Detector, direction: int) -> AnomalyKind:
    """Shape of a deviation from the detector that dominated and the sign of ``value - baseline``."""
    if detector is Detector.SPIKE:
        return AnomalyKind.DIP if direction < 0 else AnomalyKind.SPIKE
    if detector in (Detector.LEVEL_SHIFT, Detector.CUSUM):
        return AnomalyKind.LEVEL_SHIFT
    if detector is Detector.VARIANCE_CHANGE:
        return AnomalyKind.VARIANCE_CHANGE
    if detector is Detector.SEASONAL:
        return AnomalyKind.SEASONAL_DEVIATION
    return AnomalyKind.DRIFT


def _has(name: str, words: tuple[str, ...]) -> bool:
    return any(w in name for w in words)


def anomaly_type_for(metric_name: str, direction: int, detector: Detector) -> AnomalyType:
    """The anomaly type to report for a metric, given how it deviated.

    Metric-specific types win where the direction makes them meaningful
    (latency up = latency spike, request rate down = throughput drop, error
    rate up = error-rate increase, tokens up = token usage spike, any cost
    deviation = cost anomaly); otherwise the detector's generic shape is used.

    Args:
        metric_name: the series' metric name, e.g. ``latency_ms`` or ``error_rate``.
        direction: sign of ``value - baseline`` (+1 above, -1 below, 0 unknown).
        detector: the detector with the largest contribution.

    Returns:
        The :class:`AnomalyType` (numbered as the proto enum).
    """
    name = metric_name.lower()
    if _has(name, _LATENCY) and direction > 0:
        return AnomalyType.LATENCY_SPIKE
    if _has(name, _ERRORS) and direction > 0:
        return AnomalyType.ERROR_RATE_INCREASE
    if _has(name, _THROUGHPUT) and direction < 0:
        return AnomalyType.THROUGHPUT_DROP
    if _has(name, _COST):
        return AnomalyType.COST_ANOMALY
    if _has(name, _TOKENS) and direction > 0 and detector in (Detector.SPIKE, Detector.SEASONAL):
        return AnomalyType.TOKEN_USAGE_SPIKE
    return _GENERIC[kind_for(detector, direction)]


_GENERIC: dict[AnomalyKind, AnomalyType] = {
    AnomalyKind.NONE: AnomalyType.UNSPECIFIED,
    # The proto has no generic spike/dip; a short-lived spike or dip is a level
    # excursion as far as the incident type is concerned.
    AnomalyKind.SPIKE: AnomalyType.LEVEL_SHIFT,
    AnomalyKind.DIP: AnomalyType.LEVEL_SHIFT,
    AnomalyKind.LEVEL_SHIFT: AnomalyType.LEVEL_SHIFT,
    AnomalyKind.VARIANCE_CHANGE: AnomalyType.VARIANCE_CHANGE,
    AnomalyKind.DRIFT: AnomalyType.DRIFT,
    AnomalyKind.SEASONAL_DEVIATION: AnomalyType.SEASONAL_DEVIATION,
}
