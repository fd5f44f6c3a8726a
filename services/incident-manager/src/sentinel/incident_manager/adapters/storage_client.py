"""IncidentStore over the storage service's gRPC API.

Every call carries the tenant (`peer_metadata`), retries UNAVAILABLE and RESOURCE_EXHAUSTED with
backoff and jitter within the deadline (every storage write is idempotent by its key), and turns
storage's statuses, with their `google.rpc.ErrorInfo` reason and metadata, into domain errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb
from sentinel.api.storage.v1 import storage_service_pb2_grpc
from sentinel.incident_manager.adapters.batching import Coalescer
from sentinel.incident_manager.domain.model import Alert, Incident, IncidentStats, Silence, TimelineEntry
from sentinel.incident_manager.grpc import convert
from sentinel.incident_manager.ports import (
    AlertQuery,
    AlertWrite,
    IncidentQuery,
    Page,
    SilenceQuery,
    TimelineQuery,
)
from sentinel.runtime.auth import peer_metadata
from sentinel.runtime.channels import call_with_retry
from sentinel.runtime.errors import (
    AlreadyExistsError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYetError,
    SentinelError,
    UnavailableError,
)

_RETRY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
_DETAILS_KEY = "grpc-status-details-bin"

R = TypeVar("R")


def error_info(exc: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    """Reason and metadata of the ErrorInfo a status carries ("", {} when none)."""
    for key, value in exc.trailing_metadata() or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info.reason, dict(info.metadata)
    return "", {}


def domain_error(exc: grpc.aio.AioRpcError, rpc: str) -> SentinelError:
    """The domain error for a storage status (after retries gave up)."""
    code = exc.code()
    details = exc.details() or code.name
    reason, metadata = error_info(exc)
    kwargs: dict[str, Any] = {"reason": reason or None, "metadata": metadata}
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFoundError(details, **kwargs)
    if code is grpc.StatusCode.ABORTED:
        return ConflictError(details, **{**kwargs, "reason": reason or "VERSION_MISMATCH"})
    if code is grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExistsError(details, **kwargs)
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPreconditionError(details, **kwargs)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        field = metadata.pop("field", "")
        problem = details.split(": ", 1)[1] if field and details.startswith(f"{field}: ") else details
        return InvalidArgumentError(field, problem, reason=reason or None, metadata=metadata)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return NotImplementedYetError(
            f"storage does not implement {rpc} yet ({details})", reason="STORAGE_NOT_IMPLEMENTED"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"storage did not answer {rpc} before the deadline; retry")
    if code in _RETRY:
        return UnavailableError(f"storage is unavailable ({code.name} on {rpc}); retry")
    return SentinelError(f"storage failed {rpc} ({code.name}): {details}", reason="STORAGE_ERROR")


class GrpcIncidentStore:
    """Alerts, incidents, timelines, silences and stats through `StorageService`."""

    def __init__(
        self, channel: grpc.aio.Channel, *, service_key: str | None, deadline_s: float = 10.0
    ) -> None:
        self._stub = storage_service_pb2_grpc.StorageServiceStub(channel)
        self._service_key = service_key
        self._deadline_s = deadline_s
        self._alerts: Coalescer[str, Alert] = Coalescer(self._get_alerts)
        self._groups: Coalescer[str, tuple[Incident | None, Incident | None]] = Coalescer(
            self._group_incidents
        )

    async def _call(self, rpc: str, request: Any, tenant: str) -> Any:
        method: Callable[..., Awaitable[Any]] = getattr(self._stub, rpc)
        metadata = peer_metadata(tenant, self._service_key)
        try:
            return await call_with_retry(
                lambda: method(request, metadata=metadata, timeout=self._deadline_s),
                deadline_s=self._deadline_s,
                retry_codes=_RETRY,
            )
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, rpc) from None

    async def get_alert(self, *, tenant: str, alert_id: str) -> Alert | None:
        # Concurrent lookups (first reports of many alerts) share one BatchGetAlerts call.
        return await self._alerts.get(tenant, alert_id)

    async def _get_alerts(self, tenant: str, alert_ids: Sequence[str]) -> dict[str, Alert]:
        request = pb.BatchGetAlertsRequest(alert_ids=alert_ids)
        response = await self._call("BatchGetAlerts", request, tenant)
        return {a.alert_id: convert.alert_from_proto(a) for a in response.alerts}

    async def group_incidents(
        self, *, tenant: str, group_key: str
    ) -> tuple[Incident | None, Incident | None]:
        found = await self._groups.get(tenant, group_key)
        return found if found is not None else (None, None)

    async def _group_incidents(
        self, tenant: str, group_keys: Sequence[str]
    ) -> dict[str, tuple[Incident | None, Incident | None]]:
        request = pb.BatchGetGroupIncidentsRequest(group_keys=group_keys)
        response = await self._call("BatchGetGroupIncidents", request, tenant)
        return {
            g.group_key: (
                convert.incident_from_proto(g.open_incident) if g.HasField("open_incident") else None,
                convert.incident_from_proto(g.last_resolved_incident)
                if g.HasField("last_resolved_incident")
                else None,
            )
            for g in response.groups
        }

    async def upsert_alert(self, *, tenant: str, alert: Alert, expected_version: int) -> Alert:
        request = pb.UpsertAlertRequest(
            alert=convert.alert_to_proto(alert), expected_version=expected_version
        )
        response = await self._call("UpsertAlert", request, tenant)
        return convert.alert_from_proto(response.alert)

    async def apply_alert_changes(
        self, *, tenant: str, writes: Sequence[AlertWrite]
    ) -> list[Alert | SentinelError]:
        request = pb.ApplyAlertChangesRequest(
            changes=[
                pb.AlertChange(
                    alert=convert.alert_to_proto(w.alert),
                    expected_version=w.expected_version,
                    timeline_entries=[convert.entry_to_proto(e) for e in w.entries],
                    new_incident=convert.incident_to_proto(w.new_incident) if w.new_incident else None,
                )
                for w in writes
            ]
        )
        response = await self._call("ApplyAlertChanges", request, tenant)
        if len(response.results) != len(writes):
            raise SentinelError(
                f"storage answered {len(response.results)} results for {len(writes)} alert changes",
                reason="STORAGE_ERROR",
            )
        outcomes: list[Alert | SentinelError] = []
        for write, result in zip(writes, response.results, strict=True):
            alert_id = write.alert.alert_id
            if result.status == pb.ALERT_CHANGE_STATUS_APPLIED:
                outcomes.append(replace(write.alert, version=result.version))
            elif result.status == pb.ALERT_CHANGE_STATUS_VERSION_MISMATCH:
                outcomes.append(
                    ConflictError(
                        f"alert {alert_id!r} is at version {result.version}, not {write.expected_version}; "
                        "re-read and retry",
                        reason="VERSION_MISMATCH",
                        metadata={"version": str(result.version)},
                    )
                )
            elif result.status == pb.ALERT_CHANGE_STATUS_ALERT_NOT_FOUND:
                outcomes.append(NotFoundError(f"no alert {alert_id!r}", reason="ALERT_NOT_FOUND"))
            elif result.status == pb.ALERT_CHANGE_STATUS_OPEN_INCIDENT_EXISTS:
                outcomes.append(
                    AlreadyExistsError(
                        f"incident {result.incident_id!r} is already open for this group key",
                        reason="OPEN_INCIDENT_EXISTS",
                        metadata={"incident_id": result.incident_id},
                    )
                )
            else:
                raise SentinelError(
                    f"storage answered alert change status {result.status}", reason="STORAGE_ERROR"
                )
        return outcomes

    async def list_alerts(self, *, tenant: str, query: AlertQuery) -> Page[Alert]:
        request = pb.ListAlertsRequest(
            incident_id=query.incident_id,
            fingerprint=query.fingerprint,
            group_key=query.group_key,
            statuses=[int(s) for s in query.statuses],  # type: ignore[misc]
            matchers=convert.matchers_to_proto(query.matchers),
            page_size=query.page_size,
            page_token=query.page_token,
        )
        _set_range(request, query.start_time, query.end_time)
        response = await self._call("ListAlerts", request, tenant)
        return Page([convert.alert_from_proto(a) for a in response.alerts], response.next_page_token)

    async def create_incident(
        self, *, tenant: str, incident: Incident, entries: Sequence[TimelineEntry]
    ) -> Incident:
        request = pb.CreateIncidentRequest(
            incident=convert.incident_to_proto(incident),
            timeline_entries=[convert.entry_to_proto(e) for e in entries],
        )
        try:
            response = await self._call("CreateIncident", request, tenant)
        except AlreadyExistsError as exists:
            if exists.reason != "INCIDENT_EXISTS":
                raise
            # A retry of a create that committed: the incident is ours.
            return await self.get_incident(tenant=tenant, incident_id=incident.incident_id)
        return convert.incident_from_proto(response.incident)

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: Incident,
        expected_version: int,
        entries: Sequence[TimelineEntry],
        request_id: str = "",
    ) -> Incident:
        request = pb.UpdateIncidentRequest(
            incident=convert.incident_to_proto(incident),
            expected_version=expected_version,
            timeline_entries=[convert.entry_to_proto(e) for e in entries],
            request_id=request_id,
        )
        response = await self._call("UpdateIncident", request, tenant)
        return convert.incident_from_proto(response.incident)

    async def get_incident(self, *, tenant: str, incident_id: str) -> Incident:
        response = await self._call("GetIncident", pb.GetIncidentRequest(incident_id=incident_id), tenant)
        return convert.incident_from_proto(response.incident)

    async def list_incidents(self, *, tenant: str, query: IncidentQuery) -> Page[Incident]:
        request = pb.ListIncidentsRequest(
            states=[int(s) for s in query.states],  # type: ignore[misc]
            severities=[int(s) for s in query.severities],  # type: ignore[misc]
            priorities=[int(p) for p in query.priorities],  # type: ignore[misc]
            service=query.service,
            model=query.model,
            group_key=query.group_key,
            matchers=convert.matchers_to_proto(query.matchers),
            query=query.text,
            assignee=query.assignee,
            page_size=query.page_size,
            page_token=query.page_token,
        )
        _set_range(request, query.start_time, query.end_time)
        response = await self._call("ListIncidents", request, tenant)
        return Page([convert.incident_from_proto(i) for i in response.incidents], response.next_page_token)

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineEntry]) -> None:
        if not entries:
            return
        request = pb.AppendTimelineEntriesRequest(entries=[convert.entry_to_proto(e) for e in entries])
        await self._call("AppendTimelineEntries", request, tenant)

    async def list_timeline(self, *, tenant: str, query: TimelineQuery) -> Page[TimelineEntry]:
        request = pb.ListTimelineEntriesRequest(
            incident_id=query.incident_id,
            kinds=[int(k) for k in query.kinds],  # type: ignore[misc]
            page_size=query.page_size,
            page_token=query.page_token,
        )
        _set_range(request, query.start_time, query.end_time)
        response = await self._call("ListTimelineEntries", request, tenant)
        return Page([convert.entry_from_proto(e) for e in response.entries], response.next_page_token)

    async def put_silence(self, *, tenant: str, silence: Silence) -> Silence:
        request = pb.PutSilenceRequest(silence=convert.silence_to_proto(silence))
        response = await self._call("PutSilence", request, tenant)
        return convert.silence_from_proto(response.silence)

    async def list_silences(self, *, tenant: str, query: SilenceQuery) -> Page[Silence]:
        request = pb.ListSilencesRequest(
            states=[int(s) for s in query.states],  # type: ignore[misc]
            page_size=query.page_size,
            page_token=query.page_token,
        )
        response = await self._call("ListSilences", request, tenant)
        return Page([convert.silence_from_proto(s) for s in response.silences], response.next_page_token)

    async def get_stats(
        self, *, tenant: str, start_time: datetime, end_time: datetime, service: str, model: str
    ) -> IncidentStats:
        request = pb.GetIncidentStatsRequest(service=service, model=model)
        _set_range(request, start_time, end_time)
        response = await self._call("GetIncidentStats", request, tenant)
        return convert.stats_from_proto(response.stats)


def _set_range(request: Any, start: datetime | None, end: datetime | None) -> None:
    if start is None and end is None:
        return
    time_range = common_pb2.TimeRange()
    if start is not None:
        time_range.start_time.FromDatetime(start)
    if end is not None:
        time_range.end_time.FromDatetime(end)
    request.time_range.CopyFrom(time_range)
