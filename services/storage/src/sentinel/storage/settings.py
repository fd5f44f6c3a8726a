"""Storage service configuration (`SENTINEL_` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sentinel.runtime.settings import ServiceSettings


class StorageSettings(ServiceSettings):
    """Settings of the storage service."""

    port: int = Field(50053, ge=0, le=65535, description="gRPC port.")
    postgres_dsn: str | None = Field(
        None, description="PostgreSQL DSN; unset starts an embedded server under var_dir."
    )
    redis_url: str | None = Field(
        None, description="Redis URL; unset starts an embedded server under var_dir."
    )
    var_dir: Path = Field(Path("var"), description="Data directory of the embedded stores.")
    postgres_pool_min: int = Field(2, ge=1, le=100)
    postgres_pool_max: int = Field(10, ge=1, le=200)
    redis_namespace: str = Field(
        "sentinel", min_length=1, max_length=64, description="Prefix of every Redis key."
    )
    postgres_acquire_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Wait for a pooled connection before RESOURCE_EXHAUSTED."
    )
    series_cache_size: int = Field(
        100_000, ge=1, le=10_000_000, description="Series ids kept in process (LRU)."
    )
    samples_retention_days: int | None = Field(
        None, ge=1, description="Points older than this are dropped on write; unset keeps all."
    )
    maintenance_interval_s: float = Field(
        30.0, gt=0, le=3600, description="Period of series-extent flushes and closed-partition indexing."
    )
    index_closed_partitions: bool = Field(
        True, description="Build a (series_id, time) btree on each day's partition once the day is over."
    )
