"""Incident manager configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.runtime.settings import ServiceSettings


class IncidentManagerSettings(ServiceSettings):
    """Settings of the incident manager."""

    port: int = Field(50054, ge=0, le=65535, description="gRPC port.")
    storage_addr: str = Field("127.0.0.1:50053", min_length=1, description="Storage service.")
    redis_url: str | None = Field(
        None,
        description="Redis for the hot dedup path and the watch feed; unset keeps both in process "
        "(correct for one replica only).",
    )
    redis_namespace: str = Field("sentinel:incident", min_length=1, description="Prefix of Redis keys.")
    dependency_timeout_s: float = Field(
        120.0, gt=0, description="How long to wait at start for storage to be serving."
    )
    storage_deadline_s: float = Field(10.0, gt=0, description="Retry budget of one storage call.")
    # Grouping, reopening, flapping, expiry (see domain.policy.IncidentPolicy).
    group_by: str = Field(
        "service,model,alert_type", description="Comma-separated labels forming the group key."
    )
    fingerprint_labels: str | None = Field(
        None, description="Comma-separated labels entering the fingerprint; unset means all labels."
    )
    group_window_s: float = Field(300.0, gt=0)
    min_alerts_per_incident: int = Field(1, ge=1, le=1000)
    reopen_window_s: float = Field(3600.0, ge=0)
    flap_window_s: float = Field(1800.0, gt=0)
    flap_threshold: int = Field(4, ge=2, le=1000)
    alert_ttl_s: float = Field(4 * 3600.0, gt=0, description="A firing alert unseen this long expires.")
    dedup_ttl_s: float = Field(86_400.0, gt=0, description="TTL of a fingerprint's Redis claim.")
    sweep_interval_s: float = Field(30.0, gt=0, description="Auto-resolve sweep period.")
    watch_heartbeat_s: float = Field(15.0, gt=0)
    watch_replay_size: int = Field(
        10_000, ge=100, le=10_000_000, description="Changes per tenant kept for resuming watchers."
    )
    watch_retention_s: int = Field(
        7 * 86_400,
        ge=60,
        description="A tenant's Redis watch stream expires this long after its last change.",
    )
    http_port: int = Field(
        9093,
        ge=0,
        le=65535,
        description="Port of the HTTP JSON receivers (Alertmanager, PagerDuty); 0 picks one.",
    )
    http_max_body_kb: int = Field(
        1024, ge=1, le=64 * 1024, description="Larger HTTP request bodies answer 413."
    )
    http_max_in_flight: int = Field(
        256, ge=1, le=65_536, description="HTTP requests served at once; beyond, 503 with Retry-After."
    )
    report_concurrency: int = Field(64, ge=1, le=4096, description="Alerts processed at once per replica.")

    @field_validator("group_by")
    @classmethod
    def _group_by_is_not_empty(cls, value: str) -> str:
        if not _names(value):
            raise ValueError("must name at least one label")
        return value

    def policy(self) -> IncidentPolicy:
        """The grouping and lifecycle rules these settings describe."""
        return IncidentPolicy(
            group_by=_names(self.group_by),
            fingerprint_labels=_names(self.fingerprint_labels) if self.fingerprint_labels else None,
            group_window=timedelta(seconds=self.group_window_s),
            min_alerts=self.min_alerts_per_incident,
            reopen_window=timedelta(seconds=self.reopen_window_s),
            flap_window=timedelta(seconds=self.flap_window_s),
            flap_threshold=self.flap_threshold,
            alert_ttl=timedelta(seconds=self.alert_ttl_s),
        )

    def limits(self) -> Limits:
        """Validation limits (the published ones)."""
        return Limits()


def _names(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
