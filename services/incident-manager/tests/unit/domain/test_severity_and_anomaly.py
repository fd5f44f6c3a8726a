from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sentinel.incident_manager.domain.anomaly import alert_from_anomaly, incident_type_for
from sentinel.incident_manager.domain.model import (
    AlertSource,
    AnomalyInput,
    AnomalyType,
    Priority,
    Severity,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.severity import priority_for
from sentinel.incident_manager.domain.validate import validate_alert
from sentinel.runtime.errors import InvalidArgumentError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        (Severity.CRITICAL, Priority.P0),
        (Severity.HIGH, Priority.P1),
        (Severity.MEDIUM, Priority.P2),
        (Severity.LOW, Priority.P3),
        (Severity.INFO, Priority.P4),
    ],
)
def test_severity_maps_to_priority(severity: Severity, priority: Priority) -> None:
    assert priority_for(severity) is priority


def test_an_explicit_priority_wins() -> None:
    assert priority_for(Severity.INFO, Priority.P0) is Priority.P0


def anomaly(**overrides: object) -> AnomalyInput:
    fields: dict[str, object] = {
        "anomaly_id": "an-1",
        "series_name": "latency_ms",
        "series_labels": {"service": "chat-api", "model": "gpt-4o", "region": "eu"},
        "has_series": True,
        "start_time": NOW,
        "value": 950.0,
        "baseline": 120.0,
        "score": 0.97,
        "severity": int(Severity.CRITICAL),
        "anomaly_type": int(AnomalyType.LATENCY_SPIKE),
        "detectors": ("robust_z", "cusum"),
    }
    fields.update(overrides)
    return AnomalyInput(**fields)  # type: ignore[arg-type]


def test_anomaly_becomes_a_detection_alert_with_type_labels_and_priority() -> None:
    raw = alert_from_anomaly(anomaly(), extra_labels={"team": "ml", "region": "us"})
    alert = validate_alert(raw, now=NOW, policy=IncidentPolicy(), limits=Limits())

    assert alert.source is AlertSource.SENTINEL_DETECTION
    assert alert.alert_type == "latency_spike"
    assert (alert.service, alert.model) == ("chat-api", "gpt-4o")
    assert alert.labels["metric"] == "latency_ms"
    assert alert.labels["region"] == "eu"  # series labels win over extra labels
    assert alert.labels["team"] == "ml"
    assert alert.severity is Severity.CRITICAL and alert.priority is Priority.P0
    assert alert.dedup_key == "anomaly:an-1"
    assert alert.anomaly_id == "an-1"
    assert alert.annotations["detectors"] == "robust_z,cusum"
    assert "latency" in alert.title


@pytest.mark.parametrize("kind", list(AnomalyType))
def test_every_anomaly_type_maps_to_its_lowercase_incident_type(kind: AnomalyType) -> None:
    assert incident_type_for(kind) == kind.name.lower()


def test_anomaly_without_id_gets_a_stable_derived_dedup_key() -> None:
    one = alert_from_anomaly(anomaly(anomaly_id=""))
    two = alert_from_anomaly(anomaly(anomaly_id=""))
    later = alert_from_anomaly(anomaly(anomaly_id="", start_time=NOW.replace(minute=5)))
    assert one.dedup_key == two.dedup_key != later.dedup_key


def test_a_given_dedup_key_is_kept() -> None:
    assert alert_from_anomaly(anomaly(), dedup_key="mine").dedup_key == "mine"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"has_series": False}, "anomaly.series"),
        ({"start_time": None}, "anomaly.start_time"),
        ({"severity": 0}, "anomaly.severity"),
        ({"severity": 42}, "anomaly.severity"),
        ({"anomaly_type": 0}, "anomaly.anomaly_type"),
        ({"anomaly_type": 99}, "anomaly.anomaly_type"),
        ({"score": 1.5}, "anomaly.score"),
    ],
)
def test_malformed_anomalies_are_invalid_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        alert_from_anomaly(anomaly(**overrides))
    assert raised.value.field == field
