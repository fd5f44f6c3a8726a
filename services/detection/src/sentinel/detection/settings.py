"""Detection service configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from pydantic import Field

from sentinel.runtime.settings import ServiceSettings


class DetectionSettings(ServiceSettings):
    """Settings of the detection service."""

    port: int = Field(50052, ge=0, le=65535, description="gRPC port.")
    storage_addr: str | None = Field(
        "127.0.0.1:50053", description="Storage service (anomaly writes); unset disables them."
    )
    incident_manager_addr: str | None = Field(
        "127.0.0.1:50054", description="Incident manager (anomaly reports); unset disables them."
    )
    redis_url: str | None = Field(None, description="Redis for state checkpoints.")
