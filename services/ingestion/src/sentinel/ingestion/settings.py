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
