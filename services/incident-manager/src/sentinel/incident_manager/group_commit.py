"""Group commit of alert writes: many reports, one storage call, one transaction.

Reports that repeat an active alert queue here instead of writing on their own. While one flush
is being written, the next queue fills; it is then written as ONE `apply_alert_changes` call
(one PostgreSQL transaction) per tenant. Repeats of one fingerprint in a flush coalesce into one
row write (count += n) carrying their n "deduplicated" timeline entries. A report is answered
only after the transaction holding its change committed: an acknowledged repeat survives a
restart.

The base of each write is the last stored version the service knows (its alert cache), and the
write is conditional on that version, so a change made meanwhile by another replica, a lifecycle
change or the sweeper fails only that write (ConflictError): its reports re-read and re-decide.
Other alert writes (a new firing's alert, after its incident) may join a flush as plain writes;
their outcome goes back to their caller as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sentinel.incident_manager.domain import grouping, timeline
from sentinel.incident_manager.domain.model import Alert, TimelineEntry
from sentinel.incident_manager.domain.policy import IncidentPolicy
from sentinel.incident_manager.ports import AlertWrite, IncidentStore
from sentinel.runtime.errors import ConflictError, UnavailableError

logger = logging.getLogger(__name__)


class AlertCache(Protocol):
    """The last stored version of alerts, by (tenant, fingerprint)."""

    def get(self, key: tuple[str, str]) -> Alert | None:
        """The cached alert, or None."""
        ...

    def put(self, key: tuple[str, str], alert: Alert) -> None:
        """Remember `alert` as the stored version."""
        ...

    def drop(self, key: tuple[str, str]) -> None:
        """Forget the key (the next report re-reads it)."""
        ...


class Redecide(ConflictError):
    """The cached alert is gone or no longer active: decide the report again from storage."""

    def __init__(self, fingerprint: str) -> None:
        super().__init__(f"alert {fingerprint} changed before its repeat was written", reason="REDECIDE")


@dataclass
class _Repeat:
    candidate: Alert
    now: datetime
    future: asyncio.Future[Alert]


@dataclass
class _Group:
    """Who waits for one write: the repeats folded into it, or the caller of a plain write."""

    key: tuple[str, str]
    repeats: list[_Repeat]
    plain: asyncio.Future[Alert] | None = None

    @property
    def futures(self) -> list[asyncio.Future[Alert]]:
        return [r.future for r in self.repeats] if self.plain is None else [self.plain]


@dataclass
class RepeatCommitter:
    """Queues repeats of active alerts and writes them in group commits.

    Attributes:
        max_changes: alerts per storage call (storage accepts up to 1000).
        max_entries: timeline entries per storage call (storage accepts up to 1000); also bounds
            the repeats of one alert folded into one write.
        max_in_flight: flushes written at once (each one storage call per tenant and chunk).
    """

    store: IncidentStore
    cache: AlertCache
    policy: IncidentPolicy
    max_changes: int = 500
    max_entries: int = 1000
    max_in_flight: int = 4
    _queue: dict[str, dict[str, list[_Repeat]]] = field(init=False, default_factory=dict)
    _writes: dict[str, list[tuple[AlertWrite, asyncio.Future[Alert]]]] = field(
        init=False, default_factory=dict
    )
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _in_flight: set[tuple[str, str]] = field(init=False, default_factory=set)

    async def repeat(self, *, tenant: str, candidate: Alert, now: datetime) -> Alert:
        """Fold `candidate` into the cached active alert of its fingerprint, durably.

        Returns:
            The alert as stored by the write that carried this repeat (its count includes it).

        Raises:
            ConflictError: the cached alert changed meanwhile (re-read and decide again).
            SentinelError: the storage call failed (as `apply_alert_changes` raises).
        """
        return await self.submit(tenant=tenant, candidate=candidate, now=now)

    def submit(self, *, tenant: str, candidate: Alert, now: datetime) -> asyncio.Future[Alert]:
        """`repeat` as a future (no task per report): resolves as `repeat` returns or raises."""
        future: asyncio.Future[Alert] = asyncio.get_running_loop().create_future()
        by_fingerprint = self._queue.setdefault(tenant, {})
        by_fingerprint.setdefault(candidate.fingerprint, []).append(_Repeat(candidate, now, future))
        self._start()
        return future

    async def write(self, *, tenant: str, write: AlertWrite) -> Alert:
        """Write one alert (as `IncidentStore.upsert_alert`, conditionally), and the incident it
        opens if any, in the next group commit.

        Raises:
            ConflictError: VERSION_MISMATCH; NotFoundError: ALERT_NOT_FOUND; AlreadyExistsError:
                OPEN_INCIDENT_EXISTS (nothing written).
            SentinelError: the storage call failed.
        """
        future: asyncio.Future[Alert] = asyncio.get_running_loop().create_future()
        self._writes.setdefault(tenant, []).append((write, future))
        self._start()
        return await future

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-group-commit")

    @property
    def queued(self) -> int:
        """Repeats waiting for the next flush."""
        return sum(len(r) for by_fingerprint in self._queue.values() for r in by_fingerprint.values())

    async def _run(self) -> None:
        """Dispatch the queue into flushes, up to `max_in_flight` at once (pipelined group commit).

        A flush never carries an alert that a flush in flight is writing: the next write of that
        alert must build on the version the running one stores.
        """
        flushes: set[asyncio.Task[None]] = set()
        try:
            while self._queue or self._writes:
                # Let the reports already scheduled in this turn of the loop join the flush.
                await asyncio.sleep(0)
                while len(flushes) >= self.max_in_flight:
                    await asyncio.wait(flushes, return_when=asyncio.FIRST_COMPLETED)
                    flushes = {f for f in flushes if not f.done()}
                queued, self._queue = self._queue, {}
                writes, self._writes = self._writes, {}
                started = self._dispatch(queued, writes)
                if started is not None:
                    flushes.add(started)
                elif flushes:
                    # Everything queued is being written already: wait for a running flush.
                    await asyncio.wait(flushes, return_when=asyncio.FIRST_COMPLETED)
                flushes = {f for f in flushes if not f.done()}
            if flushes:
                await asyncio.wait(flushes)
        finally:
            self._task = None
            if self._queue or self._writes:
                self._start()  # queued while the last flushes ran down

    def _dispatch(
        self,
        queued: dict[str, dict[str, list[_Repeat]]],
        writes: dict[str, list[tuple[AlertWrite, asyncio.Future[Alert]]]],
    ) -> asyncio.Task[None] | None:
        """Plan one flush of what is queued (deferring alerts in flight) and start it."""
        plans: list[tuple[str, list[_Group], list[AlertWrite]]] = []
        for tenant in {*queued, *writes}:
            groups, changes = self._plan_tenant(tenant, queued.get(tenant, {}), writes.get(tenant, []))
            if groups:
                plans.append((tenant, groups, changes))
        if not plans:
            return None
        for _, groups, _ in plans:
            self._in_flight.update(group.key for group in groups)
        return asyncio.create_task(self._flush(plans), name="alert-group-commit-flush")

    async def _flush(self, plans: list[tuple[str, list[_Group], list[AlertWrite]]]) -> None:
        try:
            await asyncio.gather(
                *(
                    self._write(tenant, groups[i:j], changes[i:j])
                    for tenant, groups, changes in plans
                    for i, j in self._chunks(changes)
                )
            )
        except BaseException as exc:
            # Never leave a report waiting: whatever went wrong is its answer.
            for _, groups, _ in plans:
                for group in groups:
                    for future in group.futures:
                        if not future.done():
                            future.set_exception(
                                exc
                                if isinstance(exc, Exception)
                                else UnavailableError("shutting down; retry")
                            )
            if not isinstance(exc, Exception):
                raise
        finally:
            for _, groups, _ in plans:
                self._in_flight.difference_update(group.key for group in groups)

    def _plan_tenant(
        self,
        tenant: str,
        queued: dict[str, list[_Repeat]],
        plain: list[tuple[AlertWrite, asyncio.Future[Alert]]],
    ) -> tuple[list[_Group], list[AlertWrite]]:
        """The writes of one tenant's queue; alerts in flight (or written twice) wait for the next."""
        groups: list[_Group] = []
        changes: list[AlertWrite] = []
        taken: set[str] = set()
        for write, future in plain:
            fingerprint = write.alert.fingerprint
            if fingerprint in taken or (tenant, fingerprint) in self._in_flight:
                self._writes.setdefault(tenant, []).append((write, future))
                continue
            taken.add(fingerprint)
            groups.append(_Group((tenant, fingerprint), [], plain=future))
            changes.append(write)
        for fingerprint, repeats in queued.items():
            waiting = [r for r in repeats if not r.future.done()]
            busy = fingerprint in taken or (tenant, fingerprint) in self._in_flight
            if busy or len(waiting) > self.max_entries:
                # One write per alert and bounded writes: the rest go in a later flush, in order.
                keep = 0 if busy else self.max_entries
                self._requeue(tenant, fingerprint, waiting[keep:])
                waiting = waiting[:keep]
            planned = self._plan(tenant, fingerprint, waiting)
            if planned is not None:
                groups.append(planned[0])
                changes.append(planned[1])
        return groups, changes

    def _requeue(self, tenant: str, fingerprint: str, repeats: list[_Repeat]) -> None:
        pending = self._queue.setdefault(tenant, {}).setdefault(fingerprint, [])
        pending[:0] = repeats

    def _plan(
        self, tenant: str, fingerprint: str, repeats: list[_Repeat]
    ) -> tuple[_Group, AlertWrite] | None:
        """The write folding `repeats` into the cached alert (None when none can be folded)."""
        if not repeats:
            return None
        key = (tenant, fingerprint)
        base = self.cache.get(key)
        group = _Group(key, [])
        alert = base
        entries: list[TimelineEntry] = []
        for r in repeats:
            if alert is None or not grouping.is_active(alert, now=r.now, policy=self.policy):
                r.future.set_exception(Redecide(fingerprint))
                continue
            alert = grouping.repeat(alert, r.candidate, now=r.now)
            if alert.incident_id:
                entries.append(timeline.alert_deduplicated(alert.incident_id, alert, now=r.now))
            group.repeats.append(r)
        if base is None or alert is None or not group.repeats:
            return None
        return group, AlertWrite(alert, base.version, tuple(entries))

    def _chunks(self, writes: Sequence[AlertWrite]) -> list[tuple[int, int]]:
        """[start, end) slices of at most max_changes writes and max_entries entries each."""
        chunks: list[tuple[int, int]] = []
        start = entries = 0
        for i, write in enumerate(writes):
            if i > start and (
                i - start >= self.max_changes or entries + len(write.entries) > self.max_entries
            ):
                chunks.append((start, i))
                start, entries = i, 0
            entries += len(write.entries)
        if start < len(writes):
            chunks.append((start, len(writes)))
        return chunks

    async def _write(self, tenant: str, groups: list[_Group], writes: list[AlertWrite]) -> None:
        try:
            outcomes = await self.store.apply_alert_changes(tenant=tenant, writes=writes)
        except Exception as exc:
            # Committed or not, we cannot tell: forget the cached versions so the next report re-reads.
            for group in groups:
                self.cache.drop(group.key)
                for future in group.futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for group, outcome in zip(groups, outcomes, strict=True):
            if group.plain is not None:
                # The caller decides what its write's outcome means (and caches it).
                if group.plain.done():
                    continue
                if isinstance(outcome, Alert):
                    group.plain.set_result(outcome)
                else:
                    group.plain.set_exception(outcome)
                continue
            if isinstance(outcome, Alert):
                self.cache.put(group.key, outcome)
                for r in group.repeats:
                    if not r.future.done():
                        r.future.set_result(outcome)
                continue
            self.cache.drop(group.key)
            for r in group.repeats:
                if not r.future.done():
                    # A lost version check (or the row gone): re-read and decide again.
                    r.future.set_exception(Redecide(group.key[1]))
