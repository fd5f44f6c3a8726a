"""Incident changes through one Redis stream per tenant, feeding WatchIncidents on every replica.

The in-process feed only shows a watcher the changes made by the replica it is connected to; the
Helm chart runs two. Here every replica appends its changes to `<namespace>:feed:<tenant>` (XADD)
and every watcher reads that stream (XREAD BLOCK) from its own position, so a watcher sees every
replica's changes, in the order Redis received them, and its cursor (the stream entry id) survives
a restart of the replica it was connected to.

Publishing never blocks the use case: changes go to a bounded queue that one writer task drains
into pipelined XADDs. A change that cannot be written (queue full, Redis down past the retries) is
counted in `sentinel_incident_feed_dropped_total` and logged; incidents themselves are in
PostgreSQL, the feed only tells watchers about them.

The stream keeps its newest `max_len` entries and expires `retention_s` after the tenant's last
change. Beside it, `<key>:lost` (kept without expiry) holds the id up to which changes may have been
dropped: the newest trimmed id after a trim, the new first id when an expired stream is written
again. A cursor below that mark gets CURSOR_EXPIRED (a live watcher WATCH_LAGGED); any other cursor
is known to have lost nothing. Appends and trims run as Lua scripts, so the mark moves with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.incident_manager.domain.model import IncidentChange
from sentinel.incident_manager.grpc import convert
from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError

logger = logging.getLogger(__name__)

FEED_DROPPED = Counter(
    "sentinel_incident_feed_dropped_total",
    "Incident changes not written to the Redis watch feed (queue full or Redis unreachable).",
    ["reason"],
)

_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")
_START = "0-0"
_FIELD = b"e"

# KEYS[1] stream, KEYS[2] loss mark; ARGV[1] ttl seconds, ARGV[2..] encoded changes.
_APPEND = """
local existed = redis.call('EXISTS', KEYS[1])
local first
for i = 2, #ARGV do
  local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
  first = first or id
