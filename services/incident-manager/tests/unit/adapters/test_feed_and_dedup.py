from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sentinel.incident_manager.adapters.dedup import InProcessDedupLock
from sentinel.incident_manager.adapters.feed import InProcessFeed
from sentinel.incident_manager.domain.model import ChangeType, IncidentChange
from sentinel.runtime.clock import ManualClock
from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def change(tenant: str = "t") -> IncidentChange:
    return IncidentChange(tenant, ChangeType.UPDATED, NOW, None)


async def test_watchers_get_their_tenants_changes_with_increasing_cursors() -> None:
    feed = InProcessFeed()
    mine = feed.subscribe(tenant="t")
    theirs = feed.subscribe(tenant="u")
    feed.publish(change())
    feed.publish(change())
    first, second = await mine.next(0.1), await mine.next(0.1)
    assert first is not None and second is not None
    assert first.cursor != second.cursor and mine.cursor == second.cursor
    assert await theirs.next(0.01) is None


async def test_resume_replays_after_the_cursor_and_old_or_foreign_cursors_expire() -> None:
    feed = InProcessFeed(replay_size=3)
    feed.publish(change())
    cursor = feed.head
    feed.publish(change())
    resumed = feed.subscribe(tenant="t", resume_cursor=cursor)
    replayed = await resumed.next(0.1)
    assert replayed is not None and replayed.cursor == feed.head
    for _ in range(5):
        feed.publish(change())
    with pytest.raises(FailedPreconditionError) as expired:
        feed.subscribe(tenant="t", resume_cursor=cursor)
    assert expired.value.reason == "CURSOR_EXPIRED"
    with pytest.raises(FailedPreconditionError):
        InProcessFeed().subscribe(tenant="t", resume_cursor=feed.head)
    with pytest.raises(InvalidArgumentError):
        feed.subscribe(tenant="t", resume_cursor="garbage")


async def test_a_watcher_that_falls_behind_is_told_to_reconnect() -> None:
    feed = InProcessFeed(queue_size=1)
    slow = feed.subscribe(tenant="t")
    feed.publish(change())
    feed.publish(change())
    assert await slow.next(0.1) is not None
    with pytest.raises(UnavailableError):
        await slow.next(0.1)


async def test_in_process_claims_expire_after_their_ttl() -> None:
    clock = ManualClock(NOW)
    lock = InProcessDedupLock(clock)
    assert await lock.claim(tenant="t", fingerprint="f", ttl_s=10)
    assert not await lock.claim(tenant="t", fingerprint="f", ttl_s=10)
    assert await lock.claim(tenant="u", fingerprint="f", ttl_s=10)
    clock.advance(10)
    assert await lock.claim(tenant="t", fingerprint="f", ttl_s=10)
    await lock.release(tenant="t", fingerprint="f")
    assert await lock.claim(tenant="t", fingerprint="f", ttl_s=10)
