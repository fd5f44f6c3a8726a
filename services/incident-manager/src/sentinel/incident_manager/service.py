"""Incident use cases: alerts in (dedup, grouping, silences), lifecycle, notes, queries, watch.

Consistency: PostgreSQL (through storage) is the truth; every write is conditional on the version
read, and a lost race is re-read and re-applied. A repeat of an alert this replica knows to be
active needs no read: it joins the group commit (`group_commit.RepeatCommitter`), which folds the
concurrent repeats of one alert into one conditional write with their timeline entries, and
answers each report only once that write committed. Any other report is decided under a
per-fingerprint lock, and across replicas by the `DedupLock` claim (Redis SET NX with TTL): only
the claimant creates the alert; the others wait for it to appear and fold their report into it.
Storage's one-open-incident-per-group-key rule (OPEN_INCIDENT_EXISTS) makes two replicas that open
an incident for one group at once converge on one: the loser re-reads and attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from sentinel.incident_manager.domain import grouping, lifecycle, silences, timeline
from sentinel.incident_manager.domain.anomaly import alert_from_anomaly
from sentinel.incident_manager.domain.fingerprint import stable_id
from sentinel.incident_manager.domain.flapping import update_flapping
from sentinel.incident_manager.domain.funnel import NoiseFunnel
from sentinel.incident_manager.domain.grouping import Placement
from sentinel.incident_manager.domain.model import (
    OPEN_STATES,
    Alert,
    AlertInput,
    AlertStatus,
    AnomalyInput,
    ChangeType,
    Incident,
    IncidentChange,
    IncidentStats,
    LabelMatcher,
    Outcome,
    Priority,
    Severity,
    Silence,
    SilenceState,
    TimelineEntry,
    TimelineKind,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.severity import priority_for
from sentinel.incident_manager.domain.validate import validate_alert
from sentinel.incident_manager.domain.watch import WatchFilter
from sentinel.incident_manager.group_commit import RepeatCommitter
from sentinel.incident_manager.ports import (
    AlertQuery,
    AlertWrite,
    DedupLock,
    IncidentFeed,
    IncidentQuery,
    IncidentStore,
    Page,
    SilenceQuery,
    TimelineQuery,
)
from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    SentinelError,
    UnavailableError,
)

logger = logging.getLogger(__name__)

ALERTS = Counter("sentinel_incident_alerts_total", "Alert reports by outcome (the noise funnel)", ["outcome"])
SUPPRESSED = Counter("sentinel_incident_alerts_suppressed_total", "Alert reports muted by a silence")
# The labelled children once: labels() per alert costs a lock and a lookup.
_ALERTS_BY_OUTCOME = {outcome: ALERTS.labels(outcome.name.lower()) for outcome in Outcome}


@dataclass(frozen=True)
class RowError:
    """One rejected alert of a report: its index, the field inside it, and why."""

    index: int
    field: str
    reason: str


@dataclass(frozen=True)
class AlertResult:
    """What reporting one alert did."""

    index: int
    alert: Alert
    outcome: Outcome
    silence_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportOutcome:
    """Per-alert results in request order, and the rejected alerts."""

    results: list[AlertResult]
    errors: list[RowError]


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, ...], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        """Hold the lock of `key` for the duration of the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def busy(self, key: tuple[str, ...]) -> bool:
        """Whether someone holds or waits for the lock of `key`."""
        return key in self._locks

    def __len__(self) -> int:
        return len(self._locks)


