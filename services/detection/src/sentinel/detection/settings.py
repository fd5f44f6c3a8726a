"""Detection service configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from pydantic import Field

from sentinel.runtime.settings import ServiceSettings


class DetectionSettings(ServiceSettings):
    """Settings of the detection service. Empty or unset peer addresses disable that peer."""

    port: int = Field(50052, ge=0, le=65535, description="gRPC port.")
    storage_addr: str | None = Field(
        "127.0.0.1:50053", description="Storage service (anomaly writes); empty disables them."
    )
    incident_manager_addr: str | None = Field(
        "127.0.0.1:50054", description="Incident manager (anomaly reports); empty disables them."
    )
    redis_url: str | None = Field(
        None, description="Redis for state checkpoints; unset keeps state in memory only."
    )
    redis_namespace: str = Field(
        "sentinel", min_length=1, max_length=64, description="Prefix of every Redis key."
    )
    max_series: int = Field(
        10_000, ge=1, le=10_000_000, description="Series held in memory (LRU beyond); 20 KB each."
    )
    batch_max_points: int = Field(
        32_768, ge=1, le=1_000_000, description="Flush a kernel call at this size (larger amortises better)."
    )
    batch_max_delay_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="Flush when the oldest waiting call has waited this long; 0 = at once (calls "
        "arriving while the kernel is busy are coalesced anyway).",
    )
    queue_max_points: int = Field(
        1_000_000, ge=1, description="Points queued or in flight; beyond, RESOURCE_EXHAUSTED."
    )
    checkpoint_interval_s: float = Field(
        30.0,
        ge=0,
        le=86_400,
        description="Period of Redis checkpoints (also at shutdown); 0 = shutdown only.",
    )
    checkpoint_ttl_s: int | None = Field(
        7 * 86_400, ge=60, description="Expiry of a series checkpoint; unset keeps it forever."
    )
    episode_gap_s: float = Field(
        600.0, ge=0, description="Anomalous points of a series this close in time form one episode."
    )
    batch_id_cache_size: int = Field(4096, ge=1, description="Recent batch ids remembered for retries.")
    recent_points: int = Field(16, ge=1, le=1024, description="Points per series kept for ExplainScore.")
    report_queue_size: int = Field(10_000, ge=1, description="Episode changes waiting for delivery.")
    report_deadline_s: float = Field(30.0, gt=0, description="Retry budget of one anomaly delivery.")
    max_concurrent_evaluations: int = Field(2, ge=1, description="Concurrent ScoreSeries calls.")
    dependency_timeout_s: float = Field(30.0, gt=0, description="Wait for Redis at start.")
    multivariate_enabled: bool = Field(
        True, description="PyOD detectors over per-(service, model) LLM feature vectors (+~230 MB)."
    )
    multivariate_bucket_s: float = Field(60.0, ge=1, le=86_400, description="Seconds per feature vector.")
    multivariate_history: int = Field(
        288, ge=24, le=100_000, description="Buckets per (service, model) for its robust scale."
    )
    multivariate_refit_every: int = Field(
        256, ge=1, description="Scored buckets between refits of the pooled multivariate model."
    )
    multivariate_threshold: float = Field(
        0.6, gt=0, le=1, description="Multivariate score at or above which a bucket is anomalous."
    )