end
if existed == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('SET', KEYS[2], first)
  else
    redis.call('SET', KEYS[2], '0-0')
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return first
"""

# KEYS[1] stream, KEYS[2] loss mark; ARGV[1] entries to keep.
_TRIM = """
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
redis.call('SET', KEYS[2], oldest[#oldest][1])
return excess
"""


def _parse_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _StreamSubscription:
    """One watcher's position in its tenant's stream."""

    def __init__(self, feed: RedisStreamFeed, tenant: str, resume_cursor: str) -> None:
        self._feed = feed
        self._tenant = tenant
        self._key = feed.stream_key(tenant)
        self._resume_cursor = resume_cursor
        self._cursor = resume_cursor
        self._started = False
        self._pending: deque[IncidentChange] = deque()

    @property
    def cursor(self) -> str:
        return self._cursor

    async def next(self, timeout_s: float) -> IncidentChange | None:
        try:
            if not self._started:
                await self._start()
            if not self._pending:
                await self._read(timeout_s)
        except RedisError as exc:
            raise UnavailableError(
                f"the watch feed (Redis) is unreachable: {exc}; reconnect with the last cursor",
                reason="WATCH_FEED_UNAVAILABLE",
            ) from exc
        if not self._pending:
            return None
        change = self._pending.popleft()
        self._cursor = change.cursor
        return change

    def close(self) -> None:
        # Nothing is held between reads: a blocked XREAD ends when the watcher's task is cancelled.
        self._pending.clear()

    async def _start(self) -> None:
        if self._resume_cursor:
            await self._check_nothing_lost(self._resume_cursor, lagged=False)
        else:
            async with self._feed.redis.pipeline(transaction=False) as pipe:
                pipe.xrevrange(self._key, count=1)
                pipe.get(self._feed.loss_mark_key(self._key))
                newest, mark = cast(
                    tuple[list[tuple[bytes, dict[bytes, bytes]]], bytes | None], await pipe.execute()
                )
            # No stream: start at its loss mark, which is where its next life will be readable from.
            self._cursor = _text(newest[0][0]) if newest else _text(mark) if mark else _START
        self._started = True

    async def _read(self, timeout_s: float) -> None:
        block_ms = max(1, int(timeout_s * 1000))
        answer = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
            await self._feed.redis.xread(
                {self._key: self._cursor}, count=self._feed.read_batch, block=block_ms
            ),
        )
        entries = [entry for _, stream_entries in answer for entry in stream_entries]
        if not entries:
            return
        # The entries just read start after our cursor; if trimming (or expiry) passed the cursor
        # meanwhile, some changes between them are gone and the watcher must re-list.
        await self._check_nothing_lost(self._cursor, lagged=True)
        self._pending.extend(
            self._feed.decode(self._tenant, entry_id, fields) for entry_id, fields in entries
        )

    async def _check_nothing_lost(self, cursor: str, *, lagged: bool) -> None:
        raw_mark = await self._feed.redis.get(self._feed.loss_mark_key(self._key))
        mark = _START if raw_mark is None else _text(raw_mark)
        # Never written: only the start cursor is valid. At or past the mark nothing was dropped
        # while the stream lives; an expired stream dropped everything but the cursor handed out
        # after it (its mark).
        never_written = raw_mark is None and cursor == _START
        past_mark = raw_mark is not None and _parse_id(cursor) >= _parse_id(mark)
        if never_written or (
            past_mark and (lagged or cursor == mark or await self._feed.redis.exists(self._key))
        ):
            return
        if lagged:
            raise UnavailableError(
                "the watch fell behind the stream's retention; list incidents and watch anew",
                reason="WATCH_LAGGED",
            )
        raise FailedPreconditionError(
            "resume_cursor is outside the retained changes; list incidents and watch without a cursor",
            reason="CURSOR_EXPIRED",
        )


class RedisStreamFeed:
    """Broadcasts incident changes to the watchers of every replica through Redis streams."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = "sentinel:incident",
        max_len: int = 10_000,
        retention_s: int = 7 * 24 * 3600,
        queue_size: int = 10_000,
        read_batch: int = 256,
        write_batch: int = 512,
        retry_delays_s: Sequence[float] = (0.05, 0.2, 1.0),
    ) -> None:
        self.redis = client
        self.read_batch = read_batch
        self._namespace = namespace
        self._max_len = max_len
        self._retention_s = retention_s
        self._write_batch = write_batch
        self._retry_delays_s = tuple(retry_delays_s)
        self._queue: asyncio.Queue[IncidentChange] = asyncio.Queue(queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._append_script = client.register_script(_APPEND)
        self._trim = client.register_script(_TRIM)
        # Appends since the last trim per stream: trimming runs once per tenth of max_len appends.
        self._appended: dict[str, int] = {}

    def stream_key(self, tenant: str) -> str:
        """The tenant's stream."""
        return f"{self._namespace}:feed:{tenant}"

    @staticmethod
    def loss_mark_key(stream_key: str) -> str:
        """Where the id up to which `stream_key` may have dropped changes is kept."""
        return f"{stream_key}:lost"

    async def start(self) -> None:
        """Check Redis answers and start the writer."""
        await self.redis.ping()
        self._writer = asyncio.create_task(self._write_forever(), name="incident-feed-writer")

    async def close(self, *, drain_timeout_s: float = 2.0) -> None:
        """Write what is queued (for at most `drain_timeout_s`), then stop."""
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_timeout_s)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.redis.aclose()

    def publish(self, change: IncidentChange) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            FEED_DROPPED.labels("queue_full").inc()
            logger.warning("watch feed queue full: a change of tenant %s was not published", change.tenant)

    def subscribe(self, *, tenant: str, resume_cursor: str = "") -> _StreamSubscription:
        if resume_cursor and not _CURSOR.match(resume_cursor):
            raise InvalidArgumentError("resume_cursor", "is not a cursor from this API")
        return _StreamSubscription(self, tenant, resume_cursor)

    def decode(self, tenant: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> IncidentChange:
        """The change stored in one stream entry, its cursor set to the entry id."""
        event = res.IncidentEvent.FromString(fields[_FIELD])
        return convert.change_from_event(event, tenant=tenant, cursor=_text(entry_id))

    @staticmethod
    def encode(change: IncidentChange) -> bytes:
        """What one stream entry holds: the change as the watch API's IncidentEvent."""
        return convert.event_to_proto(change).event.SerializeToString()

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._write_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[IncidentChange]) -> None:
        by_key: dict[str, list[bytes]] = {}
        for change in batch:
            by_key.setdefault(self.stream_key(change.tenant), []).append(self.encode(change))
        for attempt, delay_s in enumerate((*self._retry_delays_s, None)):
            try:
                await self._append(by_key)
                break
            except RedisError as exc:
                if delay_s is None:
                    FEED_DROPPED.labels("redis_error").inc(len(batch))
                    logger.error(
                        "watch feed: %d changes not published after %d attempts: %s",
                        len(batch),
                        attempt + 1,
                        exc,
                    )
                    return
                await asyncio.sleep(delay_s)
        # Trimming is housekeeping apart from the append: its failure must not re-send the batch.
        for key, encoded in by_key.items():
            self._appended[key] = self._appended.get(key, 0) + len(encoded)
            if self._appended[key] * 10 >= self._max_len:
                try:
                    await self._trim(keys=[key, self.loss_mark_key(key)], args=[self._max_len])
                    self._appended[key] = 0
                except RedisError as exc:
                    logger.warning(
                        "watch feed: trimming %s failed (%s); retried after more appends", key, exc
                    )

    async def _append(self, by_key: dict[str, list[bytes]]) -> None:
        # One MULTI/EXEC: the batch lands whole or not at all, so a retry never duplicates changes.
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, encoded in by_key.items():
                await self._append_script(
                    keys=[key, self.loss_mark_key(key)], args=[self._retention_s, *encoded], client=pipe
                )
            await pipe.execute()
