"""The Redis stream watch feed against a real Redis: replicas, resume, trimming, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from sentinel.incident_manager.adapters.redis_feed import FEED_DROPPED, RedisStreamFeed
from sentinel.incident_manager.domain.model import (
    ChangeType,
    Incident,
    IncidentChange,
    IncidentState,
    Priority,
    Severity,
    TimelineEntry,
    TimelineKind,
)
from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def incident(number: int) -> Incident:
    return Incident(
        incident_id=f"inc_{number}",
        title=f"latency of chat-api #{number}",
        state=IncidentState.ACKNOWLEDGED,
        severity=Severity.HIGH,
        priority=Priority.P1,
        group_key="g1",
        create_time=NOW,
        update_time=NOW,
        service="chat-api",
        model="gpt-x",
        labels={"env": "prod"},
        alert_count=number,
        assignees=("ana",),
        version=number,
    )


def change(number: int, tenant: str = "t") -> IncidentChange:
    entry = TimelineEntry(
        entry_id=f"tl_{number}",
        incident_id=f"inc_{number}",
        event_time=NOW,
        kind=TimelineKind.NOTE_ADDED,
        actor="ana",
        message=f"note {number}",
    )
    return IncidentChange(tenant, ChangeType.UPDATED, NOW, incident(number), (entry,))


@pytest.fixture
async def feeds(redis_url: str, redis_namespace: str) -> AsyncIterator[list[RedisStreamFeed]]:
    """Two replicas' feeds on one Redis namespace (trimming at 100 changes)."""
    started = [
        RedisStreamFeed(aioredis.Redis.from_url(redis_url), namespace=redis_namespace, max_len=100)
        for _ in range(2)
    ]
    for feed in started:
        await feed.start()
    yield started
    for feed in started:
        await feed.close()


async def flushed(feed: RedisStreamFeed) -> None:
    await feed._queue.join()


async def test_a_watcher_on_one_replica_sees_another_replicas_changes_in_order(
    feeds: list[RedisStreamFeed],
) -> None:
    writer, reader = feeds
    watcher = reader.subscribe(tenant="t")
    other_tenant = reader.subscribe(tenant="u")
    assert await watcher.next(0.05) is None  # positions the watcher at the stream's head
    assert await other_tenant.next(0.05) is None
    for number in range(1, 4):
        writer.publish(change(number))
    await flushed(writer)

    seen = [await watcher.next(1.0) for _ in range(3)]
    assert [c.incident.alert_count for c in seen if c and c.incident] == [1, 2, 3]
    first = seen[0]
    assert first is not None and first.incident == incident(1) and first.tenant == "t"
    assert [e.message for e in first.entries] == ["note 1"]
    last = seen[2]
    assert last is not None and watcher.cursor == last.cursor
    assert await other_tenant.next(0.05) is None


async def test_a_cursor_resumes_on_a_restarted_replica(
    feeds: list[RedisStreamFeed], redis_url: str, redis_namespace: str
) -> None:
    writer = feeds[0]
    for number in range(1, 4):
        writer.publish(change(number))
    await flushed(writer)
    watcher = writer.subscribe(tenant="t", resume_cursor="0-0")
    first = await watcher.next(1.0)
    assert first is not None

    restarted = RedisStreamFeed(aioredis.Redis.from_url(redis_url), namespace=redis_namespace)
    await restarted.start()
    try:
        resumed = restarted.subscribe(tenant="t", resume_cursor=first.cursor)
        rest = [await resumed.next(1.0), await resumed.next(1.0)]
        assert [c.incident.alert_count for c in rest if c and c.incident] == [2, 3]
        assert await resumed.next(0.05) is None
    finally:
        await restarted.close()


