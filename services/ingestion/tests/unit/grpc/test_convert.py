from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2 as otel_common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.ingestion.v1 import telemetry_pb2
from sentinel.ingestion.domain.derive import ColumnarSamples
from sentinel.ingestion.domain.model import Limits, LlmEvent, RawLlmEvent, RawSample, RowError, RowRejected
from sentinel.ingestion.domain.validate import normalise_event, normalise_sample
from sentinel.ingestion.grpc.convert import (
    batch_from_columns,
    columns_from_batch,
    raw_events_from_otlp,
    raw_events_from_proto,
    row_errors_to_proto,
    struct_to_dict,
)

NOW_NS = 1_767_225_600 * 10**9
LIMITS = Limits()


def normalise(raw: RawLlmEvent | RawSample | RowRejected) -> LlmEvent:
    assert isinstance(raw, RawLlmEvent), raw
    return normalise_event(raw, now_ns=NOW_NS, limits=LIMITS, id_factory=lambda: "generated")


def stamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


# --------------------------------------------------------------------------------------------
# TelemetryEvent
# --------------------------------------------------------------------------------------------


def test_nested_proto_event_normalises() -> None:
    event = telemetry_pb2.TelemetryEvent(
        nested=telemetry_pb2.LlmCallEvent(
            event_id="e1",
            event_time=stamp(NOW_NS - 1_500_000_001),
            service_name="chat",
            model="gpt-4o",
            provider="openai",
            prompt=telemetry_pb2.LlmPrompt(tokens=10, text="hi"),
            response=telemetry_pb2.LlmResponse(tokens=0, finish_reason="stop"),
            latency_ms=0.0,
            metadata={"env": "prod"},
            errors=[telemetry_pb2.LlmError(type="RateLimitError", message="slow down", code="429")],
        )
    )

    [raw] = raw_events_from_proto([event])

    assert normalise(raw) == LlmEvent(
        event_id="e1",
        time_ns=NOW_NS - 1_500_000_001,
        service="chat",
        model="gpt-4o",
        provider="openai",
        prompt_tokens=10,
        completion_tokens=0,  # set to 0 is not absent
        total_tokens=10,
        latency_ms=0.0,
        is_error=True,
        error_type="RateLimitError",
        error_message="slow down",
        finish_reason="stop",
        metadata={"env": "prod"},
        source="nested",
    )


def test_nested_proto_absent_optionals_stay_unknown() -> None:
    [raw] = raw_events_from_proto(
        [telemetry_pb2.TelemetryEvent(nested=telemetry_pb2.LlmCallEvent(model="m"))]
    )

    event = normalise(raw)
    assert (
        event.prompt_tokens,
        event.completion_tokens,
        event.latency_ms,
        event.ttft_ms,
        event.cost_usd,
    ) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert (event.event_id, event.time_ns, event.service, event.is_error) == (
        "generated",
        NOW_NS,
        "unknown",
        False,
    )


def test_flat_proto_event_normalises() -> None:
    event = telemetry_pb2.TelemetryEvent(
        flat=telemetry_pb2.FlatLlmEvent(
            model_name="llama",
            prompt_tokens=3,
            completion_tokens=4,
            latency_ms=20.0,
            ttft_ms=5.0,
            cost_usd=0.001,
            user_id="u",
            session_id="s",
            request_id="r1",
            status="ok",
            error="overloaded",
            service_name="svc",
            provider="meta",
            event_time=stamp(NOW_NS),
            metadata={"k": "v"},
        )
    )

    [raw] = raw_events_from_proto([event])

    assert normalise(raw) == LlmEvent(
        event_id="r1",
        time_ns=NOW_NS,
        service="svc",
        model="llama",
        provider="meta",
        prompt_tokens=3,
        completion_tokens=4,
        total_tokens=7,
        latency_ms=20.0,
        ttft_ms=5.0,
        cost_usd=0.001,
        is_error=True,  # an error message wins over status "ok"
        error_message="overloaded",
        status="ok",
        user_id="u",
        session_id="s",
        request_id="r1",
        metadata={"k": "v"},
        source="flat",
    )


def test_sample_proto_event_normalises() -> None:
    event = telemetry_pb2.TelemetryEvent(
        sample=telemetry_pb2.MetricSample(
            series=common_pb2.SeriesKey(name="queue.depth", labels={"q": "a"}),
            sample_time=stamp(NOW_NS - 1),
            value=2.5,
        )
    )

    [raw] = raw_events_from_proto([event])

    assert isinstance(raw, RawSample)
    assert normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS) == (
        "queue.depth",
        (("q", "a"),),
        NOW_NS - 1,
        2.5,
    )


