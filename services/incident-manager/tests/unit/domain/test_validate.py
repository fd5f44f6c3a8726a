from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel.incident_manager.domain.model import AlertInput, AlertSource, AlertStatus, Priority, Severity
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.validate import validate_alert
from sentinel.runtime.errors import InvalidArgumentError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def check(**fields: object):  # type: ignore[no-untyped-def]
    return validate_alert(AlertInput(**fields), now=NOW, policy=IncidentPolicy(), limits=Limits())  # type: ignore[arg-type]


def test_defaults_fill_in_source_severity_priority_status_start_and_title() -> None:
    alert = check(alert_type="latency_spike", service="chat")
    assert alert.source is AlertSource.API
    assert alert.severity is Severity.MEDIUM and alert.priority is Priority.P2
    assert alert.status is AlertStatus.FIRING
    assert alert.start_time == NOW
    assert alert.title == "latency_spike on chat"


def test_alertmanager_alertname_becomes_the_alert_type() -> None:
    assert check(labels={"alertname": "HighLatency"}).alert_type == "HighLatency"


def test_a_resolved_alert_without_end_time_ends_now() -> None:
    assert check(alert_type="x", status=int(AlertStatus.RESOLVED)).end_time == NOW


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "labels"),
        ({"labels": {"env": ""}}, "labels"),
        ({"alert_type": "x", "severity": 9}, "severity"),
        ({"alert_type": "x", "priority": 17}, "priority"),
        ({"alert_type": "x", "source": 8}, "source"),
        ({"alert_type": "x", "status": 3}, "status"),
        ({"alert_type": "x", "title": "t" * 301}, "title"),
        ({"alert_type": "x", "description": "d" * 10_001}, "description"),
        ({"alert_type": "x", "dedup_key": "k" * 256}, "dedup_key"),
        ({"alert_type": "x", "labels": {f"k{i}": "v" for i in range(65)}}, "labels"),
        ({"alert_type": "x", "labels": {"k" * 101: "v"}}, "labels." + "k" * 50),
        ({"alert_type": "x", "labels": {"k": "v" * 501}}, "labels.k"),
        ({"alert_type": "x", "start_time": NOW + timedelta(hours=1)}, "start_time"),
        ({"alert_type": "x", "start_time": NOW - timedelta(days=365)}, "start_time"),
        ({"alert_type": "x", "start_time": NOW, "end_time": NOW - timedelta(minutes=1)}, "end_time"),
    ],
)
def test_bad_alerts_are_invalid_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        check(**fields)
    assert raised.value.field == field


def test_a_future_end_time_is_allowed_as_alertmanager_ends_at() -> None:
    assert check(alert_type="x", end_time=NOW + timedelta(minutes=5)).end_time == NOW + timedelta(minutes=5)
