"""Filters of the incident watch stream."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.incident_manager.domain.model import Incident, IncidentState, LabelMatcher, Severity
from sentinel.incident_manager.domain.silences import matches_all


@dataclass(frozen=True)
class WatchFilter:
    """Every set filter must match the incident after the change (empty = any)."""

    incident_ids: frozenset[str] = frozenset()
    states: frozenset[IncidentState] = frozenset()
    severities: frozenset[Severity] = frozenset()
    service: str = ""
    model: str = ""
    matchers: tuple[LabelMatcher, ...] = ()

    def matches(self, incident: Incident) -> bool:
        """Whether a change of `incident` goes to this watcher."""
        return (
            (not self.incident_ids or incident.incident_id in self.incident_ids)
            and (not self.states or incident.state in self.states)
            and (not self.severities or incident.severity in self.severities)
            and (not self.service or incident.service == self.service)
            and (not self.model or incident.model == self.model)
            and matches_all(self.matchers, incident.matcher_labels())
        )
