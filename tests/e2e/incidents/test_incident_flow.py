"""Alerts to incidents through the real services: dedup, grouping, lifecycle, silences, restarts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import resources_pb2 as res


def alert(**fields: Any) -> res.Alert:
    fields.setdefault("alert_type", "latency_spike")
    fields.setdefault("service", "chat-api")
    fields.setdefault("model", "gpt-4o")
    fields.setdefault("title", "p99 latency over 2s")
    fields.setdefault("severity", common_pb2.SEVERITY_HIGH)
    labels = fields.pop("labels", {"env": "prod"})
    return res.Alert(labels=labels, **fields)


async def report(stub: Any, *alerts: res.Alert) -> api.ReportAlertsResponse:
    return await stub.ReportAlerts(api.ReportAlertsRequest(alerts=list(alerts)))


async def incident(stub: Any, incident_id: str) -> res.Incident:
    return (await stub.GetIncident(api.GetIncidentRequest(incident_id=incident_id))).incident


async def timeline_kinds(stub: Any, incident_id: str) -> list[int]:
    response = await stub.ListTimeline(api.ListTimelineRequest(incident_id=incident_id, page_size=1000))
    return [entry.kind for entry in response.entries]


async def test_a_reported_alert_opens_an_incident(incidents: Any) -> None:
    response = await report(incidents.stub, alert())

    [result] = response.results
    assert result.outcome == api.ALERT_OUTCOME_NEW_INCIDENT
    assert result.fingerprint.startswith("v1:")
    found = await incident(incidents.stub, result.incident_id)
    assert found.state == res.INCIDENT_STATE_TRIGGERED
    assert found.priority == res.PRIORITY_P1
    assert found.incident_type == "latency_spike"
    assert found.version >= 1
    assert await timeline_kinds(incidents.stub, result.incident_id) == [
        res.TIMELINE_ENTRY_KIND_ALERT_RECEIVED
    ]


async def test_acknowledge_resolve_reopen_close_with_invalid_transitions_refused(incidents: Any) -> None:
    stub = incidents.stub
    [result] = (await report(stub, alert())).results
    incident_id = result.incident_id

    acked = (
        await stub.AcknowledgeIncident(
            api.AcknowledgeIncidentRequest(incident_id=incident_id, actor="user:alice", reason="looking")
        )
    ).incident
    assert acked.state == res.INCIDENT_STATE_ACKNOWLEDGED
    again = (await stub.AcknowledgeIncident(api.AcknowledgeIncidentRequest(incident_id=incident_id))).incident
    assert again.version == acked.version

    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.ResolveIncident(
            api.ResolveIncidentRequest(incident_id=incident_id, expected_version=acked.version + 5)
        )
    assert stale.value.code() is grpc.StatusCode.ABORTED

    resolved = (
        await stub.ResolveIncident(
            api.ResolveIncidentRequest(incident_id=incident_id, expected_version=acked.version)
        )
    ).incident
    assert resolved.state == res.INCIDENT_STATE_RESOLVED

    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.AcknowledgeIncident(api.AcknowledgeIncidentRequest(incident_id=incident_id))
    assert invalid.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "RESOLVED" in (invalid.value.details() or "")

    reopened = (
        await stub.ReopenIncident(api.ReopenIncidentRequest(incident_id=incident_id, reason="no"))
    ).incident
    assert reopened.state == res.INCIDENT_STATE_TRIGGERED and reopened.reopen_count == 1
    await stub.ResolveIncident(api.ResolveIncidentRequest(incident_id=incident_id))
    closed = (await stub.CloseIncident(api.CloseIncidentRequest(incident_id=incident_id))).incident
    assert closed.state == res.INCIDENT_STATE_CLOSED

    with pytest.raises(grpc.aio.AioRpcError) as final:
        await stub.ReopenIncident(api.ReopenIncidentRequest(incident_id=incident_id))
    assert final.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    kinds = await timeline_kinds(stub, incident_id)
    assert kinds.count(res.TIMELINE_ENTRY_KIND_STATE_CHANGED) == 5
    assert kinds.count(res.TIMELINE_ENTRY_KIND_REOPENED) == 1


async def test_a_new_firing_after_resolution_reopens_the_incident(incidents: Any) -> None:
    stub = incidents.stub
    [first] = (await report(stub, alert())).results
    [gone] = (await report(stub, alert(status=res.ALERT_STATUS_RESOLVED))).results
    assert gone.outcome == api.ALERT_OUTCOME_RESOLVED
    assert (await incident(stub, first.incident_id)).state == res.INCIDENT_STATE_RESOLVED

    [back] = (await report(stub, alert())).results

    assert back.outcome == api.ALERT_OUTCOME_REOPENED and back.incident_id == first.incident_id
    assert (await incident(stub, first.incident_id)).reopen_count == 1


async def test_fifty_concurrent_reports_of_one_alert_make_one_incident_counting_fifty(incidents: Any) -> None:
    stub = incidents.stub

    responses = await asyncio.gather(*(report(stub, alert()) for _ in range(50)))

    outcomes = [r.results[0].outcome for r in responses]
    assert outcomes.count(api.ALERT_OUTCOME_NEW_INCIDENT) == 1
    assert outcomes.count(api.ALERT_OUTCOME_DEDUPLICATED) == 49
    assert len({r.results[0].incident_id for r in responses}) == 1
    listed = await stub.ListIncidents(api.ListIncidentsRequest())
    assert len(listed.incidents) == 1
    [stored] = (
        await stub.ListAlerts(api.ListAlertsRequest(incident_id=listed.incidents[0].incident_id))
    ).alerts
    assert stored.duplicate_count + 1 == 50
    kinds = await timeline_kinds(stub, listed.incidents[0].incident_id)
    assert kinds.count(res.TIMELINE_ENTRY_KIND_ALERT_DEDUPLICATED) == 49


async def test_alerts_of_one_group_join_one_incident(incidents: Any) -> None:
    stub = incidents.stub
    await asyncio.gather(*(report(stub, alert(labels={"env": "prod", "pod": f"p{i}"})) for i in range(10)))
    listed = (await stub.ListIncidents(api.ListIncidentsRequest())).incidents
    assert len(listed) == 1 and listed[0].alert_count == 10


async def test_incidents_alerts_and_timelines_survive_a_restart(incidents: Any) -> None:
    [result] = (await report(incidents.stub, alert())).results
    await report(incidents.stub, alert())
    await incidents.stub.AddNote(api.AddNoteRequest(incident_id=result.incident_id, text="rolled back"))
    before = await incident(incidents.stub, result.incident_id)

    await incidents.restart()

    after = await incident(incidents.stub, result.incident_id)
    assert after == before
    kinds = await timeline_kinds(incidents.stub, result.incident_id)
    assert kinds == [
        res.TIMELINE_ENTRY_KIND_ALERT_RECEIVED,
        res.TIMELINE_ENTRY_KIND_ALERT_DEDUPLICATED,
        res.TIMELINE_ENTRY_KIND_NOTE_ADDED,
    ]
    [repeat] = (await report(incidents.stub, alert())).results
    assert repeat.outcome == api.ALERT_OUTCOME_DEDUPLICATED and repeat.incident_id == result.incident_id
    [stored] = (await incidents.stub.ListAlerts(api.ListAlertsRequest(incident_id=result.incident_id))).alerts
    assert stored.duplicate_count == 2


async def test_a_silence_suppresses_and_names_itself(incidents: Any) -> None:
    stub = incidents.stub
    end = timestamp_pb2.Timestamp()
    end.FromSeconds(int(time.time()) + 3600)
    silence = (
        await stub.CreateSilence(
            api.CreateSilenceRequest(
                silence=res.Silence(
                    matchers=[
                        common_pb2.LabelMatcher(
                            name="service", operator=common_pb2.MATCH_OPERATOR_REGEX, value="chat-.*"
                        )
                    ],
                    end_time=end,
                    comment="deploy",
                ),
                actor="alice",
            )
        )
    ).silence
    assert silence.state == res.SILENCE_STATE_ACTIVE and silence.created_by == "alice"

    [muted] = (await report(stub, alert())).results

    assert muted.outcome == api.ALERT_OUTCOME_SUPPRESSED
    assert list(muted.silence_ids) == [silence.silence_id]
    found = await incident(stub, muted.incident_id)
    assert found.suppressed and found.silence_id == silence.silence_id
    listed = await stub.ListSilences(api.ListSilencesRequest(alert_labels={"service": "chat-api"}))
    assert [s.silence_id for s in listed.silences] == [silence.silence_id]
    expired = (await stub.ExpireSilence(api.ExpireSilenceRequest(silence_id=silence.silence_id))).silence
    assert expired.state == res.SILENCE_STATE_EXPIRED


async def test_report_anomaly_opens_a_detection_incident(incidents: Any) -> None:
    start = timestamp_pb2.Timestamp()
    start.GetCurrentTime()
    anomaly = common_pb2.Anomaly(
        anomaly_id="an-e2e",
        series=common_pb2.SeriesKey(name="error_rate", labels={"service": "chat-api", "model": "gpt-4o"}),
        start_time=start,
        score=0.9,
        severity=common_pb2.SEVERITY_CRITICAL,
        anomaly_type=common_pb2.ANOMALY_TYPE_ERROR_RATE_INCREASE,
    )
    response = await incidents.stub.ReportAnomaly(api.ReportAnomalyRequest(anomaly=anomaly))
    assert response.outcome == api.ALERT_OUTCOME_NEW_INCIDENT
    assert response.alert.source == res.ALERT_SOURCE_SENTINEL_DETECTION
    found = await incident(incidents.stub, response.alert.incident_id)
    assert (found.incident_type, found.priority) == ("error_rate_increase", res.PRIORITY_P0)


async def test_routing_and_notifications_answer_unimplemented_naming_the_gap(incidents: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as pending:
        await incidents.stub.ListRoutingRules(api.ListRoutingRulesRequest())
    assert pending.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "routing" in (pending.value.details() or "")


async def test_watch_streams_incident_changes_matching_its_filter(incidents: Any) -> None:
    stub = incidents.stub
    call = stub.WatchIncidents(api.WatchIncidentsRequest(service="chat-api"))
    events: asyncio.Queue[Any] = asyncio.Queue()

    async def read() -> None:
        async for response in call:
            await events.put(response.event)

    reader = asyncio.create_task(read())
    try:
        await asyncio.sleep(0.2)  # let the stream subscribe
        await report(stub, alert(service="billing"))
        [result] = (await report(stub, alert())).results
        await stub.AcknowledgeIncident(api.AcknowledgeIncidentRequest(incident_id=result.incident_id))

        created = await asyncio.wait_for(events.get(), timeout=5)
        updated = await asyncio.wait_for(events.get(), timeout=5)
    finally:
        call.cancel()
        reader.cancel()
    assert created.type == res.INCIDENT_EVENT_TYPE_CREATED and created.incident.service == "chat-api"
    assert updated.type == res.INCIDENT_EVENT_TYPE_UPDATED
    assert updated.incident.state == res.INCIDENT_STATE_ACKNOWLEDGED
    assert [e.kind for e in updated.timeline_entries] == [res.TIMELINE_ENTRY_KIND_STATE_CHANGED]
    assert updated.cursor and updated.cursor != created.cursor


async def test_stats_count_the_noise_funnel(incidents: Any) -> None:
    stub = incidents.stub
    for _ in range(4):
        await report(stub, alert())
    await report(stub, alert(labels={"env": "prod", "pod": "b"}))

    stats = (await stub.GetStats(api.GetStatsRequest())).stats

    assert stats.incidents_created == 1
    assert stats.alerts_deduplicated == 3
    assert stats.alerts_received == 5