def test_json_struct_events_go_through_form_detection() -> None:
    nested, flat, sample, bad = (struct_pb2.Struct() for _ in range(4))
    nested.update(
        {
            "model": "m",
            "prompt": {"tokens": 5},
            "response": {"tokens": 6},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    flat.update({"model_name": "m", "prompt_tokens": 1, "completion_tokens": 2, "status": "error"})
    sample.update({"name": "x", "labels": {"a": "b"}, "value": 1.5})
    bad.update({"model": "m", "latency_ms": "fast"})

    rows = raw_events_from_proto([telemetry_pb2.TelemetryEvent(json=s) for s in (nested, flat, sample, bad)])

    assert normalise(rows[0]).total_tokens == 11
    assert normalise(rows[0]).time_ns == NOW_NS
    assert normalise(rows[1]).is_error is True
    assert isinstance(rows[2], RawSample)
    assert (rows[2].name, rows[2].labels, rows[2].value) == ("x", {"a": "b"}, 1.5)
    assert isinstance(rows[3], RowRejected)
    assert (rows[3].path, rows[3].reason) == ("json.latency_ms", "must be a number")


def test_struct_to_dict_converts_every_kind() -> None:
    struct = struct_pb2.Struct()
    struct.update({"s": "x", "n": 2, "b": True, "z": None, "o": {"l": [1, "y", None, {"k": False}]}})

    assert struct_to_dict(struct) == {
        "s": "x",
        "n": 2.0,
        "b": True,
        "z": None,
        "o": {"l": [1.0, "y", None, {"k": False}]},
    }


def test_unset_form_is_rejected_and_rows_keep_their_order() -> None:
    rows = raw_events_from_proto(
        [
            telemetry_pb2.TelemetryEvent(),
            telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent(model_name="m")),
        ]
    )

    assert isinstance(rows[0], RowRejected)
    assert (rows[0].path, rows[0].reason) == ("form", "must be one of nested, flat, sample, json")
    assert isinstance(rows[1], RawLlmEvent)


@pytest.mark.parametrize(
    ("event", "path", "reason"),
    [
        (
            telemetry_pb2.TelemetryEvent(nested=telemetry_pb2.LlmCallEvent()),
            "nested.model",
            "must not be empty",
        ),
        (
            telemetry_pb2.TelemetryEvent(
                nested=telemetry_pb2.LlmCallEvent(model="m", latency_ms=float("nan"))
            ),
            "nested.latency_ms",
            "must be finite and >= 0",
        ),
        (
            telemetry_pb2.TelemetryEvent(
                nested=telemetry_pb2.LlmCallEvent(model="m", prompt=telemetry_pb2.LlmPrompt(tokens=-5))
            ),
            "nested.prompt.tokens",
            "must be >= 0",
        ),
        (
            telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent()),
            "flat.model_name",
            "must not be empty",
        ),
        (
            telemetry_pb2.TelemetryEvent(flat=telemetry_pb2.FlatLlmEvent(model_name="m", cost_usd=1e5)),
            "flat.cost_usd",
            "must be <= 10000",
        ),
        (
            telemetry_pb2.TelemetryEvent(
                flat=telemetry_pb2.FlatLlmEvent(model_name="m", event_time=stamp(NOW_NS + 3600 * 10**9))
            ),
            "flat.event_time",
            "too far in the future (> 600 s ahead)",
        ),
    ],
)
def test_bad_proto_events_are_rejected_with_the_proto_field_path(
    event: telemetry_pb2.TelemetryEvent, path: str, reason: str
) -> None:
    [raw] = raw_events_from_proto([event])
    assert isinstance(raw, RawLlmEvent)

    with pytest.raises(RowRejected) as caught:
        normalise(raw)

    assert (caught.value.path, caught.value.reason) == (path, reason)


def test_bad_proto_sample_is_rejected_with_the_proto_field_path() -> None:
    [raw] = raw_events_from_proto(
        [telemetry_pb2.TelemetryEvent(sample=telemetry_pb2.MetricSample(value=float("inf")))]
    )
    assert isinstance(raw, RawSample)

    with pytest.raises(RowRejected) as caught:
        normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS)

    assert (caught.value.path, caught.value.reason) == ("sample.series.name", "must not be empty")


