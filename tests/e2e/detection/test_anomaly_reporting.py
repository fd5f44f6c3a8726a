"""Detection with its peers: anomalous episodes reach the real storage service and a fake
incident-manager (a runtime server recording ReportAnomaly), once each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from detection_support import MINUTE_NS, detection, key, noisy, request, settings
from prometheus_client import REGISTRY

from sentinel.api.incident.v1 import incident_service_pb2, incident_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.runtime.pending import pending_rpcs
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.runtime.settings import ServiceSettings
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import channel_to, running

INCIDENT_SERVICE = incident_service_pb2.DESCRIPTOR.services_by_name["IncidentService"]
INCIDENTS = INCIDENT_SERVICE.full_name


@pending_rpcs(INCIDENT_SERVICE, "incident-manager is not built yet")
class PendingIncidents(incident_service_pb2_grpc.IncidentServiceServicer):
    """What an unbuilt incident-manager answers: UNIMPLEMENTED for every RPC."""


class RecordingIncidents(incident_service_pb2_grpc.IncidentServiceServicer):
    """Records ReportAnomaly calls; every other RPC answers UNIMPLEMENTED (the generated base)."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, incident_service_pb2.ReportAnomalyRequest]] = []

    async def ReportAnomaly(  # type: ignore[override]
        self, request: incident_service_pb2.ReportAnomalyRequest, context: Any
    ) -> incident_service_pb2.ReportAnomalyResponse:
        tenant = dict(context.invocation_metadata()).get("x-sentinel-tenant", "")
        self.reports.append((tenant, request))
        return incident_service_pb2.ReportAnomalyResponse()


def incident_manager(servicer: incident_service_pb2_grpc.IncidentServiceServicer) -> Server:
    registration = ServiceRegistration(
        INCIDENTS,
        lambda server: incident_service_pb2_grpc.add_IncidentServiceServicer_to_server(servicer, server),
    )
    return Server(name="fake-incident-manager", settings=ServiceSettings(port=0), services=[registration])


@pytest.fixture
async def storage_address(postgres_dsn: str, redis_url: str, redis_namespace: str) -> AsyncIterator[str]:
    storage_settings = StorageSettings(
        port=0, postgres_dsn=postgres_dsn, redis_url=redis_url, redis_namespace=redis_namespace
    )
    async with running(build_storage(storage_settings)) as address:
        yield address


def expected_episodes(is_anomaly: list[bool], gap_points: int) -> int:
    """Groups of anomalous points no more than gap_points apart (an independent reference)."""
    count, last = 0, None
    for i, flag in enumerate(is_anomaly):
        if flag:
            if last is None or i - last > gap_points:
                count += 1
            last = i
    return count


async def eventually(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_each_episode_is_stored_and_reported_once(storage_address: str) -> None:
    times, values = noisy(600, spikes=[200, 201, 202, 450])
    fake = RecordingIncidents()
    async with running(incident_manager(fake)) as im_address:
        peers = settings(storage_addr=storage_address, incident_manager_addr=im_address, episode_gap_s=300)
        async with detection(peers) as det, channel_to(storage_address) as storage_channel:
            responses = []
            for at in range(0, 600, 100):
                responses.append(
                    await det.stub.ScoreSamples(
                        request(
                            [key()],
                            [0] * 100,
                            times[at : at + 100],
                            values[at : at + 100],
                            report_anomalies=True,
                        ),
                        metadata=[("x-sentinel-tenant", "acme")],
                    )
                )
            is_anomaly = [flag for r in responses for flag in r.scores.is_anomaly]
            episodes = expected_episodes(is_anomaly, gap_points=5)
            storage = storage_service_pb2_grpc.StorageServiceStub(storage_channel)

            async def stored() -> list[Any]:
                page = await storage.ListAnomalies(
                    storage_service_pb2.ListAnomaliesRequest(), metadata=[("x-sentinel-tenant", "acme")]
                )
                return list(page.anomalies) if len(page.anomalies) >= episodes else []

            anomalies = await eventually(stored)
            await eventually(lambda: asyncio.sleep(0, len(fake.reports) >= episodes))
    assert episodes >= 2
    assert sum(r.reported_anomaly_count for r in responses) >= episodes
    assert len(anomalies) == episodes
    assert len(fake.reports) == episodes  # one report per episode, not per point
    assert {r.anomaly.anomaly_id for _, r in fake.reports} == {a.anomaly_id for a in anomalies}
    assert {tenant for tenant, _ in fake.reports} == {"acme"}
    first = next(a for a in anomalies if a.start_time.ToNanoseconds() == int(times[200]))
    assert first.end_time.ToNanoseconds() >= int(times[200])  # closed by later calm points
    assert first.point_count >= 1
    assert first.series.name == "llm.latency_ms"
    assert (first.end_time.ToNanoseconds() - first.start_time.ToNanoseconds()) // MINUTE_NS < 10


async def test_an_unimplemented_incident_manager_never_blocks_scoring(storage_address: str) -> None:
    times, values = noisy(300, spikes=[250])
    unimplemented = PendingIncidents()
    label = {"peer": "incident-manager", "outcome": "unimplemented"}
    before = REGISTRY.get_sample_value("sentinel_detection_anomaly_deliveries_total", label) or 0.0
    async with running(incident_manager(unimplemented)) as im_address:
        peers = settings(storage_addr=storage_address, incident_manager_addr=im_address)
        async with detection(peers) as det:
            response = await det.stub.ScoreSamples(
                request([key()], [0] * 300, times, values, report_anomalies=True)
            )

            async def counted() -> bool:
                now = REGISTRY.get_sample_value("sentinel_detection_anomaly_deliveries_total", label) or 0.0
                return now > before

            assert await eventually(counted)
    assert response.scores.is_anomaly[250]
    assert np.isfinite(np.array(response.scores.score)).all()


async def test_unreachable_peers_only_cost_a_log_line(unused_tcp_port: int) -> None:
    times, values = noisy(150, spikes=[120])
    gone = f"127.0.0.1:{unused_tcp_port}"
    async with detection(
        settings(storage_addr=gone, incident_manager_addr=gone, report_deadline_s=0.5)
    ) as det:
        response = await asyncio.wait_for(
            det.stub.ScoreSamples(request([key()], [0] * 150, times, values, report_anomalies=True)), 5
        )
    assert response.scores.is_anomaly[120]  # answered within 5 s: scoring did not wait for the peers
