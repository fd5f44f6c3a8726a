"""Use-case outcomes to IngestionService / OTLP responses."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from sentinel.api.ingestion.v1 import ingestion_service_pb2
from sentinel.ingestion.grpc.convert import row_errors_to_proto
from sentinel.ingestion.service import BatchOutcome


def ingest_events_response(outcome: BatchOutcome) -> ingestion_service_pb2.IngestEventsResponse:
    return ingestion_service_pb2.IngestEventsResponse(
        batch_id=outcome.batch_id,
        accepted_count=outcome.accepted,
        rejected_rows=row_errors_to_proto(outcome.rejected),
        derived_sample_count=outcome.derived_points,
        duplicate=outcome.duplicate,
    )


def batch_result(outcome: BatchOutcome) -> ingestion_service_pb2.BatchResult:
    return ingestion_service_pb2.BatchResult(
        batch_id=outcome.batch_id,
        accepted_count=outcome.accepted,
        rejected_rows=row_errors_to_proto(outcome.rejected),
        derived_sample_count=outcome.derived_points,
        duplicate=outcome.duplicate,
    )


def stream_events_response(outcomes: Sequence[BatchOutcome]) -> ingestion_service_pb2.StreamEventsResponse:
    return ingestion_service_pb2.StreamEventsResponse(
        batches=[batch_result(o) for o in outcomes],
        accepted_count=sum(o.accepted for o in outcomes),
        rejected_count=sum(len(o.rejected) for o in outcomes),
        derived_sample_count=sum(o.derived_points for o in outcomes),
    )


def write_samples_response(outcome: BatchOutcome) -> ingestion_service_pb2.WriteSamplesResponse:
    return ingestion_service_pb2.WriteSamplesResponse(
        batch_id=outcome.batch_id,
        accepted_count=outcome.accepted,
        rejected_rows=row_errors_to_proto(outcome.rejected),
        duplicate=outcome.duplicate,
    )


def stream_samples_response(outcomes: Sequence[BatchOutcome]) -> ingestion_service_pb2.StreamSamplesResponse:
    return ingestion_service_pb2.StreamSamplesResponse(
        batches=[batch_result(o) for o in outcomes],
        accepted_count=sum(o.accepted for o in outcomes),
        rejected_count=sum(len(o.rejected) for o in outcomes),
    )


def otlp_response(outcome: BatchOutcome) -> trace_service_pb2.ExportTraceServiceResponse:
    """Rejected spans are reported through OTLP's partial success, as exporters expect."""
    if not outcome.rejected:
        return trace_service_pb2.ExportTraceServiceResponse()
    shown = "; ".join(f"spans[{e.index}].{e.field}: {e.reason}" for e in outcome.rejected[:5])
    more = f" (+{len(outcome.rejected) - 5} more)" if len(outcome.rejected) > 5 else ""
    return trace_service_pb2.ExportTraceServiceResponse(
        partial_success=trace_service_pb2.ExportTracePartialSuccess(
            rejected_spans=len(outcome.rejected), error_message=shown + more
        )
    )
