"""Storage use cases: validate with the domain, then delegate to the ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import UnavailableError
from sentinel.storage.domain.anomalies import (
    AnomalyListing,
    AnomalyPage,
    AnomalyRecord,
    AnomalyWriteResult,
    plan_anomaly_listing,
    validate_anomalies,
)
from sentinel.storage.domain.batch import SampleBatch, derive_batch_id, validate_batch
from sentinel.storage.domain.query import SampleQuery, SeriesListing, plan_listing, plan_query
from sentinel.storage.domain.results import QueryPage, RetentionOutcome, SeriesPage, WriteResult
from sentinel.storage.domain.retention import RetentionRequest, plan_retention
from sentinel.storage.ports import AnomalyStore, SampleStore, SeriesIds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unix_nanos(moment: datetime) -> int:
    """Nanoseconds since the Unix epoch of an aware datetime (exact to the microsecond)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000


class StorageService:
    """The storage use cases, independent of gRPC and of the database driver."""

    def __init__(
        self,
        *,
        series_ids: SeriesIds,
        samples: SampleStore,
        clock: Clock,
        samples_retention: timedelta | None = None,
        anomalies: AnomalyStore | None = None,
    ) -> None:
        self._series_ids = series_ids
        self._samples = samples
        self._anomalies = anomalies
        self._clock = clock
        self._retention = samples_retention

    async def write_samples(self, *, tenant: str, batch: SampleBatch) -> WriteResult:
        """Validate a batch, resolve its series and commit it once (idempotent by batch id).

        Points older than the retention window (if one is configured) are dropped and counted.
        """
        validate_batch(batch)
        batch_id = batch.batch_id or derive_batch_id(batch)
        series_index, time_unix_nano, value = batch.series_index, batch.time_unix_nano, batch.value
        dropped = 0
        if self._retention is not None and len(batch):
            cutoff = unix_nanos(self._clock.now() - self._retention)
            keep = time_unix_nano >= cutoff
            dropped = len(keep) - int(keep.sum())
            if dropped:
                series_index, time_unix_nano, value = series_index[keep], time_unix_nano[keep], value[keep]
        if len(value) == 0:
            return WriteResult(batch_id=batch_id, points_written=0, points_dropped=dropped)
        used = np.unique(series_index)
        ids, created = await self._series_ids.resolve(tenant, [batch.series[i] for i in used.tolist()])
        id_by_index = np.zeros(len(batch.series), dtype=np.int64)
        id_by_index[used] = ids
        written = await self._samples.write(
            tenant=tenant,
            batch_id=batch_id,
            series_id=id_by_index[series_index],
            time_unix_nano=time_unix_nano,
            value=value,
        )
        if not written:
            return WriteResult(batch_id=batch_id, points_written=0, duplicate=True, series_created=created)
        return WriteResult(
            batch_id=batch_id, points_written=len(value), points_dropped=dropped, series_created=created
        )

    async def query_samples(self, *, tenant: str, query: SampleQuery) -> QueryPage:
        """One page of points of the selected series, raw or aggregated."""
        plan = plan_query(query, now_unix_nano=unix_nanos(self._clock.now()))
        return await self._samples.query(tenant=tenant, plan=plan)

    async def list_series(self, *, tenant: str, listing: SeriesListing) -> SeriesPage:
        """One page of the tenant's series matching the listing."""
        return await self._samples.list_series(tenant=tenant, plan=plan_listing(listing))

    async def apply_retention(self, *, request: RetentionRequest) -> RetentionOutcome:
        """Drop (or, dry run, list) whole partitions ending at or before the cutoff, for all tenants."""
        cutoff = plan_retention(request, now_unix_nano=unix_nanos(self._clock.now()))
        dropped = await self._samples.apply_retention(cutoff_unix_micro=cutoff, dry_run=request.dry_run)
        return RetentionOutcome(partitions=dropped)

    def _anomaly_store(self) -> AnomalyStore:
        if self._anomalies is None:
            raise UnavailableError("no anomaly store is configured", reason="ANOMALIES_UNAVAILABLE")
        return self._anomalies

    async def write_anomalies(
        self, *, tenant: str, anomalies: tuple[AnomalyRecord, ...]
    ) -> AnomalyWriteResult:
        """Insert or update anomalies by id (a rewrite updates the episode, never duplicates it)."""
        records = validate_anomalies(anomalies)
        return await self._anomaly_store().write(tenant=tenant, anomalies=records)

    async def list_anomalies(self, *, tenant: str, listing: AnomalyListing) -> AnomalyPage:
        """One page of the tenant's anomalies matching every filter, newest start first."""
        plan = plan_anomaly_listing(listing)
        return await self._anomaly_store().list(tenant=tenant, plan=plan)
