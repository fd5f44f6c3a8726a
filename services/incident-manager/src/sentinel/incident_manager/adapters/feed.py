"""In-process broadcast of incident changes, feeding WatchIncidents.

Each change gets a cursor "<epoch>-<sequence>"; the last `replay_size` changes are kept so that a
reconnecting watcher resumes after its last cursor. A cursor from another process (a restart, or
another replica) or older than the buffer is CURSOR_EXPIRED: the client re-lists and watches anew.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict, deque
from dataclasses import replace

from sentinel.incident_manager.domain.model import IncidentChange
from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError


class _Subscription:
    def __init__(self, feed: InProcessFeed, tenant: str, queue_size: int, cursor: str) -> None:
        self._feed = feed
        self._tenant = tenant
        self._queue: asyncio.Queue[IncidentChange] = asyncio.Queue(queue_size)
        self._lagged = False
        self._cursor = cursor

    @property
    def cursor(self) -> str:
        return self._cursor

    def offer(self, change: IncidentChange) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self._lagged = True

    async def next(self, timeout_s: float) -> IncidentChange | None:
        if self._lagged and self._queue.empty():
            raise UnavailableError(
                "the watch fell behind the change rate; reconnect with the last cursor", reason="WATCH_LAGGED"
            )
        try:
            change = await asyncio.wait_for(self._queue.get(), timeout=timeout_s)
        except TimeoutError:
            return None
        self._cursor = change.cursor
        return change

    def close(self) -> None:
        self._feed._subscribers[self._tenant].discard(self)


class InProcessFeed:
    """Broadcasts changes to this process's watchers, with a bounded replay buffer."""

    def __init__(self, *, replay_size: int = 10_000, queue_size: int = 1_000) -> None:
        self._epoch = secrets.token_hex(4)
        self._seq = 0
        self._queue_size = queue_size
        self._buffer: deque[tuple[int, IncidentChange]] = deque(maxlen=replay_size)
        self._subscribers: defaultdict[str, set[_Subscription]] = defaultdict(set)

    @property
    def head(self) -> str:
        """Cursor of the latest change (or of the start when none happened)."""
        return f"{self._epoch}-{self._seq}"

    def watchers(self, tenant: str) -> int:
        """How many watchers the tenant has."""
        return len(self._subscribers.get(tenant, ()))

    def publish(self, change: IncidentChange) -> None:
        self._seq += 1
        stamped = replace(change, cursor=f"{self._epoch}-{self._seq}")
        self._buffer.append((self._seq, stamped))
        for subscriber in tuple(self._subscribers.get(change.tenant, ())):
            subscriber.offer(stamped)

    def subscribe(self, *, tenant: str, resume_cursor: str = "") -> _Subscription:
        subscription = _Subscription(self, tenant, self._queue_size, resume_cursor or self.head)
        if resume_cursor:
            after = self._sequence_of(resume_cursor)
            for seq, change in self._buffer:
                if seq > after and change.tenant == tenant:
                    subscription.offer(change)
        self._subscribers[tenant].add(subscription)
        return subscription

    def _sequence_of(self, cursor: str) -> int:
        epoch, _, seq_text = cursor.partition("-")
        if not epoch or not seq_text.isdigit():
            raise InvalidArgumentError("resume_cursor", "is not a cursor from this API")
        seq = int(seq_text)
        oldest = self._buffer[0][0] if self._buffer else self._seq + 1
        if epoch != self._epoch or seq > self._seq or seq < oldest - 1:
            raise FailedPreconditionError(
                "resume_cursor is outside the replay window (the server restarted or too much happened "
                "since); list incidents and watch without a cursor",
                reason="CURSOR_EXPIRED",
            )
        return seq
