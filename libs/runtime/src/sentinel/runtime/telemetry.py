"""OpenTelemetry tracing set-up. Exporting is configured by the standard `OTEL_*` variables."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased


def setup_tracing(service: str) -> TracerProvider:
    """Install a TracerProvider for `service` unless one is installed already (tests install theirs).

    Spans are exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific
    variable) is set. Otherwise this service records no span of its own (a root span is not
    sampled), which saves a recorded span per call: trace context is still created and propagated
    and log lines still carry trace ids. A call that arrives in a trace its caller sampled is still
    recorded and passed on sampled, so that exporting services downstream keep the trace whole.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = build_tracer_provider(service)
    trace.set_tracer_provider(provider)
    return provider


def build_tracer_provider(service: str) -> TracerProvider:
    """The TracerProvider `setup_tracing` installs (see there), not installed."""
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider = TracerProvider(resource=resource, sampler=ParentBased(root=ALWAYS_OFF))
    return provider
