"""IncidentService servicer: glue between gRPC and the incident use cases (convert, await, convert)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.incident_manager.grpc import convert
from sentinel.incident_manager.service import IncidentService
from sentinel.runtime.auth import current_tenant
from sentinel.runtime.errors import InvalidArgumentError
from sentinel.runtime.pending import pending_rpcs

SERVICE = api.DESCRIPTOR.services_by_name["IncidentService"]

Context = Any  # grpc.aio.ServicerContext


@pending_rpcs(
    SERVICE,
    "routing, escalation, on-call schedules, notification channels and playbooks are not built yet "
    "(alerts, incidents, timelines and silences are)",
)
class IncidentServicer(incident_service_pb2_grpc.IncidentServiceServicer):
    """Answers IncidentService."""

    def __init__(self, service: IncidentService, *, heartbeat_s: float = 15.0) -> None:
        self._service = service
        self._heartbeat_s = heartbeat_s

    async def ReportAlerts(
        self, request: api.ReportAlertsRequest, context: Context
    ) -> api.ReportAlertsResponse:
        outcome = await self._service.report_alerts(
            tenant=current_tenant(), alerts=convert.alert_inputs_from_request(request)
        )
        return convert.report_response(outcome)

    async def ReportAnomaly(
        self, request: api.ReportAnomalyRequest, context: Context
    ) -> api.ReportAnomalyResponse:
        result = await self._service.report_anomaly(
            tenant=current_tenant(),
            anomaly=convert.anomaly_from_proto(request),
            dedup_key=request.dedup_key,
            labels=dict(request.labels),
        )
        return api.ReportAnomalyResponse(
            alert=convert.alert_to_proto(result.alert), outcome=convert.outcome_to_proto(result.outcome)
        )

    async def GetIncident(self, request: api.GetIncidentRequest, context: Context) -> api.GetIncidentResponse:
        incident = await self._service.get_incident(tenant=current_tenant(), incident_id=request.incident_id)
        return api.GetIncidentResponse(incident=convert.incident_to_proto(incident))

    async def ListIncidents(
        self, request: api.ListIncidentsRequest, context: Context
    ) -> api.ListIncidentsResponse:
        page = await self._service.list_incidents(
            tenant=current_tenant(), query=convert.incident_query_from_proto(request)
        )
        return api.ListIncidentsResponse(
            incidents=[convert.incident_to_proto(i) for i in page.items], next_page_token=page.next_page_token
        )

    async def ListAlerts(self, request: api.ListAlertsRequest, context: Context) -> api.ListAlertsResponse:
        page = await self._service.list_alerts(
            tenant=current_tenant(), query=convert.alert_query_from_proto(request)
        )
        return api.ListAlertsResponse(
            alerts=[convert.alert_to_proto(a) for a in page.items], next_page_token=page.next_page_token
        )

    async def AcknowledgeIncident(
        self, request: api.AcknowledgeIncidentRequest, context: Context
    ) -> api.AcknowledgeIncidentResponse:
        incident = await self._service.acknowledge(tenant=current_tenant(), **_change_args(request))
        return api.AcknowledgeIncidentResponse(incident=convert.incident_to_proto(incident))

    async def ResolveIncident(
        self, request: api.ResolveIncidentRequest, context: Context
    ) -> api.ResolveIncidentResponse:
        incident = await self._service.resolve(tenant=current_tenant(), **_change_args(request))
        return api.ResolveIncidentResponse(incident=convert.incident_to_proto(incident))

    async def ReopenIncident(
        self, request: api.ReopenIncidentRequest, context: Context
    ) -> api.ReopenIncidentResponse:
        incident = await self._service.reopen(tenant=current_tenant(), **_change_args(request))
        return api.ReopenIncidentResponse(incident=convert.incident_to_proto(incident))

    async def CloseIncident(
        self, request: api.CloseIncidentRequest, context: Context
    ) -> api.CloseIncidentResponse:
        incident = await self._service.close(tenant=current_tenant(), **_change_args(request))
        return api.CloseIncidentResponse(incident=convert.incident_to_proto(incident))

    async def AddNote(self, request: api.AddNoteRequest, context: Context) -> api.AddNoteResponse:
        entry = await self._service.add_note(
            tenant=current_tenant(),
            incident_id=request.incident_id,
            text=request.text,
            actor=request.actor,
            expected_version=request.expected_version,
            request_id=request.request_id,
        )
        return api.AddNoteResponse(entry=convert.entry_to_proto(entry))

    async def AssignIncident(
        self, request: api.AssignIncidentRequest, context: Context
    ) -> api.AssignIncidentResponse:
        incident = await self._service.assign(
            tenant=current_tenant(),
            incident_id=request.incident_id,
            assignees=list(request.assignees),
            actor=request.actor,
            reason=request.reason,
            expected_version=request.expected_version,
            request_id=request.request_id,
        )
        return api.AssignIncidentResponse(incident=convert.incident_to_proto(incident))

    async def ChangeSeverity(
        self, request: api.ChangeSeverityRequest, context: Context
    ) -> api.ChangeSeverityResponse:
        incident = await self._service.change_severity(
            tenant=current_tenant(),
            incident_id=request.incident_id,
            severity=request.severity,
            priority=request.priority,
            actor=request.actor,
            reason=request.reason,
            expected_version=request.expected_version,
            request_id=request.request_id,
        )
        return api.ChangeSeverityResponse(incident=convert.incident_to_proto(incident))

    async def ListTimeline(
        self, request: api.ListTimelineRequest, context: Context
    ) -> api.ListTimelineResponse:
        page = await self._service.list_timeline(
            tenant=current_tenant(), query=convert.timeline_query_from_proto(request)
        )
        return api.ListTimelineResponse(
            entries=[convert.entry_to_proto(e) for e in page.items], next_page_token=page.next_page_token
        )

    async def WatchIncidents(
        self, request: api.WatchIncidentsRequest, context: Context
    ) -> AsyncIterator[api.WatchIncidentsResponse]:
        changes = self._service.watch(
            tenant=current_tenant(),
            filter=convert.watch_filter_from_proto(request),
            resume_cursor=request.resume_cursor,
            heartbeat_s=self._heartbeat_s,
        )
        async for change in changes:
            yield convert.event_to_proto(change)

    async def GetStats(self, request: api.GetStatsRequest, context: Context) -> api.GetStatsResponse:
        start, end = convert.time_range(request, "time_range")
        stats = await self._service.get_stats(
            tenant=current_tenant(),
            start_time=start,
            end_time=end,
            service=request.service,
            model=request.model,
        )
        return api.GetStatsResponse(stats=convert.stats_to_proto(stats))

    async def CreateSilence(
        self, request: api.CreateSilenceRequest, context: Context
    ) -> api.CreateSilenceResponse:
        if not request.HasField("silence"):
            raise InvalidArgumentError("silence", "is required")
        draft = request.silence
        silence = await self._service.create_silence(
            tenant=current_tenant(),
            matchers=convert.matchers_from_proto(draft.matchers, "silence.matchers"),
            start_time=convert.from_ts(draft, "start_time", field="silence.start_time"),
            end_time=convert.from_ts(draft, "end_time", field="silence.end_time"),
            comment=draft.comment,
            maintenance=draft.maintenance,
            actor=request.actor,
            request_id=request.request_id,
        )
        return api.CreateSilenceResponse(
            silence=convert.silence_to_proto(silence, now=self._service.clock.now())
        )

    async def GetSilence(self, request: api.GetSilenceRequest, context: Context) -> api.GetSilenceResponse:
        silence = await self._service.get_silence(tenant=current_tenant(), silence_id=request.silence_id)
        return api.GetSilenceResponse(
            silence=convert.silence_to_proto(silence, now=self._service.clock.now())
        )

    async def ListSilences(
        self, request: api.ListSilencesRequest, context: Context
    ) -> api.ListSilencesResponse:
        page = await self._service.list_silences(
            tenant=current_tenant(),
            states=convert.silence_states_from_proto(request.states),
            alert_labels=dict(request.alert_labels),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        now = self._service.clock.now()
        return api.ListSilencesResponse(
            silences=[convert.silence_to_proto(s, now=now) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def ExpireSilence(
        self, request: api.ExpireSilenceRequest, context: Context
    ) -> api.ExpireSilenceResponse:
        silence = await self._service.expire_silence(
            tenant=current_tenant(), silence_id=request.silence_id, actor=request.actor, reason=request.reason
        )
        return api.ExpireSilenceResponse(
            silence=convert.silence_to_proto(silence, now=self._service.clock.now())
        )


def _change_args(request: Any) -> dict[str, Any]:
    """The common fields of the lifecycle requests (acknowledge, resolve, reopen, close)."""
    return {
        "incident_id": request.incident_id,
        "actor": request.actor,
        "reason": request.reason,
        "expected_version": request.expected_version,
        "request_id": request.request_id,
    }
