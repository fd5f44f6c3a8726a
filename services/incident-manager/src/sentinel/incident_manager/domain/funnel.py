"""The noise funnel: received → deduplicated → grouped → suppressed → incidents."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.incident_manager.domain.model import Outcome


@dataclass
class NoiseFunnel:
    """Counters of what reporting alerts did (in-process; storage's stats are the durable view)."""

    received: int = 0
    deduplicated: int = 0
    grouped: int = 0
    suppressed: int = 0
    incidents: int = 0
    reopened: int = 0
    resolved: int = 0
    pending: int = 0

    def record(self, outcome: Outcome, *, silenced: bool = False) -> None:
        """Count one report and its outcome (a silenced alert also counts where it went)."""
        self.received += 1
        if outcome is Outcome.DEDUPLICATED:
            self.deduplicated += 1
        elif outcome is Outcome.ATTACHED:
            self.grouped += 1
        elif outcome is Outcome.NEW_INCIDENT:
            self.incidents += 1
        elif outcome is Outcome.REOPENED:
            self.reopened += 1
        elif outcome is Outcome.RESOLVED:
            self.resolved += 1
        elif outcome is Outcome.PENDING:
            self.pending += 1
        if silenced or outcome is Outcome.SUPPRESSED:
            self.suppressed += 1

    @property
    def noise_reduction(self) -> float:
        """Share of reports that did not become a new incident (0 when nothing was received)."""
        return 0.0 if self.received == 0 else 1.0 - self.incidents / self.received