# --------------------------------------------------------------------------------------------
# OTLP
# --------------------------------------------------------------------------------------------


def attribute(key: str, value: Any) -> otel_common_pb2.KeyValue:
    if isinstance(value, bool):
        any_value = otel_common_pb2.AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = otel_common_pb2.AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = otel_common_pb2.AnyValue(double_value=value)
    elif isinstance(value, list):
        any_value = otel_common_pb2.AnyValue(
            array_value=otel_common_pb2.ArrayValue(
                values=[otel_common_pb2.AnyValue(string_value=v) for v in value]
            )
        )
    else:
        any_value = otel_common_pb2.AnyValue(string_value=value)
    return otel_common_pb2.KeyValue(key=key, value=any_value)


def span(
    attributes: dict[str, Any],
    *,
    start: int = NOW_NS - 2 * 10**9,
    end: int = NOW_NS - 10**9,
    status: trace_pb2.Status.StatusCode.ValueType = trace_pb2.Status.STATUS_CODE_UNSET,
    name: str = "chat gpt-4o",
) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[attribute(k, v) for k, v in attributes.items()],
        status=trace_pb2.Status(
            code=status, message="boom" if status == trace_pb2.Status.STATUS_CODE_ERROR else ""
        ),
    )


def export(
    *spans: trace_pb2.Span, service: str | None = "chat-api"
) -> trace_service_pb2.ExportTraceServiceRequest:
    resource = resource_pb2.Resource(attributes=[attribute("service.name", service)] if service else [])
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=list(spans))])
        ]
    )


def test_otlp_genai_span_normalises() -> None:
    request = export(
        span(
            {
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.system": "openai",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.response.id": "chatcmpl-1",
                "gen_ai.server.time_to_first_token": 0.25,
                "gen_ai.usage.cost": 0.003,
            }
        )
    )

    events, skipped = raw_events_from_otlp(request)

    assert skipped == 0
    assert [normalise(e) for e in events] == [
        LlmEvent(
            event_id="b7ad6b7169203331",
            time_ns=NOW_NS - 2 * 10**9,
            service="chat-api",
            model="gpt-4o",
            provider="openai",
            trace_id="0af7651916cd43dd8448eb211c80319c",
            span_id="b7ad6b7169203331",
            prompt_tokens=12,
            completion_tokens=30,
            total_tokens=42,
            latency_ms=1000.0,  # end - start
            ttft_ms=250.0,
            cost_usd=0.003,
            is_error=False,
            finish_reason="stop",
            request_id="chatcmpl-1",
            metadata={"span.name": "chat gpt-4o"},
            source="otlp",
        )
    ]


def test_otlp_older_llm_keys_and_error_status() -> None:
    request = export(
        span(
            {
                "llm.model_name": "claude",
                "llm.provider": "anthropic",
                "llm.token_count.prompt": 5,
                "llm.token_count.completion": 6.0,
                "llm.token_count.total": "11",
                "llm.latency_ms": 42.5,
                "llm.ttft_ms": 7,
                "llm.usage.cost_usd": "0.5",
                "session.id": "s1",
                "user.id": "u1",
            },
            status=trace_pb2.Status.STATUS_CODE_ERROR,
        ),
        service=None,
    )

    [raw], skipped = raw_events_from_otlp(request)
    event = normalise(raw)

    assert skipped == 0
    assert (event.model, event.provider, event.service) == ("claude", "anthropic", "unknown")
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens) == (5, 6, 11)
    assert (event.latency_ms, event.ttft_ms, event.cost_usd) == (42.5, 7.0, 0.5)
    assert (event.is_error, event.error_type, event.error_message) == (True, "error", "boom")
    assert (event.session_id, event.user_id) == ("s1", "u1")


def test_otlp_spans_without_a_model_are_skipped_and_counted() -> None:
    request = export(
        span({"http.method": "GET"}),
        span({"gen_ai.request.model": "m", "gen_ai.provider.name": "p"}),
        span({"db.system": "postgresql"}),
    )

    events, skipped = raw_events_from_otlp(request)

    assert skipped == 2
    assert [(e.model, e.provider) for e in events] == [("m", "p")]


def test_otlp_error_type_attribute_marks_a_failed_call() -> None:
    [raw], _ = raw_events_from_otlp(export(span({"gen_ai.request.model": "m", "error.type": "timeout"})))

    event = normalise(raw)
    assert (event.is_error, event.error_type) == (True, "timeout")


