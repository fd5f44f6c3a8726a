"""PostgreSQL (asyncpg) and Redis adapters: series ids, sample writes by binary COPY, queries.

Times: PostgreSQL keeps microseconds, so nanosecond sample times are floored to the microsecond
on write (two points of one series within the same microsecond become two rows at the same
time) and returned as microseconds * 1000.

SQL is built from fixed fragments only. User input (label names, values, regexes, ids, times)
always travels as bind parameters; the only identifiers formatted into statements are partition
names derived from integers (DDL cannot take parameters).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import asyncpg
import numpy as np
import numpy.typing as npt
import redis.asyncio as redis

from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import (
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)
from sentinel.storage.adapters.pgcopy import encode_samples, unix_nanos_to_micros
from sentinel.storage.adapters.sessions import mark_session_state
from sentinel.storage.adapters.stores import Stores
from sentinel.storage.domain.anomalies import (
    AnomalyCursor,
    AnomalyListPlan,
    AnomalyPage,
    AnomalyRecord,
    AnomalyWriteResult,
    Contribution,
    encode_anomaly_token,
)
from sentinel.storage.domain.paging import Cursor, encode_token
from sentinel.storage.domain.partitions import (
    MICROS_PER_DAY,
    Partition,
    day_bounds_micro,
    day_of_name,
    partition_name,
)
from sentinel.storage.domain.query import (
    Aggregation,
    ById,
    ByKey,
    LabelMatcher,
    ListPlan,
    MatchOperator,
    QueryPlan,
    anchored,
)
from sentinel.storage.domain.results import QueryPage, SeriesInfo, SeriesPage, SeriesPoints
from sentinel.storage.domain.series import NAME_LABEL, SeriesKey, series_hash

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Advisory lock ids shared by every storage replica (the migration lock is 0x53454E54).
_PARTITION_LOCK_ID = 0x53454E55
_RETENTION_LOCK_ID = 0x53454E56
_INDEX_LOCK_ID = 0x53454E57
# A day's partition gets its btree this long after the day ends (late points still arrive).
_INDEX_AFTER_MICRO = 3_600 * 1_000_000

_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)

_AGGREGATE_SQL = {
    Aggregation.AVG: "avg(value)",
    Aggregation.MIN: "min(value)",
    Aggregation.MAX: "max(value)",
    Aggregation.SUM: "sum(value)",
    Aggregation.COUNT: "count(*)::float8",
    Aggregation.P50: "percentile_cont(0.5) WITHIN GROUP (ORDER BY value)",
    Aggregation.P95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)",
    Aggregation.P99: "percentile_cont(0.99) WITHIN GROUP (ORDER BY value)",
    Aggregation.LAST: "(array_agg(value ORDER BY time DESC, value DESC))[1]",
}
# Microseconds since the Unix epoch of a timestamptz column, exactly (extract returns numeric).
_MICROS = "(extract(epoch FROM {0}) * 1000000)::bigint"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _timestamp(unix_micro: int) -> datetime:
    return _EPOCH + timedelta(microseconds=unix_micro)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class LruCache(Generic[K, V]):
    """A bounded least-recently-used map."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


