"""What the incident-record use cases need from the outside world (implemented in `adapters`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sentinel.storage.domain.incidents import (
    AlertChange,
    AlertChangeResult,
    AlertFilter,
    AlertRecord,
    IncidentFilter,
    IncidentRecord,
    IncidentStats,
    PagePlan,
    PolicyKind,
    PolicyRecord,
    SilenceRecord,
    SilenceState,
    StatsRequest,
    Stored,
    StoredPage,
    TimelineFilter,
    TimelineRecord,
)


class IncidentRecords(Protocol):
    """Durable alerts, incidents, timelines, silences and policies, each scoped to a tenant.

    Errors are the domain's: NotFoundError, ConflictError (VERSION_MISMATCH), AlreadyExistsError.
    """

    async def upsert_alert(
        self, *, tenant: str, alert: AlertRecord, expected_version: int, now_us: int
    ) -> tuple[Stored, bool]:
        """Insert or replace (conditionally, when expected_version > 0); returns (stored, created)."""
        ...

    async def apply_alert_changes(
        self, *, tenant: str, changes: Sequence[AlertChange], now_us: int
    ) -> list[AlertChangeResult]:
        """Every change (upsert as upsert_alert, then its entries if applied) in ONE transaction."""
        ...

    async def get_alert(self, *, tenant: str, alert_id: str = "", fingerprint: str = "") -> Stored:
        """By id, or the most recently seen alert with the fingerprint."""
        ...

    async def get_alerts(self, *, tenant: str, alert_ids: Sequence[str]) -> dict[str, Stored]:
        """The stored alerts among `alert_ids`, by id (missing ones left out)."""
        ...

    async def group_incidents(
        self, *, tenant: str, group_keys: Sequence[str]
    ) -> dict[str, tuple[Stored | None, Stored | None]]:
        """Per group key: its open incident and its newest resolved one (each None if none)."""
        ...

    async def list_alerts(self, *, tenant: str, filter: AlertFilter, page: PagePlan) -> StoredPage:
        """Most recently seen first."""
        ...

    async def create_incident(
        self, *, tenant: str, incident: IncidentRecord, timeline: Sequence[TimelineRecord], now_us: int
    ) -> Stored:
        """Insert (version 1) with its first timeline entries, in one transaction."""
        ...

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: IncidentRecord,
        expected_version: int,
        timeline: Sequence[TimelineRecord],
        request_id: str,
        now_us: int,
    ) -> Stored:
        """Replace if the version matches, appending timeline entries, in one transaction."""
        ...

    async def get_incident(self, *, tenant: str, incident_id: str) -> Stored:
        """One incident."""
        ...

    async def list_incidents(self, *, tenant: str, filter: IncidentFilter, page: PagePlan) -> StoredPage:
        """Newest first, or earliest escalation first with escalation_due_before."""
        ...

    async def incident_stats(
        self, *, tenant: str, request: StatsRequest, start_us: int, end_us: int
    ) -> IncidentStats:
        """The figures over [start_us, end_us), computed by the database."""
        ...

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineRecord]) -> tuple[int, int]:
        """(appended, duplicates) in one transaction."""
        ...

    async def list_timeline(self, *, tenant: str, filter: TimelineFilter, page: PagePlan) -> StoredPage:
        """Oldest first."""
        ...

    async def put_silence(self, *, tenant: str, silence: SilenceRecord, now_us: int) -> tuple[Stored, bool]:
        """Insert or replace; returns (stored, created)."""
        ...

    async def list_silences(
        self, *, tenant: str, states: tuple[SilenceState, ...], page: PagePlan, now_us: int
    ) -> StoredPage:
        """Newest first."""
        ...

    async def delete_silence(self, *, tenant: str, silence_id: str) -> None:
        """Remove one silence."""
        ...

    async def put_policy(
        self, *, tenant: str, policy: PolicyRecord, expected_version: int, request_id: str, now_us: int
    ) -> tuple[Stored, bool]:
        """Insert or replace (conditionally); returns (stored, created)."""
        ...

    async def get_policy(self, *, tenant: str, kind: PolicyKind, policy_id: str) -> Stored:
        """One policy."""
        ...

    async def list_policies(self, *, tenant: str, kind: PolicyKind, page: PagePlan) -> StoredPage:
        """By name (routing rules by order, then name)."""
        ...

    async def delete_policy(
        self, *, tenant: str, kind: PolicyKind, policy_id: str, expected_version: int
    ) -> None:
        """Remove one policy (conditionally, when expected_version > 0)."""
        ...
