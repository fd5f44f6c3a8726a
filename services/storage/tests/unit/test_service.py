"""The write use case over in-memory fakes of its ports: retention window, duplicates, resolution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from sentinel.runtime.clock import ManualClock
from sentinel.storage.domain.batch import SampleBatch
from sentinel.storage.domain.partitions import Partition
from sentinel.storage.domain.query import ListPlan, QueryPlan
from sentinel.storage.domain.results import QueryPage, SeriesPage
from sentinel.storage.domain.series import SeriesKey
from sentinel.storage.service import StorageService, unix_nanos

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


class FakeSeriesIds:
    def __init__(self) -> None:
        self.ids: dict[tuple[str, SeriesKey], int] = {}
        self.asked: list[SeriesKey] = []

    async def resolve(self, tenant: str, keys: Sequence[SeriesKey]) -> tuple[npt.NDArray[np.int64], int]:
        self.asked += keys
        before = len(self.ids)
        out = [self.ids.setdefault((tenant, key), len(self.ids) + 1) for key in keys]
        return np.array(out, dtype=np.int64), len(self.ids) - before


class FakeSamples:
    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], list[tuple[int, int, float]]] = {}

    async def write(
        self,
        *,
        tenant: str,
        batch_id: str,
        series_id: npt.NDArray[np.int64],
        time_unix_nano: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> bool:
        if (tenant, batch_id) in self.batches:
            return False
        rows = list(zip(series_id.tolist(), time_unix_nano.tolist(), value.tolist(), strict=True))
        self.batches[tenant, batch_id] = rows
        return True

    async def query(self, *, tenant: str, plan: QueryPlan) -> QueryPage:
        raise NotImplementedError

    async def list_series(self, *, tenant: str, plan: ListPlan) -> SeriesPage:
        raise NotImplementedError

    async def apply_retention(self, *, cutoff_unix_micro: int, dry_run: bool) -> tuple[Partition, ...]:
        raise NotImplementedError


def service(retention: timedelta | None = None) -> tuple[StorageService, FakeSeriesIds, FakeSamples]:
    ids, samples = FakeSeriesIds(), FakeSamples()
    return (
        StorageService(series_ids=ids, samples=samples, clock=ManualClock(NOW), samples_retention=retention),
        ids,
        samples,
    )


def batch(times: list[int], index: list[int], batch_id: str = "b") -> SampleBatch:
    return SampleBatch(
        batch_id,
        (SeriesKey.of("a"), SeriesKey.of("unused"), SeriesKey.of("c")),
        np.array(index, dtype=np.uint32),
        np.array(times, dtype=np.int64),
        np.arange(len(times), dtype=np.float64),
    )


async def test_only_referenced_series_are_resolved_and_points_get_their_ids() -> None:
    storage, ids, samples = service()
    now = unix_nanos(NOW)
    result = await storage.write_samples(tenant="t", batch=batch([now, now + 1, now + 2], [2, 0, 2]))
    assert (result.points_written, result.series_created) == (3, 2)
    assert ids.asked == [SeriesKey.of("a"), SeriesKey.of("c")]
    assert [row[0] for row in samples.batches["t", "b"]] == [2, 1, 2]


async def test_a_duplicate_batch_reports_duplicate_and_writes_nothing() -> None:
    storage, _, samples = service()
    now = unix_nanos(NOW)
    await storage.write_samples(tenant="t", batch=batch([now], [0]))
    again = await storage.write_samples(tenant="t", batch=batch([now], [0]))
    assert (again.duplicate, again.points_written) == (True, 0)
    assert len(samples.batches) == 1


async def test_points_before_the_retention_window_are_dropped_and_counted() -> None:
    storage, _, samples = service(retention=timedelta(days=7))
    old, now = unix_nanos(NOW - timedelta(days=8)), unix_nanos(NOW)
    result = await storage.write_samples(tenant="t", batch=batch([old, now, old], [0, 2, 2]))
    assert (result.points_written, result.points_dropped) == (1, 2)
    assert [row[1] for row in samples.batches["t", "b"]] == [now]
    everything_old = await storage.write_samples(tenant="t", batch=batch([old], [0], "b2"))
    assert (everything_old.points_written, everything_old.points_dropped) == (0, 1)
    assert ("t", "b2") not in samples.batches


def test_unix_nanos_is_exact_to_the_microsecond() -> None:
    assert unix_nanos(datetime(2026, 3, 2, 0, 0, 0, 123_456, tzinfo=UTC)) == 1_772_409_600_123_456_000
