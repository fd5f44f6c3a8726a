"""What the storage use cases need from the outside world (implemented in `adapters`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sentinel.storage.domain.anomalies import AnomalyListPlan, AnomalyPage, AnomalyRecord, AnomalyWriteResult
from sentinel.storage.domain.partitions import Partition
from sentinel.storage.domain.query import ListPlan, QueryPlan
from sentinel.storage.domain.results import QueryPage, SeriesPage
from sentinel.storage.domain.series import SeriesKey


class SeriesIds(Protocol):
    """Resolves series keys to stable ids, creating series seen for the first time."""

    async def resolve(self, tenant: str, keys: Sequence[SeriesKey]) -> tuple[npt.NDArray[np.int64], int]:
        """Ids of `keys` (same order) and how many series were created by this call."""
        ...


class SampleStore(Protocol):
    """Durable samples: idempotent batch writes, paged queries, series listing, retention."""

    async def write(
        self,
        *,
        tenant: str,
        batch_id: str,
        series_id: npt.NDArray[np.int64],
        time_unix_nano: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> bool:
        """Commit the points with the batch id; False (nothing written) if the id was committed before."""
        ...

    async def query(self, *, tenant: str, plan: QueryPlan) -> QueryPage:
        """One page of the planned query, scoped to `tenant`."""
        ...

    async def list_series(self, *, tenant: str, plan: ListPlan) -> SeriesPage:
        """One page of the tenant's series matching the plan."""
        ...

    async def apply_retention(self, *, cutoff_unix_micro: int, dry_run: bool) -> tuple[Partition, ...]:
        """Drop (or list) the sample partitions ending at or before the cutoff, oldest first."""
        ...


class AnomalyStore(Protocol):
    """Anomalous episodes: idempotent upserts by anomaly id, filtered newest-first listings."""

    async def write(self, *, tenant: str, anomalies: Sequence[AnomalyRecord]) -> AnomalyWriteResult:
        """Insert new ids, update known ones (peak, end, score, point count...), in one transaction."""
        ...

    async def list(self, *, tenant: str, plan: AnomalyListPlan) -> AnomalyPage:
        """One page of the tenant's anomalies matching the plan, newest start_time first."""
        ...
