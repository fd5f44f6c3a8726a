"""Grouping: where a new firing alert goes (attach, reopen, a new incident, or wait), and what an
incident looks like once an alert joined it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from enum import Enum

from sentinel.incident_manager.domain.model import (
    Alert,
    AlertStatus,
    Incident,
    IncidentState,
    Silence,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy

MAX_FINGERPRINTS = 100


class Placement(Enum):
    """Where a new firing alert goes."""

    ATTACH = "attach"
    REOPEN = "reopen"
    CREATE = "create"
    HOLD = "hold"


def place_alert(
    *,
    open_incident: Incident | None,
    last_resolved: Incident | None,
    pending_alerts: int,
    now: datetime,
    policy: IncidentPolicy,
) -> Placement:
    """Decide where a new firing alert of a group goes.

    Args:
        open_incident: The TRIGGERED/ACKNOWLEDGED incident of its group key, if any.
        last_resolved: The most recently resolved incident of its group key, if any.
        pending_alerts: Other firing alerts of the group that wait for an incident, first seen
            within the group window (the minimum-count rule).
        now: Current time.
        policy: Windows and minimum count.
    """
    if open_incident is not None and open_incident.state.is_open:
        return Placement.ATTACH
    if (
        last_resolved is not None
        and last_resolved.state is IncidentState.RESOLVED
        and last_resolved.resolve_time is not None
        and now - last_resolved.resolve_time < policy.reopen_window
    ):
        return Placement.REOPEN
    if pending_alerts + 1 >= policy.min_alerts:
        return Placement.CREATE
    return Placement.HOLD


def in_group_window(alert: Alert, *, now: datetime, policy: IncidentPolicy) -> bool:
    """Whether a waiting alert still counts towards its group's minimum (seen within the window)."""
    return (
        alert.status is AlertStatus.FIRING
        and not alert.incident_id
        and now - alert.last_seen_time < policy.group_window
    )


def _common(values: list[str]) -> str:
    return values[0] if values and all(v == values[0] for v in values) else ""


def _common_labels(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in a.items() if b.get(k) == v}


def new_incident(
    alert: Alert, *, incident_id: str, now: datetime, silence: Silence | None, others: tuple[Alert, ...] = ()
) -> Incident:
    """An incident opened by `alert` (and the waiting `others` of its group), TRIGGERED, version 0."""
    members = (alert, *others)
    severity = max(member.severity for member in members)
    labels: dict[str, str] = dict(alert.labels)
    for other in others:
        labels = _common_labels(labels, other.labels)
    return Incident(
        incident_id=incident_id,
        title=alert.title,
        description=alert.description,
        state=IncidentState.TRIGGERED,
        severity=severity,
        priority=min(member.priority for member in members),
        group_key=alert.group_key,
        create_time=now,
        update_time=now,
        incident_type=alert.alert_type,
        service=_common([m.service for m in members]),
        model=_common([m.model for m in members]),
        labels=labels,
        alert_count=len(members),
        alert_fingerprints=tuple(m.fingerprint for m in members)[:MAX_FINGERPRINTS],
        suppressed=silence is not None,
        silence_id=silence.silence_id if silence is not None else "",
    )


def attach(incident: Incident, alert: Alert, *, now: datetime) -> Incident:
    """`incident` with `alert` joined: counts, fingerprints, common fields, highest severity."""
    known = alert.fingerprint in incident.alert_fingerprints
    fingerprints = incident.alert_fingerprints
    if not known and len(fingerprints) < MAX_FINGERPRINTS:
        fingerprints = (*fingerprints, alert.fingerprint)
    return replace(
        incident,
        alert_count=incident.alert_count + (0 if known else 1),
        alert_fingerprints=fingerprints,
        # Highest severity and most urgent priority (P0 is the smallest number).
        severity=max(incident.severity, alert.severity),
        priority=min(incident.priority, alert.priority),
        service=incident.service if incident.service == alert.service else "",
        model=incident.model if incident.model == alert.model else "",
        labels=_common_labels(incident.labels, alert.labels),
        update_time=now,
    )


def refire(stored: Alert, candidate: Alert, *, now: datetime) -> Alert:
    """A new firing of a known (resolved or expired) alert: the stored row starts a new episode."""
    return replace(
        stored,
        title=candidate.title,
        description=candidate.description,
        severity=candidate.severity,
        priority=candidate.priority,
        labels=candidate.labels,
        annotations=candidate.annotations,
        status=AlertStatus.FIRING,
        start_time=candidate.start_time,
        end_time=candidate.end_time,
        generator_url=candidate.generator_url or stored.generator_url,
        last_seen_time=now,
        group_key=candidate.group_key,
        incident_id="",
        silenced_by=(),
        anomaly_id=candidate.anomaly_id or stored.anomaly_id,
    )


def repeat(stored: Alert, candidate: Alert, *, now: datetime) -> Alert:
    """A repeat of an active alert folded in: count + 1, last seen now, fresher end time."""
    return replace(
        stored,
        duplicate_count=stored.duplicate_count + 1,
        last_seen_time=now,
        severity=candidate.severity,
        priority=candidate.priority,
        annotations={**stored.annotations, **candidate.annotations},
        end_time=candidate.end_time if candidate.status is AlertStatus.FIRING else stored.end_time,
    )


def resolved(stored: Alert, *, now: datetime, end_time: datetime | None = None) -> Alert:
    """`stored` marked RESOLVED at `end_time` (default now)."""
    return replace(stored, status=AlertStatus.RESOLVED, end_time=end_time or now, last_seen_time=now)


def is_expired(alert: Alert, *, now: datetime, policy: IncidentPolicy) -> bool:
    """A firing alert expires at its end_time, or when not seen again for the alert TTL."""
    if alert.status is not AlertStatus.FIRING:
        return False
    if alert.end_time is not None:
        return alert.end_time <= now
    return now - alert.last_seen_time >= policy.alert_ttl


def is_active(alert: Alert, *, now: datetime, policy: IncidentPolicy) -> bool:
    """Firing and not expired: a report of it is a repeat, not a new firing."""
    return alert.status is AlertStatus.FIRING and not is_expired(alert, now=now, policy=policy)
