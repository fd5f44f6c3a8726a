"""Anomaly → alert: what detection reports becomes an ordinary alert of source SENTINEL_DETECTION.

The anomaly type becomes the alert (and incident) type, e.g. ANOMALY_TYPE_LATENCY_SPIKE →
"latency_spike"; service and model come from the series labels and the metric from the series
name; severity maps to priority as for every alert (critical→P0 … info→P4).
"""

from __future__ import annotations

from collections.abc import Mapping

from sentinel.incident_manager.domain.fingerprint import stable_id
from sentinel.incident_manager.domain.model import (
    AlertInput,
    AlertSource,
    AlertStatus,
    AnomalyInput,
    AnomalyType,
    Severity,
)
from sentinel.runtime.errors import InvalidArgumentError

#: Series label names that carry the service and the model (the first present wins).
SERVICE_LABELS = ("service", "service_name")
MODEL_LABELS = ("model", "model_name")


def incident_type_for(anomaly_type: AnomalyType) -> str:
    """The alert/incident type of an anomaly type: its lower-case name, e.g. "latency_spike"."""
    return anomaly_type.name.lower()


def _first(labels: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        if labels.get(name):
            return labels[name]
    return ""


def alert_from_anomaly(
    anomaly: AnomalyInput, *, dedup_key: str = "", extra_labels: Mapping[str, str] | None = None
) -> AlertInput:
    """The alert made from `anomaly`; validate it like any other alert afterwards.

    Raises:
        InvalidArgumentError: the anomaly misses its series, start_time, severity or type
            ("field" is e.g. "anomaly.start_time").
    """
    if not anomaly.has_series or not anomaly.series_name:
        raise InvalidArgumentError("anomaly.series", "is required (a series name and labels)")
    if anomaly.start_time is None:
        raise InvalidArgumentError("anomaly.start_time", "is required")
    if anomaly.severity == 0:
        raise InvalidArgumentError("anomaly.severity", "is required")
    try:
        severity = Severity(anomaly.severity)
    except ValueError:
        raise InvalidArgumentError("anomaly.severity", f"unknown value {anomaly.severity}") from None
    if anomaly.anomaly_type == 0:
        raise InvalidArgumentError("anomaly.anomaly_type", "is required")
    try:
        anomaly_type = AnomalyType(anomaly.anomaly_type)
    except ValueError:
        raise InvalidArgumentError("anomaly.anomaly_type", f"unknown value {anomaly.anomaly_type}") from None
    if not 0.0 <= anomaly.score <= 1.0:
        raise InvalidArgumentError("anomaly.score", f"{anomaly.score} is outside [0, 1]")
    series = dict(anomaly.series_labels)
    labels = {**(extra_labels or {}), **series, "metric": anomaly.series_name}
    service = _first(series, SERVICE_LABELS)
    model = _first(series, MODEL_LABELS)
    alert_type = incident_type_for(anomaly_type)
    key = dedup_key or _derived_dedup_key(anomaly, alert_type)
    where = "/".join(part for part in (service, model) if part)
    title = f"{alert_type.replace('_', ' ')} in {anomaly.series_name}" + (f" on {where}" if where else "")
    description = anomaly.explanation or (
        f"{anomaly.series_name} = {anomaly.value:g} against a baseline of {anomaly.baseline:g} "
        f"(score {anomaly.score:.2f})"
    )
    annotations = {
        "value": f"{anomaly.value:g}",
        "baseline": f"{anomaly.baseline:g}",
        "score": f"{anomaly.score:.4f}",
    }
    if anomaly.detectors:
        annotations["detectors"] = ",".join(anomaly.detectors)
    if anomaly.end_time is not None:
        annotations["anomaly_end_time"] = anomaly.end_time.isoformat()
    return AlertInput(
        source=AlertSource.SENTINEL_DETECTION,
        dedup_key=key,
        title=title[:300],
        description=description[:10_000],
        severity=int(severity),
        alert_type=alert_type,
        service=service,
        model=model,
        labels=labels,
        annotations=annotations,
        # Detection reports episodes, not recoveries: the alert fires until it expires unseen.
        status=int(AlertStatus.FIRING),
        start_time=anomaly.start_time,
        anomaly_id=anomaly.anomaly_id,
    )


def _derived_dedup_key(anomaly: AnomalyInput, alert_type: str) -> str:
    if anomaly.anomaly_id:
        return f"anomaly:{anomaly.anomaly_id}"
    assert anomaly.start_time is not None
    series = "|".join(f"{k}={v}" for k, v in sorted(anomaly.series_labels.items()))
    return stable_id(
        "anomaly:", anomaly.series_name, series, alert_type, str(int(anomaly.start_time.timestamp() * 1e6))
    )
