"""Fakes of the incident manager's ports (in memory, with storage's documented semantics)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel.incident_manager.adapters.dedup import InProcessDedupLock
from sentinel.incident_manager.adapters.feed import InProcessFeed
from sentinel.incident_manager.domain.model import (
    Alert,
    AlertStatus,
    Incident,
    IncidentState,
    IncidentStats,
    Silence,
    TimelineEntry,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy
from sentinel.incident_manager.domain.silences import matches_all
from sentinel.incident_manager.ports import (
    AlertQuery,
    AlertWrite,
    IncidentQuery,
    Page,
    SilenceQuery,
    TimelineQuery,
)
from sentinel.incident_manager.service import IncidentService
from sentinel.runtime.clock import ManualClock
from sentinel.runtime.errors import AlreadyExistsError, ConflictError, NotFoundError, SentinelError

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def page_of(items: list[Any], size: int, token: str) -> Page[Any]:
    start = int(token or 0)
    size = size or 100
    chunk = items[start : start + size]
    more = start + size < len(items)
    return Page(chunk, str(start + size) if more else "")


class FakeIncidentStore:
    """Storage's incident RPCs over dicts, per tenant; yields to the loop on every call."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.alerts: dict[tuple[str, str], Alert] = {}
        self.incidents: dict[tuple[str, str], Incident] = {}
        self.entries: dict[tuple[str, str], TimelineEntry] = {}
        self.silences: dict[tuple[str, str], Silence] = {}
        self.requests: dict[tuple[str, str], Incident] = {}
        self.calls: dict[str, int] = {}

    async def _tick(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        await asyncio.sleep(0)

    async def get_alert(self, *, tenant: str, alert_id: str) -> Alert | None:
        await self._tick("get_alert")
        return self.alerts.get((tenant, alert_id))

    async def upsert_alert(self, *, tenant: str, alert: Alert, expected_version: int) -> Alert:
        await self._tick("upsert_alert")
        stored = self.alerts.get((tenant, alert.alert_id))
        if expected_version:
            if stored is None:
                raise NotFoundError("no such alert", reason="ALERT_NOT_FOUND")
            if stored.version != expected_version:
                raise ConflictError("version differs", reason="VERSION_MISMATCH")
        saved = replace(alert, version=(stored.version if stored else 0) + 1)
        self.alerts[(tenant, alert.alert_id)] = saved
        return saved

    async def apply_alert_changes(
        self, *, tenant: str, writes: Sequence[AlertWrite]
    ) -> list[Alert | SentinelError]:
        await self._tick("apply_alert_changes")
        assert len({w.alert.alert_id for w in writes}) == len(writes), "one write per alert"
        outcomes: list[Alert | SentinelError] = []
        for write in writes:
            stored = self.alerts.get((tenant, write.alert.alert_id))
            if write.expected_version and stored is None:
                outcomes.append(NotFoundError("no such alert", reason="ALERT_NOT_FOUND"))
                continue
            if write.expected_version and stored is not None and stored.version != write.expected_version:
                outcomes.append(ConflictError("version differs", reason="VERSION_MISMATCH"))
                continue
            new = write.new_incident
            if new is not None and (tenant, new.incident_id) not in self.incidents:
                other = self._open_with(tenant, new.group_key, new.incident_id)
                if other is not None:
                    outcomes.append(
                        AlreadyExistsError(
                            "open incident exists",
                            reason="OPEN_INCIDENT_EXISTS",
                            metadata={"incident_id": other.incident_id},
                        )
                    )
                    continue
                self.incidents[(tenant, new.incident_id)] = replace(new, version=1)
            saved = replace(write.alert, version=(stored.version if stored else 0) + 1)
            self.alerts[(tenant, write.alert.alert_id)] = saved
            self._append(tenant, [e for e in write.entries if (tenant, e.incident_id) in self.incidents])
            outcomes.append(saved)
        return outcomes

    async def list_alerts(self, *, tenant: str, query: AlertQuery) -> Page[Alert]:
        await self._tick("list_alerts")
        found = [
            a
            for (t, _), a in self.alerts.items()
            if t == tenant
            and (not query.incident_id or a.incident_id == query.incident_id)
            and (not query.fingerprint or a.fingerprint == query.fingerprint)
            and (not query.group_key or a.group_key == query.group_key)
            and (not query.statuses or a.status in query.statuses)
            and matches_all(query.matchers, a.matcher_labels())
        ]
        found.sort(key=lambda a: a.last_seen_time, reverse=True)
        return page_of(found, query.page_size, query.page_token)

    def _open_with(self, tenant: str, group_key: str, but: str) -> Incident | None:
        for (t, _), incident in self.incidents.items():
            if (
                t == tenant
                and incident.group_key == group_key
                and incident.state.is_open
                and incident.incident_id != but
            ):
                return incident
        return None

    async def create_incident(
        self, *, tenant: str, incident: Incident, entries: Sequence[TimelineEntry]
    ) -> Incident:
        await self._tick("create_incident")
        if (tenant, incident.incident_id) in self.incidents:
            raise AlreadyExistsError("exists", reason="INCIDENT_EXISTS")
        other = self._open_with(tenant, incident.group_key, incident.incident_id)
        if other is not None:
            raise AlreadyExistsError(
                "open incident exists",
                reason="OPEN_INCIDENT_EXISTS",
                metadata={"incident_id": other.incident_id},
            )
        saved = replace(incident, version=1)
        self.incidents[(tenant, incident.incident_id)] = saved
        self._append(tenant, entries)
        return saved

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: Incident,
        expected_version: int,
        entries: Sequence[TimelineEntry],
        request_id: str = "",
    ) -> Incident:
        await self._tick("update_incident")
        if request_id and (tenant, request_id) in self.requests:
            return self.requests[(tenant, request_id)]
        stored = self.incidents.get((tenant, incident.incident_id))
        if stored is None:
            raise NotFoundError("no such incident", reason="INCIDENT_NOT_FOUND")
        if stored.version != expected_version:
            raise ConflictError("version differs", reason="VERSION_MISMATCH")
        if incident.state.is_open and not stored.state.is_open:
            other = self._open_with(tenant, incident.group_key, incident.incident_id)
            if other is not None:
                raise AlreadyExistsError(
                    "open incident exists",
                    reason="OPEN_INCIDENT_EXISTS",
                    metadata={"incident_id": other.incident_id},
                )
        saved = replace(incident, version=expected_version + 1)
        self.incidents[(tenant, incident.incident_id)] = saved
        self._append(tenant, entries)
        if request_id:
            self.requests[(tenant, request_id)] = saved
        return saved

    async def get_incident(self, *, tenant: str, incident_id: str) -> Incident:
        await self._tick("get_incident")
        try:
            return self.incidents[(tenant, incident_id)]
        except KeyError:
            raise NotFoundError(f"incident {incident_id} not found", reason="INCIDENT_NOT_FOUND") from None

    async def group_incidents(
        self, *, tenant: str, group_key: str
    ) -> tuple[Incident | None, Incident | None]:
        await self._tick("group_incidents")
        mine = [i for (t, _), i in self.incidents.items() if t == tenant and i.group_key == group_key]
        resolved = [i for i in mine if i.state is IncidentState.RESOLVED]
        resolved.sort(key=lambda i: (i.create_time, i.incident_id), reverse=True)
        return next((i for i in mine if i.state.is_open), None), (resolved[0] if resolved else None)

    async def list_incidents(self, *, tenant: str, query: IncidentQuery) -> Page[Incident]:
        await self._tick("list_incidents")
        found = [
            i
            for (t, _), i in self.incidents.items()
            if t == tenant
            and (not query.states or i.state in query.states)
            and (not query.severities or i.severity in query.severities)
            and (not query.service or i.service == query.service)
            and (not query.model or i.model == query.model)
            and (not query.group_key or i.group_key == query.group_key)
            and (not query.assignee or query.assignee in i.assignees)
            and (not query.text or query.text.lower() in (i.title + i.description).lower())
            and matches_all(query.matchers, i.matcher_labels())
        ]
        found.sort(key=lambda i: (i.create_time, i.incident_id), reverse=True)
        return page_of(found, query.page_size, query.page_token)

    def _append(self, tenant: str, entries: Sequence[TimelineEntry]) -> None:
        for entry in entries:
            self.entries.setdefault((tenant, entry.entry_id), entry)

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineEntry]) -> None:
        await self._tick("append_timeline")
        for entry in entries:
            if (tenant, entry.incident_id) not in self.incidents:
                raise NotFoundError("no such incident", reason="INCIDENT_NOT_FOUND")
        self._append(tenant, entries)

    async def list_timeline(self, *, tenant: str, query: TimelineQuery) -> Page[TimelineEntry]:
        await self._tick("list_timeline")
        if (tenant, query.incident_id) not in self.incidents:
            raise NotFoundError("no such incident", reason="INCIDENT_NOT_FOUND")
        found = [
            e
            for (t, _), e in self.entries.items()
            if t == tenant
            and e.incident_id == query.incident_id
            and (not query.kinds or e.kind in query.kinds)
            and (query.start_time is None or e.event_time >= query.start_time)
            and (query.end_time is None or e.event_time < query.end_time)
        ]
        return page_of(found, query.page_size, query.page_token)

    def timeline(self, tenant: str, incident_id: str) -> list[TimelineEntry]:
        return [e for (t, _), e in self.entries.items() if t == tenant and e.incident_id == incident_id]

    async def put_silence(self, *, tenant: str, silence: Silence) -> Silence:
        await self._tick("put_silence")
        self.silences[(tenant, silence.silence_id)] = silence
        return silence

    async def list_silences(self, *, tenant: str, query: SilenceQuery) -> Page[Silence]:
        await self._tick("list_silences")
        now = self.clock.now()
        found = [
            s
            for (t, _), s in self.silences.items()
            if t == tenant and (not query.states or s.state(now) in query.states)
        ]
        return page_of(found, query.page_size, query.page_token)

    async def get_stats(
        self, *, tenant: str, start_time: datetime, end_time: datetime, service: str, model: str
    ) -> IncidentStats:
        await self._tick("get_stats")
        alerts = [a for (t, _), a in self.alerts.items() if t == tenant]
        incidents = [
            i
            for (t, _), i in self.incidents.items()
            if t == tenant and start_time <= i.create_time < end_time
        ]
        return IncidentStats(
            start_time=start_time,
            end_time=end_time,
            alerts_received=sum(1 + a.duplicate_count for a in alerts),
            alerts_deduplicated=sum(a.duplicate_count for a in alerts),
            alerts_suppressed=sum(1 for a in alerts if a.silenced_by),
            incidents_created=len(incidents),
            incidents_resolved=sum(1 for a in alerts if a.status is AlertStatus.RESOLVED),
        )


ServiceFactory = Callable[..., IncidentService]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(clock: ManualClock) -> FakeIncidentStore:
    return FakeIncidentStore(clock)


@pytest.fixture
def make_service(store: FakeIncidentStore, clock: ManualClock) -> ServiceFactory:
    """A service over the shared fake store; each call is another replica unless `dedup` is shared."""

    def make(dedup: InProcessDedupLock | None = None, **policy: Any) -> IncidentService:
        return IncidentService(
            store=store,
            dedup=dedup or InProcessDedupLock(clock),
            feed=InProcessFeed(),
            clock=clock,
            policy=IncidentPolicy(**policy),
            claim_wait_s=2.0,
        )

    return make


@pytest.fixture
def service(make_service: ServiceFactory) -> IncidentService:
    return make_service()
