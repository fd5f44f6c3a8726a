"""What the incident use cases need from the outside world.

`IncidentStore` is storage's typed API (PostgreSQL is the truth); `DedupLock` is the hot dedup path
(Redis SET NX with TTL); `IncidentFeed` broadcasts changes to watchers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from sentinel.incident_manager.domain.model import (
    Alert,
    AlertStatus,
    Incident,
    IncidentChange,
    IncidentState,
    IncidentStats,
    LabelMatcher,
    Priority,
    Severity,
    Silence,
    SilenceState,
    TimelineEntry,
    TimelineKind,
)
from sentinel.runtime.errors import SentinelError

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the token of the next (empty on the last page)."""

    items: list[T]
    next_page_token: str = ""


@dataclass(frozen=True)
class IncidentQuery:
    """Filters of a list of incidents; every set filter must match."""

    states: tuple[IncidentState, ...] = ()
    severities: tuple[Severity, ...] = ()
    priorities: tuple[Priority, ...] = ()
    service: str = ""
    model: str = ""
    group_key: str = ""
    matchers: tuple[LabelMatcher, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    text: str = ""
    assignee: str = ""
    page_size: int = 50
    page_token: str = ""


@dataclass(frozen=True)
class AlertQuery:
    """Filters of a list of alerts; every set filter must match."""

    incident_id: str = ""
    fingerprint: str = ""
    group_key: str = ""
    statuses: tuple[AlertStatus, ...] = ()
    matchers: tuple[LabelMatcher, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    page_size: int = 50
    page_token: str = ""


@dataclass(frozen=True)
class TimelineQuery:
    """Selects an incident's timeline entries, oldest first."""

    incident_id: str
    kinds: tuple[TimelineKind, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    page_size: int = 100
    page_token: str = ""


@dataclass(frozen=True)
class SilenceQuery:
    """Selects silences, newest first."""

    states: tuple[SilenceState, ...] = ()
    page_size: int = 100
    page_token: str = ""


@dataclass(frozen=True)
class AlertWrite:
    """One alert write of a group commit: `alert` at `expected_version` (0: unconditional) and
    the timeline entries appended with it, only if it is applied; with `new_incident`, the
    incident the alert opens, inserted first (version 1) in the same transaction."""

    alert: Alert
    expected_version: int
    entries: tuple[TimelineEntry, ...] = ()
    new_incident: Incident | None = None


class IncidentStore(Protocol):
    """Durable alerts, incidents, timelines and silences (the storage service).

    Errors are domain errors: NotFoundError (reason INCIDENT_NOT_FOUND, ...), ConflictError (reason
    VERSION_MISMATCH), AlreadyExistsError (reason OPEN_INCIDENT_EXISTS with metadata
    "incident_id", or INCIDENT_EXISTS), UnavailableError.
    """

    async def get_alert(self, *, tenant: str, alert_id: str) -> Alert | None:
        """The stored alert, or None."""
        ...

    async def upsert_alert(self, *, tenant: str, alert: Alert, expected_version: int) -> Alert:
        """Insert or replace; with expected_version > 0 only if the stored version matches."""
        ...

    async def list_alerts(self, *, tenant: str, query: AlertQuery) -> Page[Alert]:
        """Alerts matching `query`, most recently seen first."""
        ...

    async def apply_alert_changes(
        self, *, tenant: str, writes: Sequence[AlertWrite]
    ) -> list[Alert | SentinelError]:
        """Apply writes of distinct alerts in ONE transaction, acknowledged once committed.

        Per write, in order: the stored alert (new version), or why that write wrote nothing
        (ConflictError VERSION_MISMATCH, NotFoundError ALERT_NOT_FOUND, AlreadyExistsError
        OPEN_INCIDENT_EXISTS with metadata "incident_id"); the others are unaffected. Entries of a
        missing incident are skipped. A new incident already stored (a retry) is kept.
        """
        ...

    async def create_incident(
        self, *, tenant: str, incident: Incident, entries: Sequence[TimelineEntry]
    ) -> Incident:
        """Insert a new incident (version 1) with its first entries, atomically."""
        ...

    async def update_incident(
        self,
        *,
        tenant: str,
        incident: Incident,
        expected_version: int,
        entries: Sequence[TimelineEntry],
        request_id: str = "",
    ) -> Incident:
        """Replace an incident at `expected_version` and append entries, atomically."""
        ...

    async def group_incidents(
        self, *, tenant: str, group_key: str
    ) -> tuple[Incident | None, Incident | None]:
        """The group's TRIGGERED/ACKNOWLEDGED incident and its newest RESOLVED one (each or None)."""
        ...

    async def get_incident(self, *, tenant: str, incident_id: str) -> Incident:
        """One incident (NotFoundError if missing)."""
        ...

    async def list_incidents(self, *, tenant: str, query: IncidentQuery) -> Page[Incident]:
        """Incidents matching `query`, newest first."""
        ...

    async def append_timeline(self, *, tenant: str, entries: Sequence[TimelineEntry]) -> None:
        """Append entries (idempotent by entry_id)."""
        ...

    async def list_timeline(self, *, tenant: str, query: TimelineQuery) -> Page[TimelineEntry]:
        """An incident's timeline, oldest first."""
        ...

    async def put_silence(self, *, tenant: str, silence: Silence) -> Silence:
        """Insert or replace a silence by silence_id."""
        ...

    async def list_silences(self, *, tenant: str, query: SilenceQuery) -> Page[Silence]:
        """Silences, newest first."""
        ...

    async def get_stats(
        self, *, tenant: str, start_time: datetime, end_time: datetime, service: str, model: str
    ) -> IncidentStats:
        """Noise funnel and response times computed from stored data."""
        ...


class DedupLock(Protocol):
    """The hot dedup path: who first claims a fingerprint creates its alert."""

    async def claim(self, *, tenant: str, fingerprint: str, ttl_s: float) -> bool:
        """Atomically claim `fingerprint` for `ttl_s` seconds; False if already claimed."""
        ...

    async def release(self, *, tenant: str, fingerprint: str) -> None:
        """Drop a claim (after a failed create, so the next report may try again)."""
        ...


class Subscription(Protocol):
    """One watcher's queue of changes."""

    @property
    def cursor(self) -> str:
        """Cursor of the last change delivered (or of the feed's head when none was)."""
        ...

    async def next(self, timeout_s: float) -> IncidentChange | None:
        """The next change, or None after `timeout_s` without one."""
        ...

    def close(self) -> None:
        """Stop receiving."""
        ...


class IncidentFeed(Protocol):
    """Broadcast of incident changes to watchers, with a bounded replay window (in process or Redis)."""

    def publish(self, change: IncidentChange) -> None:
        """Deliver `change` to the tenant's watchers (never blocks)."""
        ...

    def subscribe(self, *, tenant: str, resume_cursor: str = "") -> Subscription:
        """Watch the tenant's changes, first replaying those after `resume_cursor`."""
        ...
