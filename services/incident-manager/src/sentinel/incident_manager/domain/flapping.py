"""Flapping: an incident that changes state too often within a window is marked flapping, and its
re-notifications are suppressed until it calms down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sentinel.incident_manager.domain import timeline
from sentinel.incident_manager.domain.model import Incident, TimelineEntry


def changes_in_window(change_times: Sequence[datetime], *, now: datetime, window: timedelta) -> int:
    """How many of `change_times` fall in (now - window, now]."""
    start = now - window
    return sum(1 for at in change_times if start < at <= now)


def is_flapping(
    change_times: Sequence[datetime], *, now: datetime, window: timedelta, threshold: int
) -> bool:
    """True when at least `threshold` state changes happened within `window` before `now`."""
    return changes_in_window(change_times, now=now, window=window) >= threshold


def update_flapping(
    incident: Incident,
    change_times: Sequence[datetime],
    *,
    now: datetime,
    window: timedelta,
    threshold: int,
) -> tuple[Incident, tuple[TimelineEntry, ...]]:
    """Set `incident.flapping` from its recent state changes; an entry records a toggle.

    Args:
        incident: The incident after its latest change.
        change_times: Times of its state changes (including the latest).
        now: Current time.
        window: How far back changes count.
        threshold: Changes within the window that make it flapping.
    """
    changes = changes_in_window(change_times, now=now, window=window)
    flapping = changes >= threshold
    if flapping == incident.flapping:
        return incident, ()
    entry = timeline.flapping(
        incident.incident_id, started=flapping, now=now, changes=changes, version=incident.version
    )
    return replace(incident, flapping=flapping, update_time=now), (entry,)


def should_notify(incident: Incident) -> bool:
    """Whether a change of `incident` may notify anyone: not when suppressed or flapping."""
    return not incident.suppressed and not incident.flapping
