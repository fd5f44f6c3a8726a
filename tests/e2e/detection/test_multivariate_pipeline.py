"""LLM calls through ingestion: a joint degradation of one (service, model) (latency, TTFT and
errors all moderately worse) is stored by storage as an `llm.multivariate` anomaly."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from google.protobuf import timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, telemetry_pb2
from sentinel.api.storage.v1 import storage_service_pb2

from .conftest import Pipeline

TENANT = [("x-sentinel-tenant", "acme")]
MINUTE_NS = 60 * 1_000_000_000
GROUPS = 6
CALLS = 20


def ts(unix_nano: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(unix_nano)
    return stamp


def calls(
    rng: np.random.Generator, start_ns: int, minute: int, degraded: bool
) -> list[telemetry_pb2.TelemetryEvent]:
    events = []
    for c in range(CALLS):
        for g in range(GROUPS):
            bad = degraded and g == 0
            base = 400.0 * (g + 1)
            events.append(
                telemetry_pb2.TelemetryEvent(
                    flat=telemetry_pb2.FlatLlmEvent(
                        model_name="gpt-4o",
                        service_name=f"svc{g}",
                        latency_ms=base * (1.3 if bad else 1.0) * rng.lognormal(0, 0.2),
                        ttft_ms=base / 4 * (1.3 if bad else 1.0) * rng.lognormal(0, 0.2),
                        total_tokens=int(500 * rng.lognormal(0, 0.2)),
                        cost_usd=0.001 * rng.lognormal(0, 0.2),
                        status="error" if rng.random() < (0.15 if bad else 0.02) else "ok",
                        event_time=ts(start_ns + minute * MINUTE_NS + c * (MINUTE_NS // CALLS)),
                    )
                )
            )
    return events


async def test_a_joint_degradation_sent_through_ingestion_is_stored_as_a_multivariate_anomaly(
    pipeline: Pipeline,
) -> None:
    rng = np.random.default_rng(5)
    start = (time.time_ns() - 80 * MINUTE_NS) // MINUTE_NS * MINUTE_NS
    for at in range(0, 75, 5):
        events = [e for m in range(at, at + 5) for e in calls(rng, start, m, 62 <= m < 65)]
        response = await pipeline.ingestion.IngestEvents(
            ingestion_service_pb2.IngestEventsRequest(events=events), metadata=TENANT
        )
        assert response.accepted_count == len(events)

    async def multivariate() -> list[common_pb2.Anomaly]:
        page = await pipeline.storage.ListAnomalies(
            storage_service_pb2.ListAnomaliesRequest(page_size=1000), metadata=TENANT
        )
        return [a for a in page.anomalies if a.series.name == "llm.multivariate"]

    deadline = time.monotonic() + 30
    found = await multivariate()
    while not found and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await multivariate()
    on_svc0 = [a for a in found if a.series.labels["service"] == "svc0"]
    assert len(on_svc0) == 1, [a.explanation for a in found]
    anomaly = on_svc0[0]
    assert start + 62 * MINUTE_NS <= anomaly.start_time.ToNanoseconds() < start + 65 * MINUTE_NS
    assert anomaly.score >= 0.6
    assert [c.detector for c in anomaly.contributions] == ["iforest", "ecod", "copod", "hbos"]
