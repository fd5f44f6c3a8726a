"""WatchIncidents across two incident-manager replicas sharing storage and Redis (as the chart runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.incident_manager.app import build_server
from sentinel.testing.servers import channel_to

from .test_incident_flow import alert, report


@pytest.fixture
async def second_replica(incidents: Any) -> AsyncIterator[incident_service_pb2_grpc.IncidentServiceStub]:
    """Another incident manager on the same storage, PostgreSQL and Redis namespace."""
    server = build_server(incidents.manager_settings())
    await server.start()
    try:
        async with channel_to(server.address) as channel:
            yield incident_service_pb2_grpc.IncidentServiceStub(channel)
    finally:
        await server.stop(grace=1)


async def next_event(call: Any) -> res.IncidentEvent:
    """The next non-heartbeat event of a watch stream."""
    while True:
        response = await asyncio.wait_for(call.read(), timeout=5)
        assert response is not grpc.aio.EOF
        if response.event.type != res.INCIDENT_EVENT_TYPE_HEARTBEAT:
            return response.event


async def test_a_watcher_of_one_replica_sees_changes_made_through_the_other(
    incidents: Any, second_replica: incident_service_pb2_grpc.IncidentServiceStub
) -> None:
    call = second_replica.WatchIncidents(api.WatchIncidentsRequest())
    try:
        await asyncio.sleep(0.3)  # let the stream take its position
        [result] = (await report(incidents.stub, alert())).results
        await incidents.stub.AcknowledgeIncident(
            api.AcknowledgeIncidentRequest(incident_id=result.incident_id)
        )
        created, acknowledged = await next_event(call), await next_event(call)
    finally:
        call.cancel()
    assert created.type == res.INCIDENT_EVENT_TYPE_CREATED
    assert created.incident.incident_id == result.incident_id
    assert acknowledged.incident.state == res.INCIDENT_STATE_ACKNOWLEDGED

    # The cursor outlives the replica that served it: resuming on the other one replays the rest.
    resumed = incidents.stub.WatchIncidents(api.WatchIncidentsRequest(resume_cursor=created.cursor))
    try:
        replayed = await next_event(resumed)
    finally:
        resumed.cancel()
    assert replayed.cursor == acknowledged.cursor
    assert replayed.incident.state == res.INCIDENT_STATE_ACKNOWLEDGED
