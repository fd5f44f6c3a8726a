"""Which spans a service records, with and without an exporter configured."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from sentinel.runtime.telemetry import build_tracer_provider


@pytest.fixture
def no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_exporter")
def test_without_an_exporter_own_spans_are_not_recorded_but_carry_a_trace_id() -> None:
    tracer = build_tracer_provider("svc").get_tracer("test")

    with tracer.start_as_current_span("root") as root, tracer.start_as_current_span("child") as child:
        assert not root.is_recording() and not child.is_recording()
        assert root.get_span_context().is_valid
        assert child.get_span_context().trace_id == root.get_span_context().trace_id


@pytest.mark.usefixtures("no_exporter")
def test_without_an_exporter_a_trace_the_caller_sampled_stays_sampled() -> None:
    tracer = build_tracer_provider("svc").get_tracer("test")
    remote = SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )

    span = tracer.start_span("served", context=trace.set_span_in_context(NonRecordingSpan(remote)))

    assert span.is_recording()
    assert span.get_span_context().trace_id == 0x1234
    assert span.get_span_context().trace_flags.sampled


def test_with_an_exporter_every_span_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    provider = build_tracer_provider("svc")
    try:
        with provider.get_tracer("test").start_as_current_span("root") as root:
            assert root.is_recording()
    finally:
        provider.shutdown()
