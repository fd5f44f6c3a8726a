"""Incident-record use cases: validate with the domain, plan pages, then delegate to the port."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import InvalidArgumentError, NotFoundError
from sentinel.storage.domain import incidents as domain
from sentinel.storage.domain.incidents import (
    AlertChange,
    AlertChangeResult,
    AlertFilter,
    AlertRecord,
    IncidentFilter,
    IncidentRecord,
    IncidentStats,
    PolicyFilter,
    PolicyKind,
    PolicyRecord,
    SilenceFilter,
    SilenceRecord,
    StatsRequest,
    Stored,
    StoredPage,
    TimelineFilter,
    TimelineRecord,
)
from sentinel.storage.incident_ports import IncidentRecords
from sentinel.storage.service import unix_nanos


class IncidentRecordsService:
    """Alerts, incidents, timelines, silences and policies of incident-manager, per tenant."""

    def __init__(self, *, records: IncidentRecords, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    def _now_us(self) -> int:
        return unix_nanos(self._clock.now()) // 1_000

    # -- alerts ---------------------------------------------------------------------------------

    async def upsert_alert(
        self, *, tenant: str, alert: AlertRecord, expected_version: int
    ) -> tuple[Stored, bool]:
        """Insert or replace an alert; storage sets its version."""
        domain.validate_alert(alert, expected_version)
        return await self._records.upsert_alert(
            tenant=tenant, alert=alert, expected_version=expected_version, now_us=self._now_us()
        )

    async def apply_alert_changes(
        self, *, tenant: str, changes: Sequence[AlertChange]
    ) -> list[AlertChangeResult]:
        """Apply alert writes and their timeline entries in one transaction; results in order."""
        domain.validate_alert_changes(changes)
        return await self._records.apply_alert_changes(tenant=tenant, changes=changes, now_us=self._now_us())

    async def get_alert(
        self, *, tenant: str, alert_id: str, fingerprint: str, allow_missing: bool = False
    ) -> Stored | None:
        """By id, or the most recently seen alert with a fingerprint (None if missing and allowed)."""
        if not alert_id and not fingerprint:
            raise InvalidArgumentError("key", "give alert_id or fingerprint")
        if alert_id:
            domain.validate_key(alert_id, "alert_id")
        elif len(fingerprint) > domain.MAX_KEY:
            raise InvalidArgumentError("fingerprint", f"at most {domain.MAX_KEY} characters")
        try:
            return await self._records.get_alert(tenant=tenant, alert_id=alert_id, fingerprint=fingerprint)
        except NotFoundError:
            if allow_missing:
                return None
            raise

    async def get_alerts(self, *, tenant: str, alert_ids: Sequence[str]) -> dict[str, Stored]:
        """The stored alerts among 1..MAX_CHANGES ids, by id (missing ones left out)."""
        _check_keys(alert_ids, "alert_ids", limit=domain.MAX_ID)
        return await self._records.get_alerts(tenant=tenant, alert_ids=alert_ids)

    async def group_incidents(
        self, *, tenant: str, group_keys: Sequence[str]
    ) -> list[tuple[str, Stored | None, Stored | None]]:
        """Per group key, in order: its open incident and its newest resolved one (None if none)."""
        _check_keys(group_keys, "group_keys", limit=domain.MAX_KEY)
        found = await self._records.group_incidents(tenant=tenant, group_keys=group_keys)
        return [(key, *found.get(key, (None, None))) for key in group_keys]

    async def list_alerts(self, *, tenant: str, filter: AlertFilter) -> StoredPage:
        """Alerts matching every filter, most recently seen first."""
        domain.validate_alert_filter(filter)
        page = domain.plan_page(
            filter.page_size,
            filter.page_token,
            query=("alerts", *dataclasses.astuple(dataclasses.replace(filter, page_size=0, page_token=""))),
            shape=(int, str),
        )
        return await self._records.list_alerts(tenant=tenant, filter=filter, page=page)

    # -- incidents ------------------------------------------------------------------------------

    async def create_incident(
        self, *, tenant: str, incident: IncidentRecord, timeline: Sequence[TimelineRecord]
    ) -> Stored:
        """Insert a new incident (version 1) and its first timeline entries together."""
        domain.validate_incident(incident)
        domain.validate_timeline(timeline, "timeline_entries", incident_id=incident.incident_id)
        return await self._records.create_incident(
            tenant=tenant,
            incident=incident,
            timeline=_owned(timeline, incident.incident_id),
            now_us=self._now_us(),
        )

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: IncidentRecord,
        expected_version: int,
        timeline: Sequence[TimelineRecord],
        request_id: str,
    ) -> Stored:
        """Replace an incident at expected_version, appending timeline entries together."""
        domain.validate_key(incident.incident_id, "incident.incident_id")
        if expected_version <= 0:
            raise InvalidArgumentError("expected_version", "must be positive")
        if len(request_id) > domain.MAX_ID:
            raise InvalidArgumentError("request_id", f"at most {domain.MAX_ID} characters")
        domain.validate_incident(incident)
        domain.validate_timeline(timeline, "timeline_entries", incident_id=incident.incident_id)
        return await self._records.update_incident(
            tenant=tenant,
            incident=incident,
            expected_version=expected_version,
            timeline=_owned(timeline, incident.incident_id),
            request_id=request_id,
            now_us=self._now_us(),
        )

    async def get_incident(self, *, tenant: str, incident_id: str) -> Stored:
        """One incident."""
        domain.validate_key(incident_id, "incident_id")
        return await self._records.get_incident(tenant=tenant, incident_id=incident_id)

    async def list_incidents(self, *, tenant: str, filter: IncidentFilter) -> StoredPage:
        """Incidents matching every filter, newest first (or earliest escalation first)."""
        domain.validate_incident_filter(filter)
        page = domain.plan_page(
            filter.page_size,
            filter.page_token,
            query=(
                "incidents",
                *dataclasses.astuple(dataclasses.replace(filter, page_size=0, page_token="")),
            ),
            shape=(int, str),
        )
        return await self._records.list_incidents(tenant=tenant, filter=filter, page=page)

    async def incident_stats(self, *, tenant: str, request: StatsRequest) -> IncidentStats:
        """The noise funnel and response times over a range of at most 90 days."""
        start, end = domain.plan_stats(request, now_us=self._now_us())
        return await self._records.incident_stats(tenant=tenant, request=request, start_us=start, end_us=end)

    # -- timeline -------------------------------------------------------------------------------

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineRecord]) -> tuple[int, int]:
        """Append entries (idempotent by entry_id); returns (appended, duplicates)."""
        if not entries:
            raise InvalidArgumentError("entries", "at least one entry is required")
        domain.validate_timeline(entries, "entries", incident_id=None)
        return await self._records.append_timeline(tenant=tenant, entries=entries)

    async def list_timeline(self, *, tenant: str, filter: TimelineFilter) -> StoredPage:
        """An incident's timeline, oldest first."""
        domain.validate_timeline_filter(filter)
        page = domain.plan_page(
            filter.page_size,
            filter.page_token,
            query=("timeline", *dataclasses.astuple(dataclasses.replace(filter, page_size=0, page_token=""))),
            shape=(int, int),
        )
        return await self._records.list_timeline(tenant=tenant, filter=filter, page=page)

    # -- silences -------------------------------------------------------------------------------

    async def put_silence(self, *, tenant: str, silence: SilenceRecord) -> tuple[Stored, bool]:
        """Insert or replace a silence; its state is evaluated now."""
        domain.validate_silence(silence)
        now = self._now_us()
        if silence.start_us is None and silence.end_us is not None and silence.end_us <= now:
            raise InvalidArgumentError("silence.end_time", "must be after start_time (unset: now)")
        stored, created = await self._records.put_silence(tenant=tenant, silence=silence, now_us=now)
        return _with_state(stored, now), created

    async def list_silences(self, *, tenant: str, filter: SilenceFilter) -> StoredPage:
        """Silences in the given states (evaluated now), newest first."""
        page = domain.plan_page(
            filter.page_size,
            filter.page_token,
            query=("silences", sorted(filter.states)),
            shape=(int, str),
        )
        now = self._now_us()
        found = await self._records.list_silences(tenant=tenant, states=filter.states, page=page, now_us=now)
        return StoredPage(tuple(_with_state(s, now) for s in found.items), found.next_page_token)

    async def delete_silence(self, *, tenant: str, silence_id: str) -> None:
        """Remove a silence."""
        domain.validate_key(silence_id, "silence_id")
        await self._records.delete_silence(tenant=tenant, silence_id=silence_id)

    # -- policies -------------------------------------------------------------------------------

    async def put_policy(
        self, *, tenant: str, policy: PolicyRecord, expected_version: int, request_id: str
    ) -> tuple[Stored, bool]:
        """Insert or replace a policy; storage sets its version and times."""
        domain.validate_policy(policy, expected_version)
        if len(request_id) > domain.MAX_ID:
            raise InvalidArgumentError("request_id", f"at most {domain.MAX_ID} characters")
        return await self._records.put_policy(
            tenant=tenant,
            policy=policy,
            expected_version=expected_version,
            request_id=request_id,
            now_us=self._now_us(),
        )

    async def get_policy(self, *, tenant: str, kind: PolicyKind | None, policy_id: str) -> Stored:
        """One policy."""
        kind = _kind(kind)
        domain.validate_key(policy_id, "policy_id")
        return await self._records.get_policy(tenant=tenant, kind=kind, policy_id=policy_id)

    async def list_policies(self, *, tenant: str, filter: PolicyFilter) -> StoredPage:
        """The policies of one kind, by name (routing rules by order, then name)."""
        kind = _kind(filter.kind)
        page = domain.plan_page(
            filter.page_size, filter.page_token, query=("policies", int(kind)), shape=(int, str)
        )
        return await self._records.list_policies(tenant=tenant, kind=kind, page=page)

    async def delete_policy(
        self, *, tenant: str, kind: PolicyKind | None, policy_id: str, expected_version: int
    ) -> None:
        """Remove a policy, optionally only at expected_version."""
        kind = _kind(kind)
        domain.validate_key(policy_id, "policy_id")
        if expected_version < 0:
            raise InvalidArgumentError("expected_version", "must not be negative")
        await self._records.delete_policy(
            tenant=tenant, kind=kind, policy_id=policy_id, expected_version=expected_version
        )


def _check_keys(keys: Sequence[str], field: str, *, limit: int) -> None:
    if not keys:
        raise InvalidArgumentError(field, "at least one is required")
    if len(keys) > domain.MAX_CHANGES:
        raise InvalidArgumentError(field, f"has {len(keys)} entries; at most {domain.MAX_CHANGES}")
    for i, key in enumerate(keys):
        if not key or len(key) > limit:
            raise InvalidArgumentError(f"{field}[{i}]", f"must be 1..{limit} characters")


def _kind(kind: PolicyKind | None) -> PolicyKind:
    if kind is None:
        raise InvalidArgumentError("kind", "is required")
    return kind


def _owned(entries: Sequence[TimelineRecord], incident_id: str) -> tuple[TimelineRecord, ...]:
    """Entries of an incident's create/update, each naming the incident."""
    return tuple(e if e.incident_id else dataclasses.replace(e, incident_id=incident_id) for e in entries)


def _with_state(stored: Stored, now_us: int) -> Stored:
    assert stored.start_us is not None
    assert stored.end_us is not None
    state = domain.silence_state(start_us=stored.start_us, end_us=stored.end_us, now_us=now_us)
    return dataclasses.replace(stored, silence_state=state)