def test_otlp_ok_and_unset_status_are_not_errors() -> None:
    events, _ = raw_events_from_otlp(
        export(
            span({"gen_ai.request.model": "m"}, status=trace_pb2.Status.STATUS_CODE_OK),
            span({"gen_ai.request.model": "m"}),
        )
    )
    assert [normalise(e).is_error for e in events] == [False, False]


def test_otlp_span_ending_before_it_starts_is_rejected_on_latency() -> None:
    [raw], _ = raw_events_from_otlp(
        export(span({"gen_ai.request.model": "m"}, start=NOW_NS, end=NOW_NS - 10**6))
    )

    with pytest.raises(RowRejected) as caught:
        normalise(raw)
    assert (caught.value.path, caught.value.reason) == ("otlp.latency_ms", "must be finite and >= 0")


def test_otlp_wrongly_typed_attributes_count_as_absent() -> None:
    [raw], _ = raw_events_from_otlp(
        export(
            span(
                {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": "many", "gen_ai.usage.cost": True}
            )
        )
    )
    assert (raw.prompt_tokens, raw.cost_usd) == (None, None)


# --------------------------------------------------------------------------------------------
# Columnar batches
# --------------------------------------------------------------------------------------------


def slow_batch(samples: ColumnarSamples, batch_id: str) -> common_pb2.SampleBatch:
    return common_pb2.SampleBatch(
        batch_id=batch_id,
        series=[common_pb2.SeriesKey(name=name, labels=dict(labels)) for name, labels in samples.series],
        series_index=samples.series_index.tolist(),
        time_unix_nano=samples.time_ns.tolist(),
        value=samples.value.tolist(),
    )


@st.composite
def columnar(draw: st.DrawFn) -> ColumnarSamples:
    n_series = draw(st.integers(1, 4))
    series = [
        (
            f"s{i}",
            tuple(
                sorted(draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)).items())
            ),
        )
        for i in range(n_series)
    ]
    n = draw(st.integers(0, 300))
    return ColumnarSamples(
        series,
        np.asarray(draw(st.lists(st.integers(0, n_series - 1), min_size=n, max_size=n)), dtype=np.uint32),
        np.asarray(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64),
        np.asarray(draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n)), dtype=np.float64),
    )


@settings(max_examples=100, deadline=None)
@given(columnar())
def test_columns_round_trip_through_sample_batch(samples: ColumnarSamples) -> None:
    batch = batch_from_columns(samples, "b-1")

    # deterministic: map entries (labels) are otherwise serialised in no fixed order
    expected = slow_batch(samples, "b-1").SerializeToString(deterministic=True)
    assert batch.SerializeToString(deterministic=True) == expected
    decoded = common_pb2.SampleBatch.FromString(batch.SerializeToString())
    series, series_index, time_ns, value = columns_from_batch(decoded)
    assert decoded.batch_id == "b-1"
    assert [(name, tuple(sorted(labels.items()))) for name, labels in series] == samples.series
    assert [series_index.dtype, time_ns.dtype, value.dtype] == [np.uint32, np.int64, np.float64]
    np.testing.assert_array_equal(series_index, samples.series_index)
    np.testing.assert_array_equal(time_ns, samples.time_ns)
    np.testing.assert_array_equal(value, samples.value)


def test_columns_from_batch_keeps_mismatched_lengths_for_validation() -> None:
    batch = common_pb2.SampleBatch(series_index=[0, 0], time_unix_nano=[1], value=[1.0, 2.0, 3.0])

    _, series_index, time_ns, value = columns_from_batch(batch)

    assert (len(series_index), len(time_ns), len(value)) == (2, 1, 3)


def test_batch_from_columns_accepts_non_contiguous_and_other_dtypes() -> None:
    samples = ColumnarSamples(
        [("a", ())],
        np.zeros(10, dtype=np.int64)[::2],  # type: ignore[arg-type]
        np.arange(10, dtype=np.int32)[::2],  # type: ignore[arg-type]
        np.arange(10, dtype=np.float32)[::2],  # type: ignore[arg-type]
    )

    batch = batch_from_columns(samples, "b")

    assert list(batch.series_index) == [0] * 5
    assert list(batch.time_unix_nano) == [0, 2, 4, 6, 8]
    assert list(batch.value) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_row_errors_to_proto() -> None:
    assert row_errors_to_proto([RowError(3, "nested.latency_ms", "must be finite and >= 0")]) == [
        common_pb2.RowError(index=3, field="nested.latency_ms", reason="must be finite and >= 0")
    ]
