"""StorageService RPCs of incident-manager's records: glue between gRPC and the use cases.

A mixin of `StorageServicer` (methods defined here count as implemented for @pending_rpcs).
"""

from __future__ import annotations

from typing import Any

import grpc

from sentinel.api.storage.v1 import storage_service_pb2 as pb
from sentinel.runtime.auth import current_tenant
from sentinel.storage.grpc import incident_convert as convert
from sentinel.storage.service_incidents import IncidentRecordsService

Context = grpc.aio.ServicerContext[Any, Any]


class IncidentRecordsRpcs:
    """Alerts, incidents, timelines, silences and policies."""

    _records: IncidentRecordsService

    async def UpsertAlert(self, request: pb.UpsertAlertRequest, context: Context) -> pb.UpsertAlertResponse:
        stored, created = await self._records.upsert_alert(
            tenant=current_tenant(),
            alert=convert.alert_record(request.alert),
            expected_version=request.expected_version,
        )
        return pb.UpsertAlertResponse(alert=convert.alert_message(stored), created=created)

    async def ApplyAlertChanges(
        self, request: pb.ApplyAlertChangesRequest, context: Context
    ) -> pb.ApplyAlertChangesResponse:
        results = await self._records.apply_alert_changes(
            tenant=current_tenant(), changes=convert.alert_changes(request)
        )
        return convert.apply_alert_changes_response(results)

    async def GetAlert(self, request: pb.GetAlertRequest, context: Context) -> pb.GetAlertResponse:
        stored = await self._records.get_alert(
            tenant=current_tenant(),
            alert_id=request.alert_id,
            fingerprint=request.fingerprint,
            allow_missing=request.allow_missing,
        )
        return pb.GetAlertResponse(alert=convert.alert_message(stored) if stored is not None else None)

    async def BatchGetAlerts(
        self, request: pb.BatchGetAlertsRequest, context: Context
    ) -> pb.BatchGetAlertsResponse:
        found = await self._records.get_alerts(tenant=current_tenant(), alert_ids=list(request.alert_ids))
        return pb.BatchGetAlertsResponse(alerts=[convert.alert_message(stored) for stored in found.values()])

    async def BatchGetGroupIncidents(
        self, request: pb.BatchGetGroupIncidentsRequest, context: Context
    ) -> pb.BatchGetGroupIncidentsResponse:
        groups = await self._records.group_incidents(
            tenant=current_tenant(), group_keys=list(request.group_keys)
        )
        return convert.group_incidents_response(groups)

    async def ListAlerts(self, request: pb.ListAlertsRequest, context: Context) -> pb.ListAlertsResponse:
        page = await self._records.list_alerts(tenant=current_tenant(), filter=convert.alert_filter(request))
        return convert.list_alerts_response(page)

    async def CreateIncident(
        self, request: pb.CreateIncidentRequest, context: Context
    ) -> pb.CreateIncidentResponse:
        stored = await self._records.create_incident(
            tenant=current_tenant(),
            incident=convert.incident_record(request.incident),
            timeline=convert.timeline_records(
                request.timeline_entries, "timeline_entries", incident_id=request.incident.incident_id
            ),
        )
        return pb.CreateIncidentResponse(incident=convert.incident_message(stored))

    async def UpdateIncident(
        self, request: pb.UpdateIncidentRequest, context: Context
    ) -> pb.UpdateIncidentResponse:
        stored = await self._records.update_incident(
            tenant=current_tenant(),
            incident=convert.incident_record(request.incident),
            expected_version=request.expected_version,
            timeline=convert.timeline_records(
                request.timeline_entries, "timeline_entries", incident_id=request.incident.incident_id
            ),
            request_id=request.request_id,
        )
        return pb.UpdateIncidentResponse(incident=convert.incident_message(stored))

    async def GetIncident(self, request: pb.GetIncidentRequest, context: Context) -> pb.GetIncidentResponse:
        stored = await self._records.get_incident(tenant=current_tenant(), incident_id=request.incident_id)
        return pb.GetIncidentResponse(incident=convert.incident_message(stored))

    async def ListIncidents(
        self, request: pb.ListIncidentsRequest, context: Context
    ) -> pb.ListIncidentsResponse:
        page = await self._records.list_incidents(
            tenant=current_tenant(), filter=convert.incident_filter(request)
        )
        return convert.list_incidents_response(page)

    async def GetIncidentStats(
        self, request: pb.GetIncidentStatsRequest, context: Context
    ) -> pb.GetIncidentStatsResponse:
        stats = await self._records.incident_stats(
            tenant=current_tenant(), request=convert.stats_request(request)
        )
        return convert.stats_response(stats)

    async def AppendTimelineEntries(
        self, request: pb.AppendTimelineEntriesRequest, context: Context
    ) -> pb.AppendTimelineEntriesResponse:
        appended, duplicates = await self._records.append_timeline(
            tenant=current_tenant(), entries=convert.timeline_records(request.entries, "entries")
        )
        return pb.AppendTimelineEntriesResponse(appended=appended, duplicates=duplicates)

    async def ListTimelineEntries(
        self, request: pb.ListTimelineEntriesRequest, context: Context
    ) -> pb.ListTimelineEntriesResponse:
        page = await self._records.list_timeline(
            tenant=current_tenant(), filter=convert.timeline_filter(request)
        )
        return convert.list_timeline_response(page)

    async def PutSilence(self, request: pb.PutSilenceRequest, context: Context) -> pb.PutSilenceResponse:
        stored, created = await self._records.put_silence(
            tenant=current_tenant(), silence=convert.silence_record(request.silence)
        )
        return pb.PutSilenceResponse(silence=convert.silence_message(stored), created=created)

    async def ListSilences(
        self, request: pb.ListSilencesRequest, context: Context
    ) -> pb.ListSilencesResponse:
        page = await self._records.list_silences(
            tenant=current_tenant(), filter=convert.silence_filter(request)
        )
        return convert.list_silences_response(page)

    async def DeleteSilence(
        self, request: pb.DeleteSilenceRequest, context: Context
    ) -> pb.DeleteSilenceResponse:
        await self._records.delete_silence(tenant=current_tenant(), silence_id=request.silence_id)
        return pb.DeleteSilenceResponse()

    async def PutPolicy(self, request: pb.PutPolicyRequest, context: Context) -> pb.PutPolicyResponse:
        stored, created = await self._records.put_policy(
            tenant=current_tenant(),
            policy=convert.policy_record(request.policy),
            expected_version=request.expected_version,
            request_id=request.request_id,
        )
        return pb.PutPolicyResponse(policy=convert.policy_message(stored), created=created)

    async def GetPolicy(self, request: pb.GetPolicyRequest, context: Context) -> pb.GetPolicyResponse:
        stored = await self._records.get_policy(
            tenant=current_tenant(), kind=convert.policy_kind(request.kind), policy_id=request.policy_id
        )
        return pb.GetPolicyResponse(policy=convert.policy_message(stored))

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        page = await self._records.list_policies(
            tenant=current_tenant(), filter=convert.policy_filter(request)
        )
        return convert.list_policies_response(page)

    async def DeletePolicy(
        self, request: pb.DeletePolicyRequest, context: Context
    ) -> pb.DeletePolicyResponse:
        await self._records.delete_policy(
            tenant=current_tenant(),
            kind=convert.policy_kind(request.kind),
            policy_id=request.policy_id,
            expected_version=request.expected_version,
        )
        return pb.DeletePolicyResponse()
