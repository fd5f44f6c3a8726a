"""A trace started by a client crosses two services: client -> A -> B."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel.runtime.channels import create_channel
from sentinel.testing.servers import channel_to, generic_service, make_server, running


async def test_one_trace_spans_client_service_a_and_service_b(spans: InMemorySpanExporter) -> None:
    async with running(make_server(name="b")) as address_b:
        channel_to_b = create_channel(address_b)

        async def relay(request: bytes, context: Any) -> bytes:
            # Service A calls service B's health check on behalf of its caller.
            response = await health_pb2_grpc.HealthStub(channel_to_b).Check(health_pb2.HealthCheckRequest())
            return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status).encode()

        service_a = generic_service("test.Relay", {"Call": grpc.unary_unary_rpc_method_handler(relay)})
        async with (
            running(make_server(service_a, name="a")) as address_a,
            channel_to(address_a) as channel,
        ):
            with trace.get_tracer("test").start_as_current_span("client-operation") as root:
                answer = await channel.unary_unary("/test.Relay/Call")(b"")
        await channel_to_b.close()

    assert answer == b"SERVING"
    root_context = root.get_span_context()
    finished = [s for s in spans.get_finished_spans() if s.context.trace_id == root_context.trace_id]
    by_name: dict[str, list[Any]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    client_to_a = by_name["/test.Relay/Call"]
    server_a = next(s for s in client_to_a if s.kind is trace.SpanKind.SERVER)
    client_a = next(s for s in client_to_a if s.kind is trace.SpanKind.CLIENT)
    to_b = by_name["/grpc.health.v1.Health/Check"]
    client_b = next(s for s in to_b if s.kind is trace.SpanKind.CLIENT)
    server_b = next(s for s in to_b if s.kind is trace.SpanKind.SERVER)

    # One trace id for all five spans, each the child of the one before.
    assert {s.context.trace_id for s in finished} == {root_context.trace_id}
    assert client_a.parent.span_id == root_context.span_id
    assert server_a.parent.span_id == client_a.context.span_id
    assert client_b.parent.span_id == server_a.context.span_id
    assert server_b.parent.span_id == client_b.context.span_id
