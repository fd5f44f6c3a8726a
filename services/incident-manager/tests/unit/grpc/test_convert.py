from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.incident_manager.domain.grouping import new_incident
from sentinel.incident_manager.domain.model import (
    AlertInput,
    ChangeType,
    IncidentChange,
    LabelMatcher,
    MatchOperator,
    Outcome,
    Silence,
    TimelineEntry,
    TimelineKind,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.validate import validate_alert
from sentinel.incident_manager.grpc import convert
from sentinel.incident_manager.service import AlertResult, ReportOutcome, RowError
from sentinel.runtime.errors import InvalidArgumentError

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_reported_alert_round_trips_through_the_domain() -> None:
    message = res.Alert(
        source=res.ALERT_SOURCE_ALERTMANAGER,
        dedup_key="am-fp",
        title="High latency",
        severity=common_pb2.SEVERITY_CRITICAL,
        alert_type="HighLatency",
        service="chat",
        labels={"env": "prod"},
        annotations={"runbook_url": "http://x"},
        fingerprint="ignored-output-only",
        duplicate_count=99,
    )
    message.start_time.FromDatetime(NOW)
    raw = convert.alert_input_from_proto(message)
    alert = validate_alert(raw, now=NOW, policy=IncidentPolicy(), limits=Limits())

    back = convert.alert_to_proto(alert)
    again = convert.alert_from_proto(back)

    assert again == alert
    assert back.fingerprint.startswith("v1:") and back.fingerprint != "ignored-output-only"
    assert back.duplicate_count == 0
    assert back.start_time.ToDatetime(tzinfo=UTC) == NOW


def test_an_incident_and_timeline_entry_round_trip() -> None:
    alert = validate_alert(
        AlertInput(alert_type="x", service="s"), now=NOW, policy=IncidentPolicy(), limits=Limits()
    )
    incident = new_incident(alert, incident_id="inc_1", now=NOW, silence=None)
    assert convert.incident_from_proto(convert.incident_to_proto(incident)) == incident
    entry = TimelineEntry(
        "e1", "inc_1", NOW, TimelineKind.NOTE_ADDED, "alice", message="hi", attributes={"a": "b"}
    )
    assert convert.entry_from_proto(convert.entry_to_proto(entry)) == entry


def test_a_silence_round_trips_with_its_state_derived() -> None:
    silence = Silence(
        "sil_1",
        (LabelMatcher("service", MatchOperator.REGEX, "chat-.*"),),
        NOW,
        NOW + timedelta(hours=1),
        "alice",
        "deploy",
        maintenance=True,
        create_time=NOW,
        update_time=NOW,
    )
    message = convert.silence_to_proto(silence, now=NOW)
    assert message.state == res.SILENCE_STATE_ACTIVE
    assert convert.silence_from_proto(message) == silence


def test_a_matcher_without_operator_is_invalid_naming_it() -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        convert.matchers_from_proto([common_pb2.LabelMatcher(name="a", value="b")], "matchers")
    assert bad.value.field == "matchers[0].operator"


def test_an_out_of_range_timestamp_becomes_the_alerts_row_error() -> None:
    request = api.ReportAlertsRequest(
        alerts=[res.Alert(alert_type="x", start_time=timestamp_pb2.Timestamp(seconds=-(10**12)))]
    )
    [item] = convert.alert_inputs_from_request(request)
    assert isinstance(item, InvalidArgumentError) and item.field == "start_time"


def test_unknown_filter_enums_are_invalid() -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        convert.incident_query_from_proto(api.ListIncidentsRequest(states=[42]))  # type: ignore[list-item]
    assert bad.value.field == "states[0]"


def test_report_response_keeps_order_and_errors() -> None:
    alert = validate_alert(AlertInput(alert_type="x"), now=NOW, policy=IncidentPolicy(), limits=Limits())
    response = convert.report_response(
        ReportOutcome(
            [AlertResult(2, alert, Outcome.SUPPRESSED, ("sil_1",))], [RowError(0, "severity", "bad")]
        )
    )
    assert response.results[0].index == 2
    assert response.results[0].outcome == api.ALERT_OUTCOME_SUPPRESSED
    assert list(response.results[0].silence_ids) == ["sil_1"]
    assert (response.errors[0].index, response.errors[0].field) == (0, "severity")


def test_heartbeat_events_carry_only_cursor_and_time() -> None:
    event = convert.event_to_proto(IncidentChange("t", ChangeType.HEARTBEAT, NOW, None, cursor="ab-3")).event
    assert event.type == res.INCIDENT_EVENT_TYPE_HEARTBEAT
    assert event.cursor == "ab-3" and not event.HasField("incident")
