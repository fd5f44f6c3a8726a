"""Severity → priority (critical→P0 … info→P4)."""

from __future__ import annotations

from sentinel.incident_manager.domain.model import Priority, Severity

PRIORITY_BY_SEVERITY: dict[Severity, Priority] = {
    Severity.CRITICAL: Priority.P0,
    Severity.HIGH: Priority.P1,
    Severity.MEDIUM: Priority.P2,
    Severity.LOW: Priority.P3,
    Severity.INFO: Priority.P4,
}

DEFAULT_SEVERITY = Severity.MEDIUM


def priority_for(severity: Severity, explicit: Priority | None = None) -> Priority:
    """The explicit priority if given, else the one derived from `severity`."""
    return explicit if explicit is not None else PRIORITY_BY_SEVERITY[severity]
