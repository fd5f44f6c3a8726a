"""Ingestion service configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from pydantic import Field

from sentinel.runtime.settings import ServiceSettings


class IngestionSettings(ServiceSettings):
    """Settings of the ingestion service."""

    port: int = Field(50051, ge=0, le=65535, description="gRPC port (also the OTLP receiver).")
    storage_addr: str = Field("127.0.0.1:50053", min_length=1, description="Storage service.")
    detection_addr: str | None = Field(
        "127.0.0.1:50052", description="Detection service; unset disables forwarding."
    )
    dependency_timeout_s: float = Field(
        120.0, gt=0, description="How long to wait at start for storage to be serving."
    )
    # Back-pressure: at most this many batches are being written to storage at once; a call that
    # cannot get a slot within `backpressure_wait_s` is refused with RESOURCE_EXHAUSTED.
    max_inflight_writes: int = Field(32, ge=1, le=4096)
    backpressure_wait_s: float = Field(1.0, ge=0, le=60)
    default_deadline_s: float = Field(
        30.0, gt=0, description="Storage retry budget when the caller sets no deadline."
    )
    forward_queue_batches: int = Field(
        256, ge=1, description="Batches waiting to be forwarded to detection; beyond it they are dropped."
    )
    # Validation limits (see sentinel.ingestion.domain.model.Limits).
    max_future_s: float = Field(600.0, gt=0, description="How far ahead of now a timestamp may be.")
    max_past_s: float = Field(7 * 86400.0, gt=0, description="How far behind now a timestamp may be.")
    max_events_per_batch: int = Field(10_000, ge=1)
    max_points_per_batch: int = Field(100_000, ge=1)
