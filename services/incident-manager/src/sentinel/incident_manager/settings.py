"""Incident manager configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from pydantic import Field

from sentinel.runtime.settings import ServiceSettings


class IncidentManagerSettings(ServiceSettings):
    """Settings of the incident manager."""

    port: int = Field(50054, ge=0, le=65535, description="gRPC port.")
    storage_addr: str = Field("127.0.0.1:50053", min_length=1, description="Storage service.")
    redis_url: str | None = Field(None, description="Redis for the hot dedup path.")
    dependency_timeout_s: float = Field(
        120.0, gt=0, description="How long to wait at start for storage to be serving."
    )