class _LruAlerts:
    """The last-known stored version of recently seen alerts (a hint; storage decides)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Alert] = OrderedDict()

    def get(self, key: tuple[str, str]) -> Alert | None:
        alert = self._items.get(key)
        if alert is not None:
            self._items.move_to_end(key)
        return alert

    def put(self, key: tuple[str, str], alert: Alert) -> None:
        self._items[key] = alert
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, key: tuple[str, str]) -> None:
        self._items.pop(key, None)


def default_actor(tenant: str) -> str:
    """The actor of a call that names none (the API key's tenant)."""
    return f"api-key:{tenant}"


@dataclass
class IncidentService:
    """The use cases behind IncidentService (see incident_service.proto for the contract)."""

    store: IncidentStore
    dedup: DedupLock
    feed: IncidentFeed
    clock: Clock
    policy: IncidentPolicy = field(default_factory=IncidentPolicy)
    limits: Limits = field(default_factory=Limits)
    dedup_ttl_s: float = 86_400.0
    claim_wait_s: float = 2.0
    report_concurrency: int = 64
    silence_cache_s: float = 1.0
    alert_cache_size: int = 100_000
    max_retries: int = 25
    funnel: NoiseFunnel = field(default_factory=NoiseFunnel)
    tenants: set[str] = field(default_factory=set)
    _locks: KeyedLocks = field(init=False, default_factory=KeyedLocks)
    _alerts: _LruAlerts = field(init=False)
    _silences: dict[str, tuple[float, list[Silence]]] = field(init=False, default_factory=dict)
    _slots: asyncio.Semaphore = field(init=False)
    _repeats: RepeatCommitter = field(init=False)

    def __post_init__(self) -> None:
        self._alerts = _LruAlerts(self.alert_cache_size)
        self._slots = asyncio.Semaphore(self.report_concurrency)
        self._repeats = RepeatCommitter(store=self.store, cache=self._alerts, policy=self.policy)

    # ------------------------------------------------------------------ alerts in

    async def report_alerts(
        self, *, tenant: str, alerts: Sequence[AlertInput | InvalidArgumentError]
    ) -> ReportOutcome:
        """Record alerts: fingerprint, dedup, silences, grouping. Invalid ones are listed, not fatal.

        An entry may already be the error its decoding raised (e.g. a timestamp out of range).

        Raises:
            InvalidArgumentError: no alerts, too many, or every alert invalid (naming the first).
        """
        self.tenants.add(tenant)
        if not alerts:
            raise InvalidArgumentError("alerts", "must not be empty")
        if len(alerts) > self.limits.max_alerts_per_report:
            raise InvalidArgumentError(
                "alerts",
                f"{len(alerts)} alerts exceed the limit of {self.limits.max_alerts_per_report} per report",
            )
        now = self.clock.now()
        candidates: list[tuple[int, Alert]] = []
        errors: list[RowError] = []
        for index, raw in enumerate(alerts):
            if isinstance(raw, InvalidArgumentError):
                errors.append(RowError(index, raw.field, raw.problem))
                continue
            try:
                candidate = validate_alert(raw, now=now, policy=self.policy, limits=self.limits)
            except InvalidArgumentError as bad:
                errors.append(RowError(index, bad.field, bad.problem))
                continue
            candidates.append((index, candidate))
        if not candidates:
            first = errors[0]
            raise InvalidArgumentError(f"alerts[{first.index}].{first.field}", first.reason)
        return ReportOutcome(await self._report_many(tenant, candidates, now), errors)

    async def _report_many(
        self, tenant: str, candidates: list[tuple[int, Alert]], now: datetime
    ) -> list[AlertResult]:
        """Report candidates concurrently; repeats of cached active alerts wait on the group commit
        directly (a future each, no task), the rest take `_report_one`."""
        waits: list[Awaitable[AlertResult | Alert]] = []
        fast: list[bool] = []
        for _, candidate in candidates:
            cached = (
                self._alerts.get((tenant, candidate.fingerprint))
                if candidate.status is AlertStatus.FIRING
                else None
            )
            is_repeat = cached is not None and grouping.is_active(cached, now=now, policy=self.policy)
            fast.append(is_repeat)
            waits.append(
                self._repeats.submit(tenant=tenant, candidate=candidate, now=now)
                if is_repeat
                else self._report_one(tenant, candidate)
            )
        outcomes: list[AlertResult | Alert | BaseException] = list(
            await asyncio.gather(*waits, return_exceptions=True)
        )
        again = [k for k, o in enumerate(outcomes) if fast[k] and isinstance(o, ConflictError)]
        if again:
            # The cached alert changed before the repeat was written: decide these from storage.
            retried = await asyncio.gather(
                *(self._report_one(tenant, candidates[k][1]) for k in again), return_exceptions=True
            )
            for k, redone in zip(again, retried, strict=True):
                outcomes[k] = redone
        results: list[AlertResult] = []
        for (index, _), done in zip(candidates, outcomes, strict=True):
            if isinstance(done, BaseException):
                raise done
            result = (
                AlertResult(index, done, Outcome.DEDUPLICATED, done.silenced_by)
                if isinstance(done, Alert)
                else replace(done, index=index)
            )
            self._record(result)
            results.append(result)
        return results

    def _record(self, result: AlertResult) -> None:
        self.funnel.record(result.outcome, silenced=bool(result.silence_ids))
        _ALERTS_BY_OUTCOME[result.outcome].inc()
        if result.silence_ids:
            SUPPRESSED.inc()

    async def report_anomaly(
        self, *, tenant: str, anomaly: AnomalyInput, dedup_key: str = "", labels: dict[str, str] | None = None
    ) -> AlertResult:
        """Turn a detected anomaly into an alert and report it.

        Raises:
            InvalidArgumentError: the anomaly is missing or malformed ("field" names it).
        """
        self.tenants.add(tenant)
        raw = alert_from_anomaly(anomaly, dedup_key=dedup_key, extra_labels=labels)
        try:
            candidate = validate_alert(raw, now=self.clock.now(), policy=self.policy, limits=self.limits)
        except InvalidArgumentError as bad:
            raise InvalidArgumentError(f"anomaly.{bad.field}", bad.problem) from None
        return await self._report_bounded(tenant, 0, candidate)

    async def _report_bounded(self, tenant: str, index: int, candidate: Alert) -> AlertResult:
        result = replace(await self._report_one(tenant, candidate), index=index)
        self._record(result)
        return result

    async def _report_one(self, tenant: str, candidate: Alert) -> AlertResult:
        """Repeats of a known active alert take the group commit (no lock, no read); anything else
        is decided under the fingerprint's lock, at most `report_concurrency` at once."""
        key = (tenant, candidate.fingerprint)
        firing = candidate.status is AlertStatus.FIRING
        for _ in range(self.max_retries):
            cached = self._alerts.get(key) if firing else None
            if cached is not None and grouping.is_active(cached, now=self.clock.now(), policy=self.policy):
                try:
                    saved = await self._repeats.repeat(
                        tenant=tenant, candidate=candidate, now=self.clock.now()
                    )
                except ConflictError:
                    continue  # changed meanwhile (the committer forgot it): re-read and decide again
                return AlertResult(0, saved, Outcome.DEDUPLICATED, saved.silenced_by)
            async with self._slots, self._locks.hold(("alert", *key)):
                cached = self._alerts.get(key) if firing else None
                if cached is not None and grouping.is_active(
                    cached, now=self.clock.now(), policy=self.policy
                ):
                    continue  # created while we waited for the lock: a repeat after all
                # Unknown here, so most likely a first firing: read its group's incidents meanwhile.
                group = (
                    asyncio.ensure_future(self._group_incidents(tenant, candidate.group_key, ""))
                    if firing
                    else None
                )
                read, stored = False, None
                try:
                    now = self.clock.now()
                    stored = await self._known_alert(tenant, candidate)
                    read = True
                    if (
                        firing
                        and stored is not None
                        and grouping.is_active(stored, now=now, policy=self.policy)
                    ):
                        self._alerts.put(key, stored)
                        continue  # a repeat: group-committed, outside the lock
                    if candidate.status is AlertStatus.RESOLVED:
                        result = await self._resolve_reported(tenant, stored, candidate, now)
                    else:
                        result = await self._new_firing(tenant, stored, candidate, now, group)
                except ConflictError:
                    # Another replica (or a lifecycle change) wrote the alert first: re-read.
                    self._alerts.drop(key)
                    continue
                except Exception:
                    if read and stored is None:
                        # Our create failed: let the next report claim the fingerprint at once.
                        await self.dedup.release(tenant=tenant, fingerprint=candidate.fingerprint)
                    raise
                finally:
                    if group is not None:
                        await _settle(group)
                self._alerts.put(key, result.alert)
                return result
        raise UnavailableError(
            f"alert {candidate.fingerprint} is changing too fast to record; retry", reason="CONTENTION"
        )

    async def _known_alert(self, tenant: str, candidate: Alert) -> Alert | None:
        """The stored alert of the candidate's fingerprint, or None if there is none yet."""
        cached = self._alerts.get((tenant, candidate.fingerprint))
        if cached is not None:
            return cached
        # Independent: the claim (Redis) and the read (storage) go out together.
        claimed, stored = await asyncio.gather(
            self.dedup.claim(tenant=tenant, fingerprint=candidate.fingerprint, ttl_s=self.dedup_ttl_s),
            self.store.get_alert(tenant=tenant, alert_id=candidate.alert_id),
        )
        if claimed or stored is not None:
            return stored
        # Someone else claimed the fingerprint and may still be creating its alert: wait for it.
        # A real wait (it sleeps), so it runs on the event loop's clock, not the injected one.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.claim_wait_s
        delay = 0.01
        while stored is None and loop.time() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
            stored = await self.store.get_alert(tenant=tenant, alert_id=candidate.alert_id)
        if stored is None:
            logger.info("claim on %s never produced an alert; creating it", candidate.fingerprint)
        return stored

    async def _resolve_reported(
        self, tenant: str, stored: Alert | None, candidate: Alert, now: datetime
    ) -> AlertResult:
        if stored is None:
            saved = await self.store.upsert_alert(tenant=tenant, alert=candidate, expected_version=0)
            return AlertResult(0, saved, Outcome.RESOLVED)
        if stored.status is AlertStatus.RESOLVED:
            repeated = replace(stored, duplicate_count=stored.duplicate_count + 1, last_seen_time=now)
            saved = await self.store.upsert_alert(
                tenant=tenant, alert=repeated, expected_version=stored.version
            )
            return AlertResult(0, saved, Outcome.DEDUPLICATED)
        saved = await self.store.upsert_alert(
            tenant=tenant,
            alert=grouping.resolved(stored, now=now, end_time=candidate.end_time),
            expected_version=stored.version,
        )
        if saved.incident_id:
            await self._alert_left_incident(tenant, saved, now, reason="resolved by its source")
        return AlertResult(0, saved, Outcome.RESOLVED)

    async def _alert_left_incident(self, tenant: str, alert: Alert, now: datetime, *, reason: str) -> None:
        """Record that `alert` resolved and resolve its incident if no alert of it still fires."""
        entry = timeline.alert_resolved(alert.incident_id, alert, now=now, reason=reason)
        try:
            if await self._has_active_alerts(tenant, alert.incident_id, now, ignore=alert.alert_id):
                await self.store.append_timeline(tenant=tenant, entries=[entry])
                return
            await self._change(
                tenant=tenant,
                incident_id=alert.incident_id,
                mutate=lambda incident, at: _with_entries(
                    lifecycle.resolve(
                        incident, now=at, actor=timeline.SYSTEM_AUTO_RESOLVE, reason="all alerts resolved"
                    )
                    if incident.state.is_open
                    else None,
                    (entry,),
                    incident,
                    at,
                ),
            )
        except NotFoundError:
            logger.warning("alert %s names a missing incident %s", alert.alert_id, alert.incident_id)

    async def _has_active_alerts(
        self, tenant: str, incident_id: str, now: datetime, *, ignore: str = ""
    ) -> bool:
        token = ""
        for _ in range(100):
            page = await self.store.list_alerts(
                tenant=tenant,
                query=AlertQuery(
                    incident_id=incident_id, statuses=(AlertStatus.FIRING,), page_size=500, page_token=token
                ),
            )
            if any(
                a.alert_id != ignore and grouping.is_active(a, now=now, policy=self.policy)
                for a in page.items
            ):
                return True
            token = page.next_page_token
            if not token:
                return False
        return True

    async def _new_firing(
        self,
        tenant: str,
        stored: Alert | None,
        candidate: Alert,
        now: datetime,
        group: asyncio.Future[tuple[Incident | None, Incident | None]] | None = None,
    ) -> AlertResult:
        alert = candidate if stored is None else grouping.refire(stored, candidate, now=now)
        expected = stored.version if stored is not None else 0
        muted = silences.silences_for(await self._active_silences(tenant), alert.matcher_labels(), now=now)
        silence = muted[0] if muted else None
        alert = replace(alert, silenced_by=tuple(s.silence_id for s in muted))
        group_lock = ("group", tenant, alert.group_key)
        if self._locks.busy(group_lock) or alert.group_key != candidate.group_key:
            group = None  # read before another placement in the group finished: read again
        async with self._locks.hold(group_lock):
            hint = ""
            for _ in range(self.max_retries):
                try:
                    return await self._place(tenant, alert, expected, silence, now, hint, group)
                except AlreadyExistsError as exists:
                    if exists.reason != "OPEN_INCIDENT_EXISTS":
                        raise
                    hint = exists.metadata.get("incident_id", "")
                except _IncidentMoved:
                    hint = ""
                group = None  # the prefetched read served the first attempt only
                now = self.clock.now()
        raise UnavailableError(f"group {alert.group_key} is changing too fast; retry", reason="CONTENTION")

    async def _place(
        self,
        tenant: str,
        alert: Alert,
        expected: int,
        silence: Silence | None,
        now: datetime,
        hint: str,
        group: asyncio.Future[tuple[Incident | None, Incident | None]] | None = None,
    ) -> AlertResult:
        open_incident, last_resolved = await (
            group if group is not None else self._group_incidents(tenant, alert.group_key, hint)
        )
        pending: list[Alert] = []
        if open_incident is None and self.policy.min_alerts > 1:
            pending = await self._pending_alerts(tenant, alert, now)
        placement = grouping.place_alert(
            open_incident=open_incident,
            last_resolved=last_resolved,
            pending_alerts=len(pending),
            now=now,
            policy=self.policy,
        )
        muted = tuple(alert.silenced_by)
        if placement is Placement.HOLD:
            saved = await self.store.upsert_alert(tenant=tenant, alert=alert, expected_version=expected)
            return AlertResult(0, saved, Outcome.SUPPRESSED if muted else Outcome.PENDING, muted)
        if placement is Placement.ATTACH:
            assert open_incident is not None
            incident = await self._join(tenant, open_incident, alert, now, silence, reopen=False)
            outcome = Outcome.ATTACHED
        elif placement is Placement.REOPEN:
            assert last_resolved is not None
            incident = await self._join(tenant, last_resolved, alert, now, silence, reopen=True)
            outcome = Outcome.REOPENED
        elif not pending:
            # The incident, its first entries and the alert: one change of the group commit.
            incident, entries = self._new_incident(alert, now, silence, pending)
            saved = await self._repeats.write(
                tenant=tenant,
                write=AlertWrite(
                    replace(alert, incident_id=incident.incident_id),
                    expected_version=expected,
                    entries=tuple(entries),
                    new_incident=incident,
                ),
            )
            self._publish(tenant, ChangeType.CREATED, replace(incident, version=1), entries, now)
            return AlertResult(0, saved, Outcome.SUPPRESSED if muted else Outcome.NEW_INCIDENT, muted)
        else:
            incident = await self._create(tenant, alert, now, silence, pending)
            outcome = Outcome.NEW_INCIDENT
        saved = await self._repeats.write(
            tenant=tenant,
            write=AlertWrite(replace(alert, incident_id=incident.incident_id), expected_version=expected),
        )
        return AlertResult(0, saved, Outcome.SUPPRESSED if muted else outcome, muted)

    async def _group_incidents(
        self, tenant: str, group_key: str, hint: str
    ) -> tuple[Incident | None, Incident | None]:
        """The group's open incident, else (None, its newest resolved one)."""
        if hint:
            with contextlib.suppress(NotFoundError):
                incident = await self.store.get_incident(tenant=tenant, incident_id=hint)
                if incident.state.is_open:
                    return incident, None
        open_incident, last_resolved = await self.store.group_incidents(tenant=tenant, group_key=group_key)
        return (open_incident, None) if open_incident is not None else (None, last_resolved)

    async def _pending_alerts(self, tenant: str, alert: Alert, now: datetime) -> list[Alert]:
        page = await self.store.list_alerts(
            tenant=tenant,
            query=AlertQuery(group_key=alert.group_key, statuses=(AlertStatus.FIRING,), page_size=500),
        )
        return [
            a
            for a in page.items
            if a.alert_id != alert.alert_id and grouping.in_group_window(a, now=now, policy=self.policy)
        ]

    async def _join(
        self,
        tenant: str,
        incident: Incident,
        alert: Alert,
        now: datetime,
        silence: Silence | None,
        *,
        reopen: bool,
    ) -> Incident:
        entries: list[TimelineEntry] = []
        base = incident
        if reopen:
            change = lifecycle.reopen(
                incident, now=now, actor=timeline.source_actor(alert), reason=f"new firing: {alert.title}"
            )
            base, entries = change.incident, list(change.entries)
        joined = grouping.attach(base, alert, now=now)
        entries.append(timeline.alert_received(incident.incident_id, alert, now=now, firing=alert.version))
        if silence is not None:
            entries.append(self._suppressed_entry(incident.incident_id, silence, alert, now))
        if reopen:
            joined, flap = await self._flapping(tenant, joined, now)
            entries.extend(flap)
        try:
            saved = await self.store.update_incident(
                tenant=tenant, incident=joined, expected_version=incident.version, entries=entries
            )
        except ConflictError:
            raise _IncidentMoved() from None
        self._publish(tenant, ChangeType.UPDATED, saved, entries, now)
        return saved

    def _new_incident(
        self, alert: Alert, now: datetime, silence: Silence | None, pending: list[Alert]
    ) -> tuple[Incident, list[TimelineEntry]]:
        """The incident `alert` opens (with the pending alerts of its group) and its first entries."""
        incident = grouping.new_incident(
            alert, incident_id=self._new_id("inc_"), now=now, silence=silence, others=tuple(pending)
        )
        entries = [
            timeline.alert_received(incident.incident_id, member, now=now, firing=member.version)
            for member in (alert, *pending)
        ]
        if silence is not None:
            entries.append(self._suppressed_entry(incident.incident_id, silence, alert, now))
        return incident, entries

    async def _create(
        self, tenant: str, alert: Alert, now: datetime, silence: Silence | None, pending: list[Alert]
    ) -> Incident:
        incident, entries = self._new_incident(alert, now, silence, pending)
        saved = await self.store.create_incident(tenant=tenant, incident=incident, entries=entries)
        for member in pending:
            with contextlib.suppress(ConflictError):
                attached = await self.store.upsert_alert(
                    tenant=tenant,
                    alert=replace(member, incident_id=saved.incident_id),
                    expected_version=member.version,
                )
                self._alerts.put((tenant, attached.fingerprint), attached)
        self._publish(tenant, ChangeType.CREATED, saved, entries, now)
        return saved

    @staticmethod
    def _suppressed_entry(incident_id: str, silence: Silence, alert: Alert, now: datetime) -> TimelineEntry:
        return timeline.suppressed(
            incident_id,
            silence_id=silence.silence_id,
            maintenance=silence.maintenance,
            now=now,
            actor=timeline.source_actor(alert),
            key=f"{alert.alert_id}:{alert.version}",
        )

    async def _active_silences(self, tenant: str) -> list[Silence]:
        cached = self._silences.get(tenant)
        if cached is not None and self.clock.monotonic() - cached[0] < self.silence_cache_s:
            return cached[1]
        found = await self._all_silences(tenant, (SilenceState.ACTIVE, SilenceState.PENDING))
        self._silences[tenant] = (self.clock.monotonic(), found)
        return found

    async def _all_silences(self, tenant: str, states: tuple[SilenceState, ...] = ()) -> list[Silence]:
        found: list[Silence] = []
        token = ""
        for _ in range(100):
            page = await self.store.list_silences(
                tenant=tenant, query=SilenceQuery(states=states, page_size=1000, page_token=token)
            )
            found.extend(page.items)
            token = page.next_page_token
            if not token:
                break
        return found

    async def _flapping(
        self, tenant: str, incident: Incident, now: datetime
    ) -> tuple[Incident, list[TimelineEntry]]:
        """Recompute flapping with the state change being made now counted in."""
        page = await self.store.list_timeline(
            tenant=tenant,
            query=TimelineQuery(
                incident_id=incident.incident_id,
                kinds=(TimelineKind.STATE_CHANGED,),
                start_time=now - self.policy.flap_window,
                page_size=1000,
            ),
        )
        times = [entry.event_time for entry in page.items] + [now]
        flagged, entries = update_flapping(
            incident, times, now=now, window=self.policy.flap_window, threshold=self.policy.flap_threshold
        )
        return flagged, list(entries)

    # ------------------------------------------------------------------ lifecycle

    async def _change(
        self,
        *,
        tenant: str,
        incident_id: str,
        mutate: Callable[[Incident, datetime], lifecycle.Change | None],
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """Read, apply `mutate`, write conditionally; re-read and re-apply on a lost race.

        With `expected_version` set, a differing version is ABORTED (VERSION_MISMATCH) instead.
        """
        if not incident_id:
            raise InvalidArgumentError("incident_id", "must not be empty")
        for _ in range(self.max_retries):
            incident = await self.store.get_incident(tenant=tenant, incident_id=incident_id)
            if expected_version and incident.version != expected_version:
                raise ConflictError(
                    f"incident {incident_id} is at version {incident.version}, not {expected_version}; "
                    "re-read and retry",
                    reason="VERSION_MISMATCH",
                    metadata={"incident_id": incident_id, "version": str(incident.version)},
                )
            now = self.clock.now()
            change = mutate(incident, now)
            if change is None:
                return incident
            changed, entries = change.incident, list(change.entries)
            if changed.state is not incident.state:
                changed, flap = await self._flapping(tenant, changed, now)
                entries.extend(flap)
            try:
                saved = await self.store.update_incident(
                    tenant=tenant,
                    incident=changed,
                    expected_version=incident.version,
                    entries=entries,
                    request_id=request_id,
                )
            except ConflictError:
                if expected_version:
                    raise
                continue
            self._publish(tenant, ChangeType.UPDATED, saved, entries, now)
            return saved
        raise UnavailableError(f"incident {incident_id} is changing too fast; retry", reason="CONTENTION")

    async def acknowledge(
        self,
        *,
        tenant: str,
        incident_id: str,
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """TRIGGERED → ACKNOWLEDGED (no-op when ACKNOWLEDGED)."""
        who = actor or default_actor(tenant)
        return await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=lambda incident, now: lifecycle.acknowledge(incident, now=now, actor=who, reason=reason),
        )

    async def resolve(
        self,
        *,
        tenant: str,
        incident_id: str,
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """TRIGGERED | ACKNOWLEDGED → RESOLVED (no-op when RESOLVED); its firing alerts resolve too,
        so that a later firing reopens the incident (within the reopen window) or opens a new one."""
        who = actor or default_actor(tenant)
        incident = await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=lambda incident, now: lifecycle.resolve(incident, now=now, actor=who, reason=reason),
        )
        await self._resolve_alerts_of(tenant, incident.incident_id)
        return incident

    async def reopen(
        self,
        *,
        tenant: str,
        incident_id: str,
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """RESOLVED → TRIGGERED, counted in reopen_count."""
        who = actor or default_actor(tenant)
        return await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=lambda incident, now: lifecycle.reopen(incident, now=now, actor=who, reason=reason),
        )

    async def close(
        self,
        *,
        tenant: str,
        incident_id: str,
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """RESOLVED → CLOSED (no-op when CLOSED)."""
        who = actor or default_actor(tenant)
        return await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=lambda incident, now: lifecycle.close(incident, now=now, actor=who, reason=reason),
        )

    async def _resolve_alerts_of(self, tenant: str, incident_id: str) -> None:
        now = self.clock.now()
        page = await self.store.list_alerts(
            tenant=tenant,
            query=AlertQuery(incident_id=incident_id, statuses=(AlertStatus.FIRING,), page_size=1000),
        )
        for alert in page.items:
            key = (tenant, alert.fingerprint)
            async with self._locks.hold(("alert", *key)):
                try:
                    saved = await self.store.upsert_alert(
                        tenant=tenant, alert=grouping.resolved(alert, now=now), expected_version=alert.version
                    )
                except ConflictError:
                    self._alerts.drop(key)
                    continue
                self._alerts.put(key, saved)

    async def add_note(
        self,
        *,
        tenant: str,
        incident_id: str,
        text: str,
        actor: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> TimelineEntry:
        """Append a NOTE_ADDED entry (once per request_id)."""
        if not text.strip():
            raise InvalidArgumentError("text", "must not be empty")
        if len(text) > self.limits.max_note_len:
            raise InvalidArgumentError("text", f"{len(text)} characters exceed {self.limits.max_note_len}")
        who = actor or default_actor(tenant)
        key = request_id or self._new_id("note_")
        note: list[TimelineEntry] = []

        def mutate(incident: Incident, now: datetime) -> lifecycle.Change:
            note[:] = [timeline.note_added(incident.incident_id, text=text, now=now, actor=who, key=key)]
            return lifecycle.Change(replace(incident, update_time=now), tuple(note))

        await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=mutate,
        )
        return note[0]

    async def assign(
        self,
        *,
        tenant: str,
        incident_id: str,
        assignees: Sequence[str],
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """Replace the assignees (no entry when the set is unchanged)."""
        if len(assignees) > self.limits.max_assignees:
            raise InvalidArgumentError("assignees", f"at most {self.limits.max_assignees} assignees")
        for index, name in enumerate(assignees):
            if not name.strip() or len(name) > self.limits.max_assignee_len:
                raise InvalidArgumentError(
                    f"assignees[{index}]", f"must be 1..{self.limits.max_assignee_len} characters"
                )
        wanted = tuple(dict.fromkeys(name.strip() for name in assignees))
        who = actor or default_actor(tenant)

        def mutate(incident: Incident, now: datetime) -> lifecycle.Change | None:
            lifecycle.ensure_not_closed(incident)
            if set(wanted) == set(incident.assignees):
                return None
            entry = timeline.assigned(
                incident.incident_id,
                before=incident.assignees,
                after=wanted,
                now=now,
                actor=who,
                reason=reason,
                version=incident.version,
            )
            return lifecycle.Change(replace(incident, assignees=wanted, update_time=now), (entry,))

        return await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=mutate,
        )

    async def change_severity(
        self,
        *,
        tenant: str,
        incident_id: str,
        severity: int,
        priority: int = 0,
        actor: str = "",
        reason: str = "",
        expected_version: int = 0,
        request_id: str = "",
    ) -> Incident:
        """Set severity (required) and priority (derived when unset)."""
        if severity == 0:
            raise InvalidArgumentError("severity", "is required")
        try:
            new_severity = Severity(severity)
        except ValueError:
            raise InvalidArgumentError("severity", f"unknown value {severity}") from None
        try:
            new_priority = priority_for(new_severity, Priority(priority) if priority else None)
        except ValueError:
            raise InvalidArgumentError("priority", f"unknown value {priority}") from None
        who = actor or default_actor(tenant)

        def mutate(incident: Incident, now: datetime) -> lifecycle.Change | None:
            lifecycle.ensure_not_closed(incident)
            if (incident.severity, incident.priority) == (new_severity, new_priority):
                return None
            entry = timeline.severity_changed(
                incident.incident_id,
                before=(incident.severity, incident.priority),
                after=(new_severity, new_priority),
                now=now,
                actor=who,
                reason=reason,
                version=incident.version,
            )
            changed = replace(incident, severity=new_severity, priority=new_priority, update_time=now)
            return lifecycle.Change(changed, (entry,))

        return await self._change(
            tenant=tenant,
            incident_id=incident_id,
            expected_version=expected_version,
            request_id=request_id,
            mutate=mutate,
        )

    # ------------------------------------------------------------------ auto-resolve

    async def sweep(self) -> int:
        """Expire alerts and auto-resolve open incidents none of whose alerts still fire.

        Covers the tenants this replica has served since it started.

        Returns:
            The number of incidents resolved.
        """
        resolved = 0
        for tenant in sorted(self.tenants):
            try:
                resolved += await self._sweep_tenant(tenant)
            except SentinelError as exc:
                logger.warning("auto-resolve sweep of tenant %s failed: %s", tenant, exc.message)
        return resolved

    async def _sweep_tenant(self, tenant: str) -> int:
        # One pass over the tenant's firing alerts (a page per 1000) finds the incidents with an
        # active alert and no expired one: nothing to do for those. Every other open incident is
        # checked on its own, as before, so an alert that moved during the pass is never missed.
        busy = await self._incidents_with_only_active_alerts(tenant)
        resolved = 0
        token = ""
        for _ in range(100):
            page = await self.store.list_incidents(
                tenant=tenant, query=IncidentQuery(states=OPEN_STATES, page_size=500, page_token=token)
            )
            for incident in page.items:
                if incident.incident_id not in busy and await self._sweep_incident(tenant, incident):
                    resolved += 1
            token = page.next_page_token
            if not token:
                break
        return resolved

    async def _incidents_with_only_active_alerts(self, tenant: str) -> set[str]:
        now = self.clock.now()
        active: set[str] = set()
        expired: set[str] = set()
        token = ""
        for _ in range(1000):
            page = await self.store.list_alerts(
                tenant=tenant,
                query=AlertQuery(statuses=(AlertStatus.FIRING,), page_size=1000, page_token=token),
            )
            for alert in page.items:
                if alert.incident_id:
                    expiring = grouping.is_expired(alert, now=now, policy=self.policy)
                    (expired if expiring else active).add(alert.incident_id)
            token = page.next_page_token
            if not token:
                return active - expired
        return set()  # too many to tell: check every incident

    async def _sweep_incident(self, tenant: str, incident: Incident) -> bool:
        now = self.clock.now()
        page = await self.store.list_alerts(
            tenant=tenant,
            query=AlertQuery(
                incident_id=incident.incident_id, statuses=(AlertStatus.FIRING,), page_size=1000
            ),
        )
        expired_entries: list[TimelineEntry] = []
        still_firing = False
        for alert in page.items:
            if not grouping.is_expired(alert, now=now, policy=self.policy):
                still_firing = True
                continue
            key = (tenant, alert.fingerprint)
            async with self._locks.hold(("alert", *key)):
                try:
                    saved = await self.store.upsert_alert(
                        tenant=tenant,
                        alert=grouping.resolved(alert, now=now, end_time=alert.end_time or now),
                        expected_version=alert.version,
                    )
                except ConflictError:
                    self._alerts.drop(key)
                    still_firing = True  # it was just reported again
                    continue
                self._alerts.put(key, saved)
            expired_entries.append(
                timeline.alert_resolved(incident.incident_id, saved, now=now, reason="expired")
            )
        if still_firing or page.next_page_token:
            if expired_entries:
                await self.store.append_timeline(tenant=tenant, entries=expired_entries)
            return False
        await self._change(
            tenant=tenant,
            incident_id=incident.incident_id,
            mutate=lambda current, at: _with_entries(
                lifecycle.resolve(
                    current,
                    now=at,
                    actor=timeline.SYSTEM_AUTO_RESOLVE,
                    reason="all alerts resolved or expired",
                )
                if current.state.is_open
                else None,
                tuple(expired_entries),
                current,
                at,
            ),
        )
        return True

    async def run_sweeper(self, interval_s: float) -> None:
        """Sweep every `interval_s` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                count = await self.sweep()
            except Exception:
                logger.exception("auto-resolve sweep failed")
                continue
            if count:
                logger.info("auto-resolved %d incidents", count)

    # ------------------------------------------------------------------ queries

    async def get_incident(self, *, tenant: str, incident_id: str) -> Incident:
        """One incident (NOT_FOUND, reason INCIDENT_NOT_FOUND)."""
        if not incident_id:
            raise InvalidArgumentError("incident_id", "must not be empty")
        return await self.store.get_incident(tenant=tenant, incident_id=incident_id)

    async def list_incidents(self, *, tenant: str, query: IncidentQuery) -> Page[Incident]:
        """Incidents matching all filters, newest first."""
        silences.validate_matchers(query.matchers, "matchers", required=False, limits=self.limits)
        _check_range(query.start_time, query.end_time, "time_range")
        return await self.store.list_incidents(
            tenant=tenant, query=replace(query, page_size=_page_size(query.page_size, 50, 500))
        )

    async def list_alerts(self, *, tenant: str, query: AlertQuery) -> Page[Alert]:
        """Alerts matching all filters, most recently seen first."""
        silences.validate_matchers(query.matchers, "matchers", required=False, limits=self.limits)
        _check_range(query.start_time, query.end_time, "time_range")
        return await self.store.list_alerts(
            tenant=tenant, query=replace(query, page_size=_page_size(query.page_size, 50, 500))
        )

    async def list_timeline(self, *, tenant: str, query: TimelineQuery) -> Page[TimelineEntry]:
        """An incident's timeline, oldest first (NOT_FOUND if the incident does not exist)."""
        await self.get_incident(tenant=tenant, incident_id=query.incident_id)
        return await self.store.list_timeline(
            tenant=tenant, query=replace(query, page_size=_page_size(query.page_size, 100, 1000))
        )

    async def get_stats(
        self,
        *,
        tenant: str,
        start_time: datetime | None,
        end_time: datetime | None,
        service: str = "",
        model: str = "",
    ) -> IncidentStats:
        """Noise funnel and response times; the default range is the last 7 days, at most 90."""
        end = end_time or self.clock.now()
        start = start_time or end - timedelta(days=7)
        _check_range(start, end, "time_range")
        if end - start > self.limits.max_stats_range:
            raise InvalidArgumentError(
                "time_range", f"spans more than {self.limits.max_stats_range.days} days"
            )
        return await self.store.get_stats(
            tenant=tenant, start_time=start, end_time=end, service=service, model=model
        )

    async def watch(
        self, *, tenant: str, filter: WatchFilter, resume_cursor: str = "", heartbeat_s: float = 15.0
    ) -> AsyncIterator[IncidentChange]:
        """Changes matching `filter` as they happen, heartbeats every `heartbeat_s` seconds."""
        silences.validate_matchers(filter.matchers, "matchers", required=False, limits=self.limits)
        subscription = self.feed.subscribe(tenant=tenant, resume_cursor=resume_cursor)
        try:
            while True:
                change = await subscription.next(heartbeat_s)
                if change is None:
                    yield IncidentChange(
                        tenant, ChangeType.HEARTBEAT, self.clock.now(), None, cursor=subscription.cursor
                    )
                elif change.incident is not None and filter.matches(change.incident):
                    yield change
        finally:
            subscription.close()

    def _publish(
        self,
        tenant: str,
        kind: ChangeType,
        incident: Incident,
        entries: Sequence[TimelineEntry],
        now: datetime,
    ) -> None:
        self.feed.publish(IncidentChange(tenant, kind, now, incident, tuple(entries)))

    # ------------------------------------------------------------------ silences

    async def create_silence(
        self,
        *,
        tenant: str,
        matchers: Sequence[LabelMatcher],
        start_time: datetime | None,
        end_time: datetime | None,
        comment: str,
        maintenance: bool = False,
        actor: str = "",
        request_id: str = "",
    ) -> Silence:
        """Create a silence (or maintenance window) and mark the open incidents it matches suppressed."""
        self.tenants.add(tenant)
        now = self.clock.now()
        silence = silences.new_silence(
            silence_id=stable_id("sil_", tenant, request_id) if request_id else self._new_id("sil_"),
            matchers=matchers,
            start_time=start_time,
            end_time=end_time,
            created_by=actor or default_actor(tenant),
            comment=comment,
            maintenance=maintenance,
            now=now,
            limits=self.limits,
        )
        saved = await self.store.put_silence(tenant=tenant, silence=silence)
        self._silences.pop(tenant, None)
        if saved.state(now) is SilenceState.ACTIVE:
            await self._suppress_open_incidents(tenant, saved)
        return saved

    async def _suppress_open_incidents(self, tenant: str, silence: Silence) -> None:
        page = await self.store.list_incidents(
            tenant=tenant, query=IncidentQuery(states=OPEN_STATES, page_size=1000)
        )
        for incident in page.items:
            if incident.suppressed or not silences.matches_all(
                silence.matchers, silences.incident_labels(incident)
            ):
                continue

            def mutate(current: Incident, now: datetime) -> lifecycle.Change | None:
                if current.suppressed:
                    return None
                entry = timeline.suppressed(
                    current.incident_id,
                    silence_id=silence.silence_id,
                    maintenance=silence.maintenance,
                    now=now,
                    actor=silence.created_by,
                    key="created",
                )
                return lifecycle.Change(
                    replace(current, suppressed=True, silence_id=silence.silence_id, update_time=now),
                    (entry,),
                )

            with contextlib.suppress(NotFoundError):
                await self._change(tenant=tenant, incident_id=incident.incident_id, mutate=mutate)

    async def get_silence(self, *, tenant: str, silence_id: str) -> Silence:
        """One silence (NOT_FOUND, reason SILENCE_NOT_FOUND)."""
        if not silence_id:
            raise InvalidArgumentError("silence_id", "must not be empty")
        for silence in await self._all_silences(tenant):
            if silence.silence_id == silence_id:
                return silence
        raise NotFoundError(f"silence {silence_id} not found", reason="SILENCE_NOT_FOUND")

    async def list_silences(
        self,
        *,
        tenant: str,
        states: Sequence[SilenceState] = (),
        alert_labels: dict[str, str] | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Silence]:
        """Silences, newest first; with `alert_labels` only those that would mute such an alert."""
        page = await self.store.list_silences(
            tenant=tenant,
            query=SilenceQuery(
                states=tuple(states), page_size=_page_size(page_size, 50, 500), page_token=page_token
            ),
        )
        if alert_labels:
            page = Page(
                [s for s in page.items if silences.matches_all(s.matchers, alert_labels)],
                page.next_page_token,
            )
        return page

    async def expire_silence(
        self, *, tenant: str, silence_id: str, actor: str = "", reason: str = ""
    ) -> Silence:
        """End a silence now (no-op when already expired)."""
        silence = await self.get_silence(tenant=tenant, silence_id=silence_id)
        ended = silences.expire(silence, now=self.clock.now())
        if ended is None:
            return silence
        logger.info("silence %s expired by %s: %s", silence_id, actor or default_actor(tenant), reason)
        saved = await self.store.put_silence(tenant=tenant, silence=ended)
        self._silences.pop(tenant, None)
        return saved

    # ------------------------------------------------------------------ helpers

    def _new_id(self, prefix: str) -> str:
        # Time-ordered (milliseconds, hex) then random: ids sort by creation, never collide.
        millis = int(self.clock.now().timestamp() * 1000)
        return f"{prefix}{millis:012x}{secrets.token_hex(8)}"


async def _settle(future: asyncio.Future[Any]) -> None:
    """Cancel `future` if still running; never leave its exception unretrieved."""
    if not future.done():
        future.cancel()
    with contextlib.suppress(BaseException):
        await future


class _IncidentMoved(Exception):
    """The incident an alert was joining changed under us: decide the placement again."""


def _with_entries(
    change: lifecycle.Change | None, extra: tuple[TimelineEntry, ...], incident: Incident, now: datetime
) -> lifecycle.Change | None:
    if change is None:
        return lifecycle.Change(replace(incident, update_time=now), extra) if extra else None
    return lifecycle.Change(change.incident, (*extra, *change.entries))


def _page_size(requested: int, default: int, cap: int) -> int:
    if requested < 0:
        raise InvalidArgumentError("page_size", "must not be negative")
    return default if requested == 0 else min(requested, cap)


def _check_range(start: datetime | None, end: datetime | None, field_name: str) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidArgumentError(field_name, "end_time is before start_time")
