"""Every accepted form goes in through ingestion and comes back out of storage."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import ingestion_service_pb2, telemetry_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2

NOW_NS = time.time_ns()


def ts(ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


async def series_values(pipeline: Any, name: str, tenant: str = "default", **labels: str) -> list[float]:
    matchers = [
        common_pb2.LabelMatcher(name="__name__", operator=common_pb2.MATCH_OPERATOR_EQUAL, value=name)
    ]
    matchers += [
        common_pb2.LabelMatcher(name=k, operator=common_pb2.MATCH_OPERATOR_EQUAL, value=v)
        for k, v in labels.items()
    ]
    request = storage_service_pb2.QuerySamplesRequest(
        matchers=resources_pb2.SeriesMatchers(matchers=matchers)
    )
    request.time_range.start_time.FromNanoseconds(NOW_NS - 3600 * 10**9)
    request.time_range.end_time.FromNanoseconds(NOW_NS + 3600 * 10**9)
    response = await pipeline.storage.QuerySamples(request, metadata=[("x-sentinel-tenant", tenant)])
    return [v for result in response.results for v in result.value]


async def test_nested_event_round_trips_into_derived_series(pipeline: Any) -> None:
    event = telemetry_pb2.TelemetryEvent(
        nested=telemetry_pb2.LlmCallEvent(
            event_id="evt-1", event_time=ts(NOW_NS), service_name="chat", model="gpt-4o", provider="openai",
            prompt=telemetry_pb2.LlmPrompt(tokens=120), response=telemetry_pb2.LlmResponse(tokens=30),
            latency_ms=850.0, ttft_ms=200.0, cost_usd=0.0042,
        )
    )  # fmt: skip
    response = await pipeline.ingestion.IngestEvents(
        ingestion_service_pb2.IngestEventsRequest(events=[event])
    )

    assert response.accepted_count == 1
    assert not response.rejected_rows
    assert response.derived_sample_count >= 8
    labels = {"service": "chat", "model": "gpt-4o"}
    assert await series_values(pipeline, "llm.latency_ms", **labels) == [850.0]
    assert await series_values(pipeline, "llm.ttft_ms", **labels) == [200.0]
    assert await series_values(pipeline, "llm.tokens.total", **labels) == [150.0]
    assert await series_values(pipeline, "llm.cost_usd", **labels) == [pytest.approx(0.0042)]
    assert await series_values(pipeline, "llm.requests", **labels) == [1.0]
    assert await series_values(pipeline, "llm.errors", **labels) == [0.0]


async def test_flat_event_round_trips_and_marks_errors(pipeline: Any) -> None:
    event = telemetry_pb2.TelemetryEvent(
        flat=telemetry_pb2.FlatLlmEvent(
            model_name="claude-3", prompt_tokens=10, completion_tokens=5, latency_ms=300.0, cost_usd=0.001,
            service_name="search", status="error", error="rate limited", event_time=ts(NOW_NS),
        )
    )  # fmt: skip
    response = await pipeline.ingestion.IngestEvents(
        ingestion_service_pb2.IngestEventsRequest(events=[event])
    )

    assert response.accepted_count == 1
    assert await series_values(pipeline, "llm.errors", service="search", model="claude-3") == [1.0]
    assert await series_values(pipeline, "llm.tokens.total", service="search", model="claude-3") == [15.0]


async def test_json_events_of_every_form_round_trip(pipeline: Any) -> None:
    forms = [
        {"service_name": "rag", "model": "llama-3", "latency_ms": 111.0, "prompt": {"tokens": 7},
         "response": {"tokens": 3, "finish_reason": "stop"}},
        {"model_name": "llama-3", "service_name": "rag", "latency_ms": 222.0, "prompt_tokens": 1},
        {"series": {"name": "queue.depth", "labels": {"queue": "a"}}, "value": 42.0},
    ]  # fmt: skip
    events = []
    for form in forms:
        struct = struct_pb2.Struct()
        struct.update(form)
        events.append(telemetry_pb2.TelemetryEvent(json=struct))
    response = await pipeline.ingestion.IngestEvents(ingestion_service_pb2.IngestEventsRequest(events=events))

    assert response.accepted_count == 3, response.rejected_rows
    assert sorted(await series_values(pipeline, "llm.latency_ms", service="rag", model="llama-3")) == [
        111.0,
        222.0,
    ]
    assert await series_values(pipeline, "queue.depth", queue="a") == [42.0]


async def test_otlp_spans_from_the_real_exporter_round_trip(pipeline: Any) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    exporter = OTLPSpanExporter(endpoint=pipeline.ingestion_address, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")

    def emit() -> None:
        start = time.time_ns()
        with tracer.start_as_current_span("chat gpt-4o-mini", start_time=start, end_on_exit=False) as span:
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 40)
            span.set_attribute("gen_ai.usage.output_tokens", 60)
            span.end(end_time=start + 1_250_000_000)
        with tracer.start_as_current_span("llm call", end_on_exit=False) as span:
            span.set_attribute("llm.model_name", "gpt-4o-mini")
            span.set_status(Status(StatusCode.ERROR, "timeout"))
            span.end()
        with tracer.start_as_current_span("db query"):  # not an LLM call: skipped
            pass
        provider.force_flush()
        provider.shutdown()

    # The exporter is synchronous; the servers share this event loop, so export from a thread.
    await asyncio.to_thread(emit)

    latencies = await series_values(pipeline, "llm.latency_ms", service="support-bot", model="gpt-4o-mini")
    assert 1250.0 in latencies
    assert await series_values(pipeline, "llm.tokens.total", service="support-bot", model="gpt-4o-mini") == [
        100.0
    ]
    assert sorted(
        await series_values(pipeline, "llm.errors", service="support-bot", model="gpt-4o-mini")
    ) == [0, 1]


async def test_columnar_samples_round_trip_exactly(pipeline: Any) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(100, 15, size=1000)
    times = NOW_NS - np.arange(1000, dtype=np.int64)[::-1] * 1_000_000_000
    batch = common_pb2.SampleBatch(
        batch_id="columnar-1",
        series=[common_pb2.SeriesKey(name="gpu.util", labels={"node": "n1"}),
                common_pb2.SeriesKey(name="gpu.util", labels={"node": "n2"})],
        series_index=(np.arange(1000) % 2).tolist(),
        time_unix_nano=times.tolist(),
        value=values.tolist(),
    )  # fmt: skip
    response = await pipeline.ingestion.WriteSamples(ingestion_service_pb2.WriteSamplesRequest(batch=batch))

    assert response.accepted_count == 1000
    assert await series_values(pipeline, "gpu.util", node="n1") == values[0::2].tolist()
    assert await series_values(pipeline, "gpu.util", node="n2") == values[1::2].tolist()


async def test_client_streams_of_events_and_samples_are_each_acknowledged(pipeline: Any) -> None:
    async def event_batches() -> Any:
        for i in range(3):
            yield ingestion_service_pb2.StreamEventsRequest(
                batch_id=f"stream-ev-{i}",
                events=[telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent(
                    model_name="m", service_name="s", latency_ms=float(i), event_time=ts(NOW_NS + i)))],
            )  # fmt: skip

    async def sample_batches() -> Any:
        for i in range(4):
            yield ingestion_service_pb2.StreamSamplesRequest(
                batch=common_pb2.SampleBatch(
                    batch_id=f"stream-s-{i}", series=[common_pb2.SeriesKey(name="stream.metric")],
                    series_index=[0, 0], time_unix_nano=[NOW_NS + 2 * i, NOW_NS + 2 * i + 1],
                    value=[i, i + 0.5],
                )
            )  # fmt: skip

    events = await pipeline.ingestion.StreamEvents(event_batches())
    samples = await pipeline.ingestion.StreamSamples(sample_batches())

    assert [b.batch_id for b in events.batches] == ["stream-ev-0", "stream-ev-1", "stream-ev-2"]
    assert events.accepted_count == 3
    assert samples.accepted_count == 8
    assert sorted(await series_values(pipeline, "llm.latency_ms", service="s", model="m")) == [0.0, 1.0, 2.0]
    assert len(await series_values(pipeline, "stream.metric")) == 8


async def test_same_batch_sent_three_times_is_stored_once(pipeline: Any) -> None:
    batch = common_pb2.SampleBatch(
        batch_id="retry-me", series=[common_pb2.SeriesKey(name="idem.metric")],
        series_index=[0, 0, 0], time_unix_nano=[NOW_NS, NOW_NS + 1, NOW_NS + 2], value=[1, 2, 3],
    )  # fmt: skip
    responses = [
        await pipeline.ingestion.WriteSamples(ingestion_service_pb2.WriteSamplesRequest(batch=batch))
        for _ in range(3)
    ]

    assert [r.duplicate for r in responses] == [False, True, True]
    assert await series_values(pipeline, "idem.metric") == [1.0, 2.0, 3.0]


async def test_event_batches_without_an_id_are_deduplicated_by_content(pipeline: Any) -> None:
    request = ingestion_service_pb2.IngestEventsRequest(
        events=[
            telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent(model_name="m2", latency_ms=5.0))
        ]
    )
    first = await pipeline.ingestion.IngestEvents(request)
    again = await pipeline.ingestion.IngestEvents(request)

    assert first.batch_id == again.batch_id
    assert (first.duplicate, again.duplicate) == (False, True)
    assert await series_values(pipeline, "llm.latency_ms", service="unknown", model="m2") == [5.0]


async def test_tenant_a_cannot_read_tenant_b_series(pipeline: Any) -> None:
    batch = common_pb2.SampleBatch(
        batch_id="tenant-b-1", series=[common_pb2.SeriesKey(name="secret.metric")],
        series_index=[0], time_unix_nano=[NOW_NS], value=[7.0],
    )  # fmt: skip
    await pipeline.ingestion.WriteSamples(
        ingestion_service_pb2.WriteSamplesRequest(batch=batch), metadata=[("x-sentinel-tenant", "tenant-b")]
    )

    assert await series_values(pipeline, "secret.metric", tenant="tenant-b") == [7.0]
    assert await series_values(pipeline, "secret.metric", tenant="tenant-a") == []
    listed = await pipeline.storage.ListSeries(
        storage_service_pb2.ListSeriesRequest(), metadata=[("x-sentinel-tenant", "tenant-a")]
    )
    assert all(info.series.name != "secret.metric" for info in listed.series)


async def test_wrong_type_payload_is_invalid_argument(pipeline: Any) -> None:
    call = pipeline.channel.unary_unary("/sentinel.api.ingestion.v1.IngestionService/WriteSamples")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(b"\xff\xff\xff garbage")
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
