"""Bad input answers INVALID_ARGUMENT naming the field; good alerts of a mixed report are kept."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import resources_pb2 as res


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


NOW = time.time()
GOOD = res.Alert(alert_type="latency_spike", service="chat-api", labels={"env": "prod"})

BAD = [
    (res.Alert(), "labels"),
    (res.Alert(labels={"env": ""}), "labels"),
    (res.Alert(alert_type="x", severity=42), "severity"),  # type: ignore[arg-type]
    (res.Alert(alert_type="x", priority=42), "priority"),  # type: ignore[arg-type]
    (res.Alert(alert_type="x", start_time=ts(NOW + 3600)), "start_time"),
    (res.Alert(alert_type="x", start_time=ts(NOW - 365 * 86400)), "start_time"),
    (res.Alert(alert_type="x", start_time=ts(NOW), end_time=ts(NOW - 60)), "end_time"),
    (res.Alert(alert_type="x", start_time=timestamp_pb2.Timestamp(seconds=-(10**13))), "start_time"),
    (res.Alert(alert_type="x", title="t" * 301), "title"),
    (res.Alert(alert_type="x", description="d" * 10_001), "description"),
    (res.Alert(alert_type="x", labels={f"k{i}": "v" for i in range(65)}), "labels"),
    (res.Alert(alert_type="x", labels={"k": "v" * 501}), "labels.k"),
]


@pytest.mark.parametrize(("bad", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
async def test_a_report_of_one_bad_alert_is_invalid_argument_naming_the_field(
    incidents: Any, bad: res.Alert, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await incidents.stub.ReportAlerts(api.ReportAlertsRequest(alerts=[bad]))

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith(f"alerts[0].{field}: ")


async def test_a_mixed_report_keeps_good_alerts_and_lists_the_bad_ones(incidents: Any) -> None:
    bad = res.Alert(alert_type="x", severity=42)  # type: ignore[arg-type]
    response = await incidents.stub.ReportAlerts(api.ReportAlertsRequest(alerts=[GOOD, bad, GOOD]))

    assert [r.index for r in response.results] == [0, 2]
    assert [(e.index, e.field) for e in response.errors] == [(1, "severity")]


async def test_empty_and_oversize_reports_are_refused(incidents: Any) -> None:
    for alerts in ([], [GOOD] * 1001):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await incidents.stub.ReportAlerts(api.ReportAlertsRequest(alerts=alerts))
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (raised.value.details() or "").startswith("alerts: ")


async def test_bad_anomalies_name_the_field(incidents: Any) -> None:
    cases = [
        (api.ReportAnomalyRequest(), "anomaly"),
        (
            api.ReportAnomalyRequest(anomaly=common_pb2.Anomaly(severity=common_pb2.SEVERITY_HIGH)),
            "anomaly.series",
        ),
        (
            api.ReportAnomalyRequest(
                anomaly=common_pb2.Anomaly(
                    series=common_pb2.SeriesKey(name="latency_ms"), severity=3, anomaly_type=1
                )
            ),
            "anomaly.start_time",
        ),
        (
            api.ReportAnomalyRequest(
                anomaly=common_pb2.Anomaly(
                    series=common_pb2.SeriesKey(name="latency_ms"),
                    start_time=ts(NOW),
                    severity=9,
                    anomaly_type=1,
                )
            ),
            "anomaly.severity",
        ),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await incidents.stub.ReportAnomaly(request)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        assert (raised.value.details() or "").startswith(f"{field}: "), raised.value.details()


async def test_bad_lifecycle_and_query_requests(incidents: Any) -> None:
    stub = incidents.stub
    cases: list[tuple[Any, Any, grpc.StatusCode, str]] = [
        (stub.GetIncident, api.GetIncidentRequest(), grpc.StatusCode.INVALID_ARGUMENT, "incident_id"),
        (stub.GetIncident, api.GetIncidentRequest(incident_id="inc_nope"), grpc.StatusCode.NOT_FOUND, ""),
        (
            stub.AcknowledgeIncident,
            api.AcknowledgeIncidentRequest(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "incident_id",
        ),
        (
            stub.ListIncidents,
            api.ListIncidentsRequest(
                matchers=[
                    common_pb2.LabelMatcher(name="env", operator=common_pb2.MATCH_OPERATOR_REGEX, value="(")
                ]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "matchers[0].value",
        ),
        (
            stub.CreateSilence,
            api.CreateSilenceRequest(silence=res.Silence(comment="x", end_time=ts(NOW + 60))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "silence.matchers",
        ),
        (
            stub.GetStats,
            api.GetStatsRequest(
                time_range=common_pb2.TimeRange(start_time=ts(NOW), end_time=ts(NOW - 86400))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "time_range",
        ),
    ]
    for method, request, code, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await method(request)
        assert raised.value.code() is code, (request, raised.value.details())
        if field:
            assert (raised.value.details() or "").startswith(f"{field}: "), raised.value.details()
