"""Timeline entries: every change of an incident, with time, actor, reason and kind.

Entry ids are deterministic where the same change may be written twice (a retried report or
update), so that storage's idempotency by entry_id drops the repeat.
"""

from __future__ import annotations

from datetime import datetime

from sentinel.incident_manager.domain.fingerprint import stable_id
from sentinel.incident_manager.domain.model import (
    Alert,
    IncidentState,
    Priority,
    Severity,
    TimelineEntry,
    TimelineKind,
)

SYSTEM_AUTO_RESOLVE = "system:auto-resolve"
SYSTEM_FLAPPING = "system:flapping"


def source_actor(alert: Alert) -> str:
    """The actor of entries caused by an alert, e.g. "source:alertmanager"."""
    return f"source:{alert.source.fingerprint_name}"


def entry(
    *,
    incident_id: str,
    kind: TimelineKind,
    now: datetime,
    actor: str,
    key: str,
    reason: str = "",
    from_value: str = "",
    to_value: str = "",
    message: str = "",
    attributes: dict[str, str] | None = None,
) -> TimelineEntry:
    """One entry; `key` makes its id (same key, same id)."""
    return TimelineEntry(
        entry_id=stable_id("tle_", incident_id, kind.name, key),
        incident_id=incident_id,
        event_time=now,
        kind=kind,
        actor=actor,
        reason=reason,
        from_value=from_value,
        to_value=to_value,
        message=message,
        attributes=attributes or {},
    )


def alert_received(incident_id: str, alert: Alert, *, now: datetime, firing: int) -> TimelineEntry:
    """A new alert (or a new firing of a known one, counted by `firing`) was attached."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.ALERT_RECEIVED,
        now=now,
        actor=source_actor(alert),
        key=f"{alert.alert_id}:{firing}",
        message=f"alert received: {alert.title}",
        attributes={"alert_id": alert.alert_id, "fingerprint": alert.fingerprint},
    )


def alert_deduplicated(incident_id: str, alert: Alert, *, now: datetime) -> TimelineEntry:
    """A repeat was folded into `alert` (whose duplicate_count already counts it)."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.ALERT_DEDUPLICATED,
        now=now,
        actor=source_actor(alert),
        key=f"{alert.alert_id}:{alert.duplicate_count}",
        message=f"repeat #{alert.duplicate_count} of {alert.title}",
        attributes={"fingerprint": alert.fingerprint, "duplicate_count": str(alert.duplicate_count)},
    )


def alert_resolved(incident_id: str, alert: Alert, *, now: datetime, reason: str = "") -> TimelineEntry:
    """An attached alert resolved (reported resolved, expired, or resolved with its incident)."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.ALERT_RESOLVED,
        now=now,
        actor=source_actor(alert),
        key=f"{alert.alert_id}:{alert.version}:{now.isoformat()}",
        reason=reason,
        message=f"alert resolved: {alert.title}",
        attributes={"fingerprint": alert.fingerprint},
    )


def state_changed(
    incident_id: str,
    *,
    from_state: IncidentState,
    to_state: IncidentState,
    now: datetime,
    actor: str,
    reason: str,
    version: int,
) -> TimelineEntry:
    """The state changed (keyed by the incident version the change was based on)."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.STATE_CHANGED,
        now=now,
        actor=actor,
        key=f"{version}:{to_state.name}",
        reason=reason,
        from_value=from_state.name,
        to_value=to_state.name,
        message=f"{from_state.name.lower()} → {to_state.name.lower()}",
    )


def reopened(incident_id: str, *, now: datetime, actor: str, reason: str, reopen_count: int) -> TimelineEntry:
    """The incident went from RESOLVED back to TRIGGERED."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.REOPENED,
        now=now,
        actor=actor,
        key=str(reopen_count),
        reason=reason,
        from_value=IncidentState.RESOLVED.name,
        to_value=IncidentState.TRIGGERED.name,
        message=f"reopened (#{reopen_count})",
    )


def assigned(
    incident_id: str,
    *,
    before: tuple[str, ...],
    after: tuple[str, ...],
    now: datetime,
    actor: str,
    reason: str,
    version: int,
) -> TimelineEntry:
    """Assignees changed."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.ASSIGNED,
        now=now,
        actor=actor,
        key=str(version),
        reason=reason,
        from_value=",".join(before),
        to_value=",".join(after),
        message=f"assigned to {', '.join(after)}" if after else "unassigned",
    )


def note_added(incident_id: str, *, text: str, now: datetime, actor: str, key: str) -> TimelineEntry:
    """A note; `key` is the request id (or a fresh one) so a retried note is added once."""
    return entry(
        incident_id=incident_id, kind=TimelineKind.NOTE_ADDED, now=now, actor=actor, key=key, message=text
    )


def severity_changed(
    incident_id: str,
    *,
    before: tuple[Severity, Priority],
    after: tuple[Severity, Priority],
    now: datetime,
    actor: str,
    reason: str,
    version: int,
) -> TimelineEntry:
    """Severity or priority changed."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.SEVERITY_CHANGED,
        now=now,
        actor=actor,
        key=str(version),
        reason=reason,
        from_value=before[0].name,
        to_value=after[0].name,
        message=f"severity {before[0].label} → {after[0].label}",
        attributes={"from_priority": before[1].name, "to_priority": after[1].name},
    )


def suppressed(
    incident_id: str, *, silence_id: str, maintenance: bool, now: datetime, actor: str, key: str
) -> TimelineEntry:
    """A silence (or maintenance window) suppressed notification; names the silence."""
    what = "maintenance window" if maintenance else "silence"
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.SUPPRESSED,
        now=now,
        actor=actor,
        key=f"{silence_id}:{key}",
        message=f"suppressed by {what} {silence_id}",
        attributes={"silence_id": silence_id, "maintenance": str(maintenance).lower()},
    )


def flapping(incident_id: str, *, started: bool, now: datetime, changes: int, version: int) -> TimelineEntry:
    """Flapping started or stopped."""
    return entry(
        incident_id=incident_id,
        kind=TimelineKind.FLAPPING,
        now=now,
        actor=SYSTEM_FLAPPING,
        key=f"{version}:{started}",
        from_value=str(not started).lower(),
        to_value=str(started).lower(),
        message=(f"flapping: {changes} state changes in the window" if started else "stopped flapping"),
        attributes={"state_changes": str(changes)},
    )
