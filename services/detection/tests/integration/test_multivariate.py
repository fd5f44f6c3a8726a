"""The multivariate detectors through the real service: LLM calls in over ScoreSamples, a joint
degradation out as an `llm.multivariate` anomaly to (fake, recording) storage and incident-manager
gRPC peers; ListDetectors names them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import numpy as np
import pytest
from detection_support import MINUTE_NS, T0_NS, detection, settings
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2
from sentinel.api.detection.v1 import detection_service_pb2 as pb
from sentinel.api.incident.v1 import incident_service_pb2, incident_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2, storage_service_pb2_grpc
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.runtime.settings import ServiceSettings
from sentinel.testing.servers import running

METRICS = ("llm.requests", "llm.errors", "llm.latency_ms", "llm.ttft_ms", "llm.tokens.total", "llm.cost_usd")


class RecordingStorage(storage_service_pb2_grpc.StorageServiceServicer):
    def __init__(self) -> None:
        self.written: list[common_pb2.Anomaly] = []

    async def WriteAnomalies(  # type: ignore[override]
        self, request: storage_service_pb2.WriteAnomaliesRequest, context: Any
    ) -> storage_service_pb2.WriteAnomaliesResponse:
        self.written.extend(request.anomalies)
        return storage_service_pb2.WriteAnomaliesResponse(inserted=len(request.anomalies))


class RecordingIncidents(incident_service_pb2_grpc.IncidentServiceServicer):
    def __init__(self) -> None:
        self.reports: list[tuple[str, common_pb2.Anomaly]] = []

    async def ReportAnomaly(  # type: ignore[override]
        self, request: incident_service_pb2.ReportAnomalyRequest, context: Any
    ) -> incident_service_pb2.ReportAnomalyResponse:
        tenant = dict(context.invocation_metadata()).get("x-sentinel-tenant", "")
        self.reports.append((tenant, request.anomaly))
        return incident_service_pb2.ReportAnomalyResponse()


def peers(storage: RecordingStorage, incidents: RecordingIncidents) -> Server:
    return Server(
        name="fake-peers",
        settings=ServiceSettings(port=0),
        services=[
            ServiceRegistration(
                "sentinel.api.storage.v1.StorageService",
                lambda s: storage_service_pb2_grpc.add_StorageServiceServicer_to_server(storage, s),
            ),
            ServiceRegistration(
                "sentinel.api.incident.v1.IncidentService",
                lambda s: incident_service_pb2_grpc.add_IncidentServiceServicer_to_server(incidents, s),
            ),
        ],
    )


def minute_of_calls(
    rng: np.random.Generator, minute: int, degraded: set[int], n_groups: int = 6, calls: int = 20
) -> pb.ScoreSamplesRequest:
    """One minute of LLM calls of every group; groups in `degraded` are moderately worse on
    latency, TTFT and errors at once."""
    series = [
        common_pb2.SeriesKey(name=m, labels={"service": f"svc{g}", "model": "gpt-4o"})
        for g in range(n_groups)
        for m in METRICS
    ]
    index: list[int] = []
    times: list[int] = []
    values: list[float] = []
    for g in range(n_groups):
        bad = g in degraded
        base = 400.0 * (g + 1)
        for c in range(calls):
            t = T0_NS + minute * MINUTE_NS + c * (MINUTE_NS // calls)
            call = (
                1.0,
                float(rng.random() < (0.15 if bad else 0.02)),
                base * (1.3 if bad else 1.0) * rng.lognormal(0, 0.2),
                base / 4 * (1.3 if bad else 1.0) * rng.lognormal(0, 0.2),
                500.0 * rng.lognormal(0, 0.2),
                0.001 * rng.lognormal(0, 0.2),
            )
            for m, v in enumerate(call):
                index.append(g * len(METRICS) + m)
                times.append(t)
                values.append(v)
    return pb.ScoreSamplesRequest(
        batch=common_pb2.SampleBatch(series=series, series_index=index, time_unix_nano=times, value=values)
    )


async def eventually(check: Any, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_a_joint_degradation_is_published_as_one_multivariate_anomaly() -> None:
    storage, incidents = RecordingStorage(), RecordingIncidents()
    rng = np.random.default_rng(5)
    async with running(peers(storage, incidents)) as address:
        cfg = settings(
            storage_addr=address, incident_manager_addr=address, multivariate_enabled=True, max_series=64
        )
        async with detection(cfg) as det:
            tenant = [("x-sentinel-tenant", "acme")]
            for minute in range(75):
                degraded = {0} if 62 <= minute < 65 else set()
                await det.stub.ScoreSamples(minute_of_calls(rng, minute, degraded), metadata=tenant)

            def reported() -> bool:
                return any(a.series.name == "llm.multivariate" for _, a in incidents.reports)

            assert await eventually(reported)
            await asyncio.sleep(0.3)  # any further (wrong) report would have arrived by now
            group = common_pb2.SeriesKey(
                name="llm.multivariate", labels={"service": "svc0", "model": "gpt-4o"}
            )
            state = await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=group), metadata=tenant)
            at_degradation = timestamp_pb2.Timestamp()
            at_degradation.FromNanoseconds(T0_NS + 63 * MINUTE_NS)
            explained = await det.stub.ExplainScore(
                pb.ExplainScoreRequest(series=group, sample_time=at_degradation), metadata=tenant
            )
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=group))  # other tenant
    multivariate = [(t, a) for t, a in incidents.reports if a.series.name == "llm.multivariate"]
    degraded = [(t, a) for t, a in multivariate if a.series.labels["service"] == "svc0"]
    assert len(degraded) == 1, [a.explanation for _, a in multivariate]  # one episode, not per bucket
    tenant, anomaly = degraded[0]
    assert tenant == "acme"
    assert dict(anomaly.series.labels) == {"service": "svc0", "model": "gpt-4o"}
    assert T0_NS + 62 * MINUTE_NS <= anomaly.start_time.ToNanoseconds() < T0_NS + 65 * MINUTE_NS
    assert anomaly.score >= 0.6
    assert [c.detector for c in anomaly.contributions] == ["iforest", "ecod", "copod", "hbos"]
    assert anomaly.anomaly_type in (
        common_pb2.ANOMALY_TYPE_LATENCY_SPIKE,
        common_pb2.ANOMALY_TYPE_ERROR_RATE_INCREASE,
    )
    assert "latency_ms" in anomaly.explanation or "error_rate" in anomaly.explanation
    assert anomaly.anomaly_id in {a.anomaly_id for a in storage.written}
    assert state.sample_count >= 24 and not state.warming_up
    assert [d.detector for d in state.detectors] == ["iforest", "ecod", "copod", "hbos", "features"]
    assert {"latency_ms", "latency_ms_baseline", "latency_ms_z"} <= set(state.detectors[-1].values)
    assert explained.is_anomaly and explained.score >= 0.6
    assert explained.sample_time.ToNanoseconds() <= T0_NS + 63 * MINUTE_NS
    assert {c.detector for c in explained.contributions} == {"iforest", "ecod", "copod", "hbos"}
    assert "llm.multivariate" in explained.explanation
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_detectors_names_the_multivariate_detectors_and_their_parameters() -> None:
    async with detection(settings(multivariate_enabled=True)) as det:
        multivariate = await det.stub.ListDetectors(
            pb.ListDetectorsRequest(kind=detection_pb2.DETECTOR_KIND_MULTIVARIATE)
        )
        everything = await det.stub.ListDetectors(pb.ListDetectorsRequest())
    assert [d.name for d in multivariate.detectors] == ["iforest", "ecod", "copod", "hbos"]
    iforest = multivariate.detectors[0]
    assert {"iforest_trees", "bucket_s", "history"} <= {p.name for p in iforest.parameters}
    assert iforest.threshold == 0.6
    assert "multivariate_ensemble" in {d.name for d in everything.detectors}


async def test_turned_off_the_service_lists_no_multivariate_detector() -> None:
    async with detection(settings(multivariate_enabled=False)) as det:
        response = await det.stub.ListDetectors(
            pb.ListDetectorsRequest(kind=detection_pb2.DETECTOR_KIND_MULTIVARIATE)
        )
    assert list(response.detectors) == []


async def test_a_restarted_replica_resumes_multivariate_scoring_from_its_redis_checkpoint(
    redis_url: str, redis_namespace: str
) -> None:
    storage, incidents = RecordingStorage(), RecordingIncidents()
    rng = np.random.default_rng(5)
    tenant = [("x-sentinel-tenant", "acme")]
    async with running(peers(storage, incidents)) as address:
        cfg = settings(
            storage_addr=address,
            incident_manager_addr=address,
            multivariate_enabled=True,
            redis_url=redis_url,
            redis_namespace=redis_namespace,
        )
        async with detection(cfg) as first:
            for minute in range(60):
                await first.stub.ScoreSamples(minute_of_calls(rng, minute, set()), metadata=tenant)
        # A new process: without the checkpoint it would need 24 buckets per group and 128 in all
        # before scoring anything.
        async with detection(cfg) as second:
            for minute in range(60, 66):
                degraded = {0} if 61 <= minute < 64 else set()
                await second.stub.ScoreSamples(minute_of_calls(rng, minute, degraded), metadata=tenant)

            def reported() -> bool:
                return any(a.series.name == "llm.multivariate" for _, a in incidents.reports)

            assert await eventually(reported)
    (anomaly,) = [a for _, a in incidents.reports if a.series.name == "llm.multivariate"]
    assert dict(anomaly.series.labels) == {"service": "svc0", "model": "gpt-4o"}
