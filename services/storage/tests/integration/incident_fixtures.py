"""Builders of incident-manager records and a client that acts for one tenant."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb
from sentinel.api.storage.v1 import storage_service_pb2_grpc

from .conftest import DAY0_NS, SECOND_NS, error_info, metadata, timestamp

T0 = DAY0_NS
MINUTE = 60 * SECOND_NS
HOUR = 60 * MINUTE

TRIGGERED = incident_pb2.INCIDENT_STATE_TRIGGERED
ACKNOWLEDGED = incident_pb2.INCIDENT_STATE_ACKNOWLEDGED
RESOLVED = incident_pb2.INCIDENT_STATE_RESOLVED
CLOSED = incident_pb2.INCIDENT_STATE_CLOSED
NOTE = incident_pb2.TIMELINE_ENTRY_KIND_NOTE_ADDED


def alert(alert_id: str, *, seen: int = T0, **fields: Any) -> incident_pb2.Alert:
    values: dict[str, Any] = {
        "fingerprint": f"v1:{alert_id}",
        "title": f"alert {alert_id}",
        "service": "chat",
        "model": "gpt-4o",
        "severity": common_pb2.SEVERITY_HIGH,
        "status": incident_pb2.ALERT_STATUS_FIRING,
        "labels": {"service": "chat", "env": "prod"},
        "annotations": {"runbook_url": "https://runbooks.example/x"},
        "first_seen_time": timestamp(seen),
        "last_seen_time": timestamp(seen),
        **fields,
    }
    return incident_pb2.Alert(alert_id=alert_id, **values)


def incident(
    incident_id: str, *, group_key: str = "", state: int = TRIGGERED, created: int = T0, **fields: Any
) -> incident_pb2.Incident:
    values: dict[str, Any] = {
        "title": f"Incident {incident_id}",
        "description": "latency is up",
        "severity": common_pb2.SEVERITY_HIGH,
        "priority": incident_pb2.PRIORITY_P1,
        "incident_type": "latency_spike",
        "service": "chat",
        "model": "gpt-4o",
        "labels": {"service": "chat", "env": "prod"},
        "alert_count": 1,
        "alert_fingerprints": [f"v1:{incident_id}"],
        "create_time": timestamp(created),
        "update_time": timestamp(created),
        **fields,
    }
    return incident_pb2.Incident(
        incident_id=incident_id, group_key=group_key or f"group-{incident_id}", state=state, **values
    )


def entry(
    entry_id: str, incident_id: str = "", *, at: int = T0, kind: int = NOTE, **fields: Any
) -> incident_pb2.TimelineEntry:
    return incident_pb2.TimelineEntry(
        entry_id=entry_id,
        incident_id=incident_id,
        event_time=timestamp(at),
        kind=kind,
        actor="user:alice@example.com",
        message=f"entry {entry_id}",
        **fields,
    )


def state_change(entry_id: str, incident_id: str, at: int, to: int) -> incident_pb2.TimelineEntry:
    return entry(
        entry_id,
        incident_id,
        at=at,
        kind=incident_pb2.TIMELINE_ENTRY_KIND_STATE_CHANGED,
        to_value=incident_pb2.IncidentState.Name(to),  # type: ignore[arg-type]
    )


def silence(silence_id: str, start: int | None, end: int, **fields: Any) -> incident_pb2.Silence:
    values: dict[str, Any] = {
        "matchers": [
            common_pb2.LabelMatcher(name="service", operator=common_pb2.MATCH_OPERATOR_EQUAL, value="chat")
        ],
        "created_by": "user:alice@example.com",
        "comment": "deploy",
        **fields,
    }
    message = incident_pb2.Silence(silence_id=silence_id, end_time=timestamp(end), **values)
    if start is not None:
        message.start_time.CopyFrom(timestamp(start))
    return message


async def failure(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def fails_with(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    error = await failure(call)
    assert error.code() is code, error.details()
    assert error_info(error).reason == reason
    return error


class Records:
    """The record RPCs of a storage service, on behalf of one tenant."""

    def __init__(self, stub: storage_service_pb2_grpc.StorageServiceStub, tenant: str = "acme") -> None:
        self.stub = stub
        self.tenant = tenant

    def as_tenant(self, tenant: str) -> Records:
        return Records(self.stub, tenant)

    def call(self, rpc: str, request: Any) -> Any:
        return getattr(self.stub, rpc)(request, metadata=metadata(self.tenant))

    def upsert(self, message: incident_pb2.Alert, expected_version: int = 0) -> Any:
        return self.call(
            "UpsertAlert", pb.UpsertAlertRequest(alert=message, expected_version=expected_version)
        )

    def create(self, message: incident_pb2.Incident, *entries: incident_pb2.TimelineEntry) -> Any:
        return self.call(
            "CreateIncident", pb.CreateIncidentRequest(incident=message, timeline_entries=entries)
        )

    def update(
        self,
        message: incident_pb2.Incident,
        expected_version: int,
        *entries: incident_pb2.TimelineEntry,
        request_id: str = "",
    ) -> Any:
        return self.call(
            "UpdateIncident",
            pb.UpdateIncidentRequest(
                incident=message,
                expected_version=expected_version,
                timeline_entries=entries,
                request_id=request_id,
            ),
        )

    async def get(self, incident_id: str) -> incident_pb2.Incident:
        response = await self.call("GetIncident", pb.GetIncidentRequest(incident_id=incident_id))
        return response.incident  # type: ignore[no-any-return]

    def append(self, *entries: incident_pb2.TimelineEntry) -> Any:
        return self.call("AppendTimelineEntries", pb.AppendTimelineEntriesRequest(entries=entries))

    async def every(self, rpc: str, request: Any, items: str) -> list[Any]:
        """All pages of a List RPC, concatenated; asserts that pagination terminates."""
        out: list[Any] = []
        for _ in range(10_000):
            page = await self.call(rpc, request)
            out.extend(getattr(page, items))
            if not page.next_page_token:
                return out
            request.page_token = page.next_page_token
        raise AssertionError("pagination did not end")

    async def incidents(self, **fields: Any) -> list[str]:
        found = await self.every("ListIncidents", pb.ListIncidentsRequest(**fields), "incidents")
        return [i.incident_id for i in found]

    async def alerts(self, **fields: Any) -> list[str]:
        found = await self.every("ListAlerts", pb.ListAlertsRequest(**fields), "alerts")
        return [a.alert_id for a in found]

    async def timeline(self, incident_id: str, **fields: Any) -> list[incident_pb2.TimelineEntry]:
        request = pb.ListTimelineEntriesRequest(incident_id=incident_id, **fields)
        return await self.every("ListTimelineEntries", request, "entries")