class Database:
    """Pool access with the failure mapping every adapter shares."""

    def __init__(self, stores: Stores, *, acquire_timeout_s: float) -> None:
        self.stores = stores
        self._acquire_timeout_s = acquire_timeout_s

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; pool exhaustion is RESOURCE_EXHAUSTED, a lost server UNAVAILABLE."""
        pool = self.stores.pool
        try:
            connection = await pool.acquire(timeout=self._acquire_timeout_s)
        except TimeoutError:
            raise ResourceExhaustedError(
                "every PostgreSQL connection is busy; retry with backoff", reason="OVERLOADED"
            ) from None
        except _UNAVAILABLE as exc:
            raise UnavailableError("PostgreSQL is unreachable; retry", reason="POSTGRES_UNAVAILABLE") from exc
        try:
            yield connection
        except _UNAVAILABLE as exc:
            raise UnavailableError("PostgreSQL is unreachable; retry", reason="POSTGRES_UNAVAILABLE") from exc
        finally:
            await pool.release(connection)


class PostgresSeriesIds:
    """Series ids: in-process LRU, then one Redis HMGET per batch, then one PostgreSQL upsert.

    Ids never change once assigned, so every cache layer is always correct; Redis keys carry the
    database's instance id so that a re-created database never sees another one's ids. Redis is
    an accelerator only: when it fails, resolution goes on through PostgreSQL.
    """

    def __init__(self, database: Database, *, namespace: str, cache_size: int) -> None:
        self._database = database
        self._namespace = namespace
        self._cache: LruCache[tuple[str, SeriesKey], int] = LruCache(cache_size)

    def _redis_key(self, tenant: str) -> str:
        return f"{self._namespace}:series-ids:{self._database.stores.instance_id}:{tenant}"

    async def resolve(self, tenant: str, keys: Sequence[SeriesKey]) -> tuple[npt.NDArray[np.int64], int]:
        ids = np.empty(len(keys), dtype=np.int64)
        positions: dict[bytes, list[int]] = {}
        key_by_hash: dict[bytes, SeriesKey] = {}
        for i, key in enumerate(keys):
            cached = self._cache.get((tenant, key))
            if cached is not None:
                ids[i] = cached
                continue
            digest = series_hash(tenant, key)
            positions.setdefault(digest, []).append(i)
            key_by_hash[digest] = key
        if not positions:
            return ids, 0
        found = await self._from_redis(tenant, list(positions))
        created = 0
        missing = sorted(digest for digest in positions if digest not in found)
        if missing:
            from_postgres, created = await self._upsert(tenant, [(d, key_by_hash[d]) for d in missing])
            found.update(from_postgres)
            await self._to_redis(tenant, from_postgres)
        for digest, where in positions.items():
            series_id = found[digest]
            ids[where] = series_id
            self._cache.put((tenant, key_by_hash[digest]), series_id)
        return ids, created

    async def _from_redis(self, tenant: str, digests: list[bytes]) -> dict[bytes, int]:
        try:
            values = await self._database.stores.redis.hmget(self._redis_key(tenant), digests)
        except redis.RedisError:
            logger.warning("redis lookup of series ids failed; using PostgreSQL", exc_info=True)
            return {}
        return {
            digest: int(value) for digest, value in zip(digests, values, strict=True) if value is not None
        }

    async def _to_redis(self, tenant: str, ids: dict[bytes, int]) -> None:
        if not ids:
            return
        try:
            await self._database.stores.redis.hset(
                self._redis_key(tenant), mapping={digest: str(series_id) for digest, series_id in ids.items()}
            )
        except redis.RedisError:
            logger.warning("redis store of series ids failed", exc_info=True)

    async def _upsert(
        self, tenant: str, entries: list[tuple[bytes, SeriesKey]]
    ) -> tuple[dict[bytes, int], int]:
        # One round trip for every miss of the batch. DO UPDATE (not DO NOTHING) so that RETURNING
        # also yields rows another writer committed concurrently; entries arrive sorted by hash so
        # that concurrent upserts lock rows in the same order and cannot deadlock.
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                """
                INSERT INTO series (tenant_id, name, labels, series_hash)
                SELECT $1, t.name, t.labels::jsonb, t.hash
                FROM unnest($2::text[], $3::text[], $4::bytea[]) AS t(name, labels, hash)
                ORDER BY t.hash
                ON CONFLICT (tenant_id, series_hash) DO UPDATE SET tenant_id = EXCLUDED.tenant_id
                RETURNING series_id, series_hash, (xmax = 0) AS inserted
                """,
                tenant,
                [key.name for _, key in entries],
                [json.dumps(key.label_map, ensure_ascii=False) for _, key in entries],
                [digest for digest, _ in entries],
            )
        return {bytes(row["series_hash"]): row["series_id"] for row in rows}, sum(
            row["inserted"] for row in rows
        )


class PostgresSamples:
    """Samples in daily partitions of `samples`: idempotent COPY writes, queries, retention."""

    def __init__(self, database: Database, *, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._known_days: set[int] = set()
        # Sample-time extent per series not yet flushed to `series`: id -> [first, last] (µs).
        self._extents: dict[int, list[int]] = {}

    # -- writes ---------------------------------------------------------------------------------

    async def write(
        self,
        *,
        tenant: str,
        batch_id: str,
        series_id: npt.NDArray[np.int64],
        time_unix_nano: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> bool:
        time_micro = unix_nanos_to_micros(time_unix_nano)
        payload = memoryview(encode_samples(series_id, time_micro, value))  # not bytes: a path to asyncpg
        days = set(np.unique(time_micro // MICROS_PER_DAY).tolist())
        async with self._database.connection() as connection:
            await self._ensure_partitions(connection, days)
            try:
                written = await self._commit(connection, tenant, batch_id, len(value), payload)
            except asyncpg.CheckViolationError:
                # No partition for a row: another replica's retention dropped a day we thought we
                # had. Forget what we know and try once more.
                self._known_days.clear()
                await self._ensure_partitions(connection, days)
                written = await self._commit(connection, tenant, batch_id, len(value), payload)
        if written:
            self._note_extents(series_id, time_micro)
        return written

    async def _commit(
        self, connection: asyncpg.Connection, tenant: str, batch_id: str, count: int, payload: memoryview
    ) -> bool:
        # The batch id and its rows commit together. A concurrent retry of the same batch blocks
        # on the primary key until this transaction ends, then finds the id and writes nothing.
        async with connection.transaction():
            fresh = await connection.fetchval(
                "INSERT INTO ingest_batches (tenant_id, batch_id, point_count) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING true",
                tenant,
                batch_id,
                count,
            )
            if not fresh:
                return False
            await connection.copy_to_table(
                "samples", source=payload, columns=["series_id", "time", "value"], format="binary"
            )
        return True

    async def _ensure_partitions(self, connection: asyncpg.Connection, days: set[int]) -> None:
        new = sorted(days - self._known_days)
        if not new:
            return
        async with connection.transaction():
            # Replicas create partitions one at a time; IF NOT EXISTS makes the loser a no-op.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK_ID)
            for day in new:
                start, end = (_timestamp(bound).isoformat() for bound in day_bounds_micro(day))
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF samples "
                    f"FOR VALUES FROM ('{start}') TO ('{end}')"
                )
        self._known_days.update(new)

    def _note_extents(self, series_id: npt.NDArray[np.int64], time_micro: npt.NDArray[np.int64]) -> None:
        unique, inverse = np.unique(series_id, return_inverse=True)
        first = np.full(len(unique), np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(len(unique), np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(first, inverse, time_micro)
        np.maximum.at(last, inverse, time_micro)
        for sid, lo, hi in zip(unique.tolist(), first.tolist(), last.tolist(), strict=True):
            extent = self._extents.get(sid)
            if extent is None:
                self._extents[sid] = [lo, hi]
            else:
                extent[0] = min(extent[0], lo)
                extent[1] = max(extent[1], hi)

    # -- maintenance ----------------------------------------------------------------------------

    async def flush_extents(self) -> int:
        """Write the pending first/last sample times to `series`; returns the series updated."""
        if not self._extents:
            return 0
        pending, self._extents = self._extents, {}
        ids = sorted(pending)
        try:
            async with self._database.connection() as connection:
                await connection.execute(
                    """
                    UPDATE series s
                    SET first_sample_time = least(s.first_sample_time, u.first_time),
                        last_sample_time = greatest(s.last_sample_time, u.last_time)
                    FROM (
                        SELECT id,
                               'epoch'::timestamptz + first_us * interval '1 microsecond' AS first_time,
                               'epoch'::timestamptz + last_us * interval '1 microsecond' AS last_time
                        FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(id, first_us, last_us)
                    ) u
                    WHERE s.series_id = u.id
                      AND (s.first_sample_time IS NULL OR u.first_time < s.first_sample_time
                           OR s.last_sample_time IS NULL OR u.last_time > s.last_sample_time)
                    """,
                    ids,
                    [pending[i][0] for i in ids],
                    [pending[i][1] for i in ids],
                )
        except BaseException:
            for sid, (lo, hi) in pending.items():  # keep them for the next flush
                extent = self._extents.setdefault(sid, [lo, hi])
                extent[0], extent[1] = min(extent[0], lo), max(extent[1], hi)
            raise
        return len(ids)

    async def index_closed_partitions(self) -> list[str]:
        """Build the (series_id, time) btree of every partition whose day ended over an hour ago."""
        now_micro = (self._clock.now() - _EPOCH) // timedelta(microseconds=1)
        built: list[str] = []
        async with self._database.connection() as connection:
            mark_session_state(connection)
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _INDEX_LOCK_ID):
                return built  # another replica is at it
            try:
                rows = await connection.fetch(
                    """
                    SELECT c.relname, ix.indisvalid
                    FROM pg_inherits i
                    JOIN pg_class c ON c.oid = i.inhrelid
                    LEFT JOIN pg_class ic ON ic.relname = c.relname || '_series_time_idx'
                                         AND ic.relnamespace = c.relnamespace
                    LEFT JOIN pg_index ix ON ix.indexrelid = ic.oid
                    WHERE i.inhparent = 'samples'::regclass AND ix.indisvalid IS DISTINCT FROM true
                    """
                )
                for row in rows:
                    day = day_of_name(row["relname"])
                    if day is None or day_bounds_micro(day)[1] + _INDEX_AFTER_MICRO > now_micro:
                        continue
                    index = _quoted(f"{row['relname']}_series_time_idx")
                    if row["indisvalid"] is False:  # an interrupted concurrent build
                        await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
                    await connection.execute(
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} "
                        f"ON {_quoted(row['relname'])} (series_id, time)"
                    )
                    built.append(row["relname"])
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _INDEX_LOCK_ID)
        return built

    # -- queries --------------------------------------------------------------------------------

    async def query(self, *, tenant: str, plan: QueryPlan) -> QueryPage:
        cursor = plan.cursor
        async with self._database.connection() as connection:
            with _bad_regex_is_invalid("matchers.matchers"):
                series = await self._page_series(connection, tenant, plan)
                if not series:
                    return QueryPage(())
                in_page = series[: plan.page_size]
                rows = await self._points(connection, plan, [s.series_id for s in in_page])
        skip = cursor.skip if cursor is not None and cursor.time_unix_micro is not None else 0
        sids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))[skip:]
        times = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))[skip:]
        values = np.fromiter((row[2] for row in rows), dtype=np.float64, count=len(rows))[skip:]
        token = ""
        if len(sids) > plan.max_points:
            cut = plan.max_points
            next_sid, next_time = int(sids[cut]), int(times[cut])
            same = int(np.count_nonzero((sids[:cut] == next_sid) & (times[:cut] == next_time)))
            if cursor is not None and (cursor.series_id, cursor.time_unix_micro) == (next_sid, next_time):
                same += cursor.skip
            token = encode_token(Cursor(next_sid, next_time, same, plan.fingerprint))
            sids, times, values = sids[:cut], times[:cut], values[:cut]
        elif len(series) > plan.page_size:
            token = encode_token(Cursor(series[plan.page_size].series_id, None, 0, plan.fingerprint))
        starts = np.searchsorted(sids, [s.series_id for s in in_page], side="left")
        ends = np.searchsorted(sids, [s.series_id for s in in_page], side="right")
        # A named series is always answered (even without points); matched ones only with points.
        named = isinstance(plan.selector, ByKey | ById) and cursor is None
        results = tuple(
            SeriesPoints(s.series_id, s.key, times[lo:hi] * 1_000, values[lo:hi])
            for s, lo, hi in zip(in_page, starts.tolist(), ends.tolist(), strict=True)
            if hi > lo or named
        )
        return QueryPage(results, token)

    async def _page_series(
        self, connection: asyncpg.Connection, tenant: str, plan: QueryPlan
    ) -> list[_Series]:
        args: list[Any] = [tenant]
        selector = plan.selector
        if isinstance(selector, ByKey):
            args.append(series_hash(tenant, selector.key))
            where = "series_hash = $2"
        elif isinstance(selector, ById):
            args.append(selector.series_id)
            where = "series_id = $2"
        else:
            where = " AND ".join(compile_matchers(selector.matchers, args))
            if plan.cursor is None:
                matched = await connection.fetchval(
                    f"SELECT count(*) FROM (SELECT 1 FROM series WHERE tenant_id = $1 AND {where} "
                    f"LIMIT {plan.max_series + 1}) m",
                    *args,
                )
                if matched > plan.max_series:
                    raise ResourceExhaustedError(
                        f"the matchers select more than {plan.max_series} series; narrow them or raise "
                        "max_series",
                        reason="TOO_MANY_SERIES",
                    )
        first = 1 if plan.cursor is None else plan.cursor.series_id
        args.append(first)
        rows = await connection.fetch(
            f"SELECT series_id, name, labels::text AS labels FROM series "
            f"WHERE tenant_id = $1 AND {where} AND series_id >= ${len(args)} "
            f"ORDER BY series_id LIMIT {plan.page_size + 1}",
            *args,
        )
        if not rows and plan.cursor is None and isinstance(selector, ByKey | ById):
            raise NotFoundError("no such series for this tenant", reason="SERIES_NOT_FOUND")
        return [_Series(row["series_id"], _key(row["name"], row["labels"])) for row in rows]

    async def _points(self, connection: asyncpg.Connection, plan: QueryPlan, ids: list[int]) -> list[Any]:
        args: list[Any] = [ids, _timestamp(plan.start_unix_micro), _timestamp(plan.end_unix_micro)]
        resume = ""
        cursor = plan.cursor
        skip = 0
        if cursor is not None and cursor.time_unix_micro is not None:
            args += [cursor.series_id, _timestamp(cursor.time_unix_micro)]
            resume = "AND (series_id > $4 OR time >= $5)"
            skip = cursor.skip
        limit = plan.max_points + skip + 1
        if plan.aggregation is Aggregation.NONE:
            sql = f"""
                SELECT series_id, {_MICROS.format("time")} AS t, value FROM samples
                WHERE series_id = ANY($1::bigint[]) AND time >= $2 AND time < $3 {resume}
                ORDER BY series_id, time, value LIMIT {limit}
            """
        else:
            args += [timedelta(microseconds=plan.bucket_width_micro), _timestamp(plan.bucket_origin_micro)]
            width, origin = len(args) - 1, len(args)
            sql = f"""
                SELECT series_id, {_MICROS.format("bucket")} AS t, {_AGGREGATE_SQL[plan.aggregation]} AS value
                FROM (
                    SELECT series_id, date_bin(${width}, time, ${origin}) AS bucket, time, value
                    FROM samples
                    WHERE series_id = ANY($1::bigint[]) AND time >= $2 AND time < $3 {resume}
                ) s
                GROUP BY series_id, bucket ORDER BY series_id, bucket LIMIT {limit}
            """
        return list(await connection.fetch(sql, *args))

    async def list_series(self, *, tenant: str, plan: ListPlan) -> SeriesPage:
        args: list[Any] = [tenant, plan.after_series_id]
        where = ["tenant_id = $1", "series_id > $2", *compile_matchers(plan.matchers, args)]
        if plan.start_unix_micro is not None:
            args.append(_timestamp(plan.start_unix_micro))
            where.append(f"last_sample_time >= ${len(args)}")
        if plan.end_unix_micro is not None:
            args.append(_timestamp(plan.end_unix_micro))
            where.append(f"first_sample_time < ${len(args)}")
        async with self._database.connection() as connection:
            with _bad_regex_is_invalid("matchers"):
                rows = await connection.fetch(
                    f"SELECT series_id, name, labels::text AS labels, "
                    f"{_MICROS.format('first_sample_time')} AS first_us, "
                    f"{_MICROS.format('last_sample_time')} AS last_us "
                    f"FROM series WHERE {' AND '.join(where)} ORDER BY series_id LIMIT {plan.page_size + 1}",
                    *args,
                )
        token = ""
        if len(rows) > plan.page_size:
            token = encode_token(Cursor(rows[plan.page_size]["series_id"], query=plan.fingerprint))
        return SeriesPage(
            tuple(
                SeriesInfo(
                    series_id=row["series_id"],
                    key=_key(row["name"], row["labels"]),
                    first_sample_unix_nano=None if row["first_us"] is None else row["first_us"] * 1_000,
                    last_sample_unix_nano=None if row["last_us"] is None else row["last_us"] * 1_000,
                )
                for row in rows[: plan.page_size]
            ),
            token,
        )

    # -- retention ------------------------------------------------------------------------------

    async def apply_retention(self, *, cutoff_unix_micro: int, dry_run: bool) -> tuple[Partition, ...]:
        async with self._database.connection() as connection:
            mark_session_state(connection)
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _RETENTION_LOCK_ID):
                raise ResourceExhaustedError(
                    "another retention pass is running; retry later", reason="RETENTION_RUNNING"
                )
            try:
                rows = await connection.fetch(
                    """
                    SELECT c.relname, greatest(c.reltuples, 0)::bigint AS rows,
                           pg_total_relation_size(c.oid) AS size
                    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'samples'::regclass
                    """
                )
                expired: list[tuple[int, Partition]] = []
                for row in rows:
                    day = day_of_name(row["relname"])
                    if day is None:
                        continue
                    start, end = day_bounds_micro(day)
                    if end <= cutoff_unix_micro:
                        expired.append((day, Partition(row["relname"], start, end, row["rows"], row["size"])))
                expired.sort(key=lambda item: item[0])
                if not dry_run:
                    for day, partition in expired:
                        async with connection.transaction():
                            # Wait briefly for writers; a busy partition fails the pass (retryable).
                            await connection.execute("SET LOCAL lock_timeout = '10s'")
                            await connection.execute(f"DROP TABLE IF EXISTS {_quoted(partition.name)}")
                        self._known_days.discard(day)
                        logger.info(
                            "dropped partition %s", partition.name, extra={"partition": partition.name}
                        )
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _RETENTION_LOCK_ID)
        return tuple(partition for _, partition in expired)


class _Series:
    __slots__ = ("key", "series_id")

    def __init__(self, series_id: int, key: SeriesKey) -> None:
        self.series_id = series_id
        self.key = key


def _key(name: str, labels_json: str) -> SeriesKey:
    labels: dict[str, str] = json.loads(labels_json)
    return SeriesKey.of(name, labels)


def compile_matchers(matchers: Sequence[LabelMatcher], args: list[Any]) -> list[str]:
    """SQL conditions on `series` (name, labels jsonb) for matchers; values are appended to `args`.

    An absent label compares as "". EQUAL with a non-empty value uses jsonb containment, which the
    GIN index (jsonb_path_ops) serves; regexes are anchored to match the whole value.
    """
    conditions = []
    for matcher in matchers:

        def bind(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if matcher.operator is MatchOperator.EQUAL and matcher.name != NAME_LABEL and matcher.value:
            conditions.append(f"labels @> {bind(json.dumps({matcher.name: matcher.value}))}::jsonb")
            continue
        subject = "name" if matcher.name == NAME_LABEL else f"coalesce(labels ->> {bind(matcher.name)}, '')"
        if matcher.operator is MatchOperator.EQUAL:
            conditions.append(f"{subject} = {bind(matcher.value)}")
        elif matcher.operator is MatchOperator.NOT_EQUAL:
            conditions.append(f"{subject} <> {bind(matcher.value)}")
        elif matcher.operator is MatchOperator.REGEX:
            conditions.append(f"{subject} ~ {bind(anchored(matcher.value))}")
        else:
            conditions.append(f"{subject} !~ {bind(anchored(matcher.value))}")
    return conditions


@contextlib.contextmanager
def _bad_regex_is_invalid(field: str) -> Iterator[None]:
    # Python's `re` validated the syntax; PostgreSQL's engine may still refuse a construct.
    try:
        yield
    except asyncpg.InvalidRegularExpressionError as exc:
        raise InvalidArgumentError(field, f"invalid regular expression: {exc}") from None


class Maintenance:
    """Background upkeep: flush series extents, index closed partitions; at stop, a last flush."""

    def __init__(self, samples: PostgresSamples, *, interval_s: float, index_closed_partitions: bool) -> None:
        self._samples = samples
        self._interval_s = interval_s
        self._index = index_closed_partitions
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="storage-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._samples.flush_extents()
        except Exception:
            logger.warning("final flush of series extents failed", exc_info=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self._samples.flush_extents()
                if self._index:
                    built = await self._samples.index_closed_partitions()
                    if built:
                        logger.info("indexed closed partitions", extra={"partitions": built})
            except Exception:
                logger.warning("storage maintenance failed; retrying next round", exc_info=True)


class PostgresAnomalies:
    """Anomalies in `anomalies`: batch upserts by (tenant, anomaly_id), keyset-paged listings."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def write(self, *, tenant: str, anomalies: Sequence[AnomalyRecord]) -> AnomalyWriteResult:
        def micros(unix_nano: int | None) -> int | None:
            return None if unix_nano is None else unix_nano // 1_000

        # Rows sorted by id so that concurrent writers lock them in the same order.
        rows = sorted(anomalies, key=lambda a: a.anomaly_id)
        async with self._database.connection() as connection:
            result = await connection.fetch(
                """
                INSERT INTO anomalies (tenant_id, anomaly_id, name, labels, series_hash, start_time,
                    peak_time, end_time, value, baseline, score, severity, anomaly_type,
                    contributions, explanation, point_count)
                SELECT $1, t.id, t.name, t.labels::jsonb, t.hash,
                       'epoch'::timestamptz + t.start_us * interval '1 microsecond',
                       'epoch'::timestamptz + t.peak_us * interval '1 microsecond',
                       'epoch'::timestamptz + t.end_us * interval '1 microsecond',
                       t.value, t.baseline, t.score, t.severity, t.anomaly_type,
                       t.contributions::jsonb, t.explanation, t.point_count
                FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], $7::bigint[],
                            $8::bigint[], $9::float8[], $10::float8[], $11::float8[], $12::int2[],
                            $13::int2[], $14::text[], $15::text[], $16::int4[])
                     AS t(id, name, labels, hash, start_us, peak_us, end_us, value, baseline, score,
                          severity, anomaly_type, contributions, explanation, point_count)
                ON CONFLICT (tenant_id, anomaly_id) DO UPDATE SET
                    peak_time = EXCLUDED.peak_time, end_time = EXCLUDED.end_time,
                    value = EXCLUDED.value, baseline = EXCLUDED.baseline, score = EXCLUDED.score,
                    severity = EXCLUDED.severity, anomaly_type = EXCLUDED.anomaly_type,
                    contributions = EXCLUDED.contributions, explanation = EXCLUDED.explanation,
                    point_count = EXCLUDED.point_count, updated_at = now()
                RETURNING (xmax = 0) AS inserted
                """,
                tenant,
                [a.anomaly_id for a in rows],
                [a.series.name for a in rows],
                [json.dumps(a.series.label_map, ensure_ascii=False) for a in rows],
                [series_hash(tenant, a.series) for a in rows],
                [micros(a.start_unix_nano) for a in rows],
                [micros(a.peak_unix_nano) for a in rows],
                [micros(a.end_unix_nano) for a in rows],
                [a.value for a in rows],
                [a.baseline for a in rows],
                [a.score for a in rows],
                [a.severity for a in rows],
                [a.anomaly_type for a in rows],
                [_contributions_json(a.contributions) for a in rows],
                [a.explanation for a in rows],
                [a.point_count for a in rows],
            )
        inserted = sum(1 for row in result if row["inserted"])
        return AnomalyWriteResult(inserted=inserted, updated=len(result) - inserted)

    async def list(self, *, tenant: str, plan: AnomalyListPlan) -> AnomalyPage:
        args: list[Any] = [tenant]

        def bind(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        where = ["tenant_id = $1", *compile_matchers(plan.matchers, args)]
        if plan.series_id is not None:
            where.append(
                f"series_hash = (SELECT series_hash FROM series WHERE tenant_id = $1 "
                f"AND series_id = {bind(plan.series_id)})"
            )
        if plan.end_unix_micro is not None:
            where.append(f"start_time < {bind(_timestamp(plan.end_unix_micro))}")
        if plan.start_unix_micro is not None:
            # An open episode (no end yet) overlaps everything after its start.
            where.append(f"coalesce(end_time, 'infinity') >= {bind(_timestamp(plan.start_unix_micro))}")
        if plan.severities:
            where.append(f"severity = ANY({bind(list(plan.severities))}::int2[])")
        if plan.anomaly_types:
            where.append(f"anomaly_type = ANY({bind(list(plan.anomaly_types))}::int2[])")
        if plan.min_score > 0:
            where.append(f"score >= {bind(plan.min_score)}")
        if plan.cursor is not None:
            where.append(
                f"(start_time, anomaly_id) < ({bind(_timestamp(plan.cursor.start_unix_micro))}, "
                f"{bind(plan.cursor.anomaly_id)})"
            )
        async with self._database.connection() as connection:
            with _bad_regex_is_invalid("matchers"):
                rows = await connection.fetch(
                    f"""
                    SELECT anomaly_id, name, labels::text AS labels,
                           {_MICROS.format("start_time")} AS start_us,
                           {_MICROS.format("peak_time")} AS peak_us,
                           {_MICROS.format("end_time")} AS end_us,
                           value, baseline, score, severity, anomaly_type,
                           contributions::text AS contributions, explanation, point_count
                    FROM anomalies WHERE {" AND ".join(where)}
                    ORDER BY start_time DESC, anomaly_id DESC LIMIT {plan.page_size + 1}
                    """,
                    *args,
                )
        token = ""
        if len(rows) > plan.page_size:
            last = rows[plan.page_size - 1]
            token = encode_anomaly_token(
                AnomalyCursor(last["start_us"], last["anomaly_id"]), plan.fingerprint
            )

        def nanos(micro: int | None) -> int | None:
            return None if micro is None else micro * 1_000

        return AnomalyPage(
            tuple(
                AnomalyRecord(
                    anomaly_id=row["anomaly_id"],
                    series=_key(row["name"], row["labels"]),
                    start_unix_nano=nanos(row["start_us"]),
                    peak_unix_nano=nanos(row["peak_us"]),
                    end_unix_nano=nanos(row["end_us"]),
                    value=row["value"],
                    baseline=row["baseline"],
                    score=row["score"],
                    severity=row["severity"],
                    anomaly_type=row["anomaly_type"],
                    contributions=tuple(
                        Contribution(d, float(s), float(w), float(st))
                        for d, s, w, st in json.loads(row["contributions"])
                    ),
                    explanation=row["explanation"],
                    point_count=row["point_count"],
                )
                for row in rows[: plan.page_size]
            ),
            token,
        )


def _contributions_json(contributions: Sequence[Contribution]) -> str:
    return json.dumps(
        [
            [c.detector, _json_float(c.score), _json_float(c.weight), _json_float(c.statistic)]
            for c in contributions
        ]
    )


def _json_float(value: float) -> float | str:
    # JSON has no NaN or infinities; keep them as strings that float() reads back.
    return value if math.isfinite(value) else str(value)
