"""The incident state machine.

TRIGGERED → ACKNOWLEDGED; TRIGGERED | ACKNOWLEDGED → RESOLVED; RESOLVED → TRIGGERED (reopen);
RESOLVED → CLOSED; CLOSED is final. A request for the state an incident is already in is a no-op
(acknowledge, resolve, close); anything else raises FailedPreconditionError("INVALID_TRANSITION").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sentinel.incident_manager.domain import timeline
from sentinel.incident_manager.domain.model import Incident, IncidentState, TimelineEntry
from sentinel.runtime.errors import FailedPreconditionError

T, A, R, C = (
    IncidentState.TRIGGERED,
    IncidentState.ACKNOWLEDGED,
    IncidentState.RESOLVED,
    IncidentState.CLOSED,
)

#: Every allowed (from, to) pair.
TRANSITIONS: frozenset[tuple[IncidentState, IncidentState]] = frozenset(
    {(T, A), (T, R), (A, R), (R, T), (R, C)}
)

#: Same-state requests that are answered with the incident unchanged.
IDEMPOTENT: frozenset[IncidentState] = frozenset({A, R, C})


@dataclass(frozen=True)
class Change:
    """An incident after a change, and the timeline entries that record it."""

    incident: Incident
    entries: tuple[TimelineEntry, ...]


def check_transition(current: IncidentState, target: IncidentState, *, incident_id: str = "") -> bool:
    """True if `current → target` is a real change, False if it is an idempotent no-op.

    Raises:
        FailedPreconditionError: reason INVALID_TRANSITION, metadata "from" and "to".
    """
    if current is target and target in IDEMPOTENT:
        return False
    if (current, target) in TRANSITIONS:
        return True
    raise FailedPreconditionError(
        f"incident {incident_id} is {current.name} and cannot become {target.name}".replace("  ", " "),
        reason="INVALID_TRANSITION",
        metadata={"from": current.name, "to": target.name, "incident_id": incident_id},
    )


def transition(
    incident: Incident, target: IncidentState, *, now: datetime, actor: str, reason: str = ""
) -> Change | None:
    """Move `incident` to `target`, stamping the time fields and recording the change.

    Returns:
        The change, or None for an idempotent same-state request.

    Raises:
        FailedPreconditionError: the transition is not allowed (reason INVALID_TRANSITION).
    """
    if not check_transition(incident.state, target, incident_id=incident.incident_id):
        return None
    stamps: dict[str, object] = {"state": target, "update_time": now}
    entries = [
        timeline.state_changed(
            incident.incident_id,
            from_state=incident.state,
            to_state=target,
            now=now,
            actor=actor,
            reason=reason,
            version=incident.version,
        )
    ]
    if target is A:
        stamps["acknowledge_time"] = now
    elif target is R:
        stamps["resolve_time"] = now
    elif target is C:
        stamps["close_time"] = now
    elif target is T:  # reopen
        stamps["reopen_count"] = incident.reopen_count + 1
        stamps["acknowledge_time"] = None
        entries.append(
            timeline.reopened(
                incident.incident_id,
                now=now,
                actor=actor,
                reason=reason,
                reopen_count=incident.reopen_count + 1,
            )
        )
    return Change(replace(incident, **stamps), tuple(entries))  # type: ignore[arg-type]


def acknowledge(incident: Incident, *, now: datetime, actor: str, reason: str = "") -> Change | None:
    """TRIGGERED → ACKNOWLEDGED (no-op when ACKNOWLEDGED)."""
    return transition(incident, A, now=now, actor=actor, reason=reason)


def resolve(incident: Incident, *, now: datetime, actor: str, reason: str = "") -> Change | None:
    """TRIGGERED | ACKNOWLEDGED → RESOLVED (no-op when RESOLVED)."""
    return transition(incident, R, now=now, actor=actor, reason=reason)


def reopen(incident: Incident, *, now: datetime, actor: str, reason: str = "") -> Change:
    """RESOLVED → TRIGGERED; anything else is INVALID_TRANSITION (a reopen is never a no-op)."""
    if incident.state is not R:
        raise FailedPreconditionError(
            f"incident {incident.incident_id} is {incident.state.name}; only a RESOLVED incident reopens",
            reason="INVALID_TRANSITION",
            metadata={"from": incident.state.name, "to": T.name, "incident_id": incident.incident_id},
        )
    change = transition(incident, T, now=now, actor=actor, reason=reason)
    assert change is not None
    return change


def close(incident: Incident, *, now: datetime, actor: str, reason: str = "") -> Change | None:
    """RESOLVED → CLOSED (no-op when CLOSED)."""
    return transition(incident, C, now=now, actor=actor, reason=reason)


def within_reopen_window(incident: Incident, *, now: datetime, window_s: float) -> bool:
    """True if a RESOLVED incident resolved less than `window_s` seconds before `now`."""
    if incident.state is not R or incident.resolve_time is None:
        return False
    return (now - incident.resolve_time).total_seconds() < window_s


def ensure_not_closed(incident: Incident) -> None:
    """Edits (assign, severity) are refused on CLOSED incidents (reason INCIDENT_CLOSED)."""
    if incident.state is C:
        raise FailedPreconditionError(
            f"incident {incident.incident_id} is CLOSED",
            reason="INCIDENT_CLOSED",
            metadata={"incident_id": incident.incident_id},
        )
