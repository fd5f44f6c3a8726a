"""IngestionService and the OTLP TraceService: glue between gRPC and the ingestion use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from sentinel.ingestion.grpc import convert, responses
from sentinel.ingestion.service import ColumnarBatch, IngestionService, RawInput, content_batch_id
from sentinel.runtime.auth import current_tenant

SERVICE = ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"]
OTLP_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"]

Context = Any  # grpc.aio.ServicerContext


class IngestionServicer(ingestion_service_pb2_grpc.IngestionServiceServicer):
    """Answers IngestionService."""

    def __init__(self, service: IngestionService, *, default_deadline_s: float) -> None:
        self._service = service
        self._default_deadline_s = default_deadline_s

    def _deadline(self, context: Context) -> float:
        remaining = context.time_remaining()
        return self._default_deadline_s if remaining is None else float(remaining)

    async def IngestEvents(
        self, request: ingestion_service_pb2.IngestEventsRequest, context: Context
    ) -> ingestion_service_pb2.IngestEventsResponse:
        outcome = await self._service.ingest_events(
            tenant=current_tenant(),
            batch_id=request.batch_id
            or content_batch_id("events", request.SerializeToString(deterministic=True)),
            raw=convert.raw_events_from_proto(request.events),
            deadline_s=self._deadline(context),
        )
        return responses.ingest_events_response(outcome)

    async def StreamEvents(
        self, request_iterator: AsyncIterator[ingestion_service_pb2.StreamEventsRequest], context: Context
    ) -> ingestion_service_pb2.StreamEventsResponse:
        async def batches() -> AsyncIterator[tuple[str, Sequence[RawInput]]]:
            async for request in request_iterator:
                batch_id = request.batch_id or content_batch_id(
                    "events", request.SerializeToString(deterministic=True)
                )
                yield batch_id, convert.raw_events_from_proto(request.events)

        outcomes = await self._service.ingest_event_stream(
            tenant=current_tenant(), batches=batches(), deadline_s=self._deadline(context)
        )
        return responses.stream_events_response(outcomes)

    async def WriteSamples(
        self, request: ingestion_service_pb2.WriteSamplesRequest, context: Context
    ) -> ingestion_service_pb2.WriteSamplesResponse:
        outcome = await self._service.write_samples(
            tenant=current_tenant(), batch=_columnar(request.batch), deadline_s=self._deadline(context)
        )
        return responses.write_samples_response(outcome)

    async def StreamSamples(
        self, request_iterator: AsyncIterator[ingestion_service_pb2.StreamSamplesRequest], context: Context
    ) -> ingestion_service_pb2.StreamSamplesResponse:
        async def batches() -> AsyncIterator[ColumnarBatch]:
            async for request in request_iterator:
                yield _columnar(request.batch)

        outcomes = await self._service.write_sample_stream(
            tenant=current_tenant(), batches=batches(), deadline_s=self._deadline(context)
        )
        return responses.stream_samples_response(outcomes)


class OtlpTraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP/gRPC trace receiver: LLM spans from any OpenTelemetry SDK become telemetry events."""

    def __init__(self, service: IngestionService, *, default_deadline_s: float) -> None:
        self._service = service
        self._default_deadline_s = default_deadline_s

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Context
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        raw, skipped = convert.raw_events_from_otlp(request)
        remaining = context.time_remaining()
        outcome = await self._service.ingest_spans(
            tenant=current_tenant(),
            batch_id=content_batch_id("otlp", request.SerializeToString(deterministic=True)),
            raw=raw,
            skipped_spans=skipped,
            deadline_s=self._default_deadline_s if remaining is None else float(remaining),
        )
        return responses.otlp_response(outcome)


def _columnar(batch: Any) -> ColumnarBatch:
    series, series_index, time_ns, value = convert.columns_from_batch(batch)
    if not batch.batch_id:
        batch.batch_id = content_batch_id("samples", batch.SerializeToString(deterministic=True))
    return ColumnarBatch(batch.batch_id, series, series_index, time_ns, value, wire=batch)