async def test_cursors_before_the_trimmed_changes_expire_and_later_ones_resume(
    feeds: list[RedisStreamFeed],
) -> None:
    writer = feeds[0]
    watcher = writer.subscribe(tenant="t")
    assert await watcher.next(0.05) is None
    writer.publish(change(1))
    await flushed(writer)
    early = await watcher.next(1.0)
    assert early is not None
    for number in range(2, 302):
        writer.publish(change(number))
    await flushed(writer)

    with pytest.raises(FailedPreconditionError) as expired:
        await writer.subscribe(tenant="t", resume_cursor=early.cursor).next(0.05)
    assert expired.value.reason == "CURSOR_EXPIRED"
    # The watcher still at `early` fell behind the retention: told to re-list, not given a gap.
    with pytest.raises(UnavailableError) as lagged:
        await watcher.next(0.05)
    assert lagged.value.reason == "WATCH_LAGGED"

    newest = [entry async for entry in _entries(writer, "t")]
    assert 100 <= len(newest) < 301
    recent = writer.subscribe(tenant="t", resume_cursor=newest[-3])
    replayed = [await recent.next(1.0), await recent.next(1.0), await recent.next(0.05)]
    assert [c.incident.alert_count for c in replayed if c and c.incident] == [300, 301]


async def _entries(feed: RedisStreamFeed, tenant: str) -> AsyncIterator[str]:
    for entry_id, _ in await feed.redis.xrange(feed.stream_key(tenant)):
        yield entry_id.decode()


async def test_a_cursor_of_an_expired_stream_expires_when_the_tenant_writes_again(
    feeds: list[RedisStreamFeed],
) -> None:
    writer = feeds[0]
    fresh = writer.subscribe(tenant="t")
    assert await fresh.next(0.05) is None  # no stream yet: positioned at its start
    writer.publish(change(1))
    await flushed(writer)
    first = await fresh.next(1.0)
    assert first is not None and first.incident is not None and first.incident.alert_count == 1

    await writer.redis.delete(writer.stream_key("t"))  # what retention_s of idleness does
    idle = writer.subscribe(tenant="t")
    assert await idle.next(0.05) is None
    with pytest.raises(FailedPreconditionError):
        await writer.subscribe(tenant="t", resume_cursor=first.cursor).next(0.05)
    writer.publish(change(2))
    await flushed(writer)

    with pytest.raises(FailedPreconditionError) as expired:
        await writer.subscribe(tenant="t", resume_cursor=first.cursor).next(0.05)
    assert expired.value.reason == "CURSOR_EXPIRED"
    with pytest.raises(UnavailableError):  # was connected across the expiry: told to re-list
        await fresh.next(1.0)
    resumed = writer.subscribe(tenant="t", resume_cursor=idle.cursor)
    with pytest.raises(FailedPreconditionError):  # positioned while no stream existed: before this life
        await resumed.next(1.0)
    current = writer.subscribe(tenant="t")
    assert await current.next(0.05) is None
    writer.publish(change(3))
    await flushed(writer)
    third = await current.next(1.0)
    assert third is not None and third.incident is not None and third.incident.alert_count == 3


async def test_bad_and_unknown_cursors_are_refused(feeds: list[RedisStreamFeed]) -> None:
    with pytest.raises(InvalidArgumentError):
        feeds[0].subscribe(tenant="t", resume_cursor="abc-1")
    with pytest.raises(FailedPreconditionError):
        await feeds[0].subscribe(tenant="nobody", resume_cursor="1700000000000-0").next(0.05)
    assert await feeds[0].subscribe(tenant="nobody", resume_cursor="0-0").next(0.05) is None


async def test_an_unreachable_redis_is_unavailable_to_watchers_and_counted_for_publishers() -> None:
    feed = RedisStreamFeed(
        aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
        retry_delays_s=(0.01,),
    )
    feed._writer = None
    with pytest.raises(UnavailableError) as down:
        await feed.subscribe(tenant="t").next(0.05)
    assert down.value.reason == "WATCH_FEED_UNAVAILABLE"

    before = FEED_DROPPED.labels("redis_error")._value.get()
    await feed._write([change(1), change(2)])
    assert FEED_DROPPED.labels("redis_error")._value.get() == before + 2
    await feed.close()
