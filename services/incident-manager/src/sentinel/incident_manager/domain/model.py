"""Canonical types of the incident domain.

The enum values are the wire numbers of the `sentinel.api.*.v1` enums, so `grpc/convert.py` turns
one into the other with a plain cast; the domain itself never sees protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, IntEnum

Labels = Mapping[str, str]


class Severity(IntEnum):
    """How bad an alert or incident is (common.v1.Severity)."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        """Lower-case name, as matchers and timelines see it, e.g. "critical"."""
        return self.name.lower()


class Priority(IntEnum):
    """Urgency (incident.v1.Priority); P0 is the most urgent."""

    P0 = 1
    P1 = 2
    P2 = 3
    P3 = 4
    P4 = 5


class IncidentState(IntEnum):
    """Lifecycle state of an incident (incident.v1.IncidentState)."""

    TRIGGERED = 1
    ACKNOWLEDGED = 2
    RESOLVED = 3
    CLOSED = 4

    @property
    def is_open(self) -> bool:
        """TRIGGERED or ACKNOWLEDGED: at most one such incident per group key."""
        return self in (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED)


OPEN_STATES = (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED)


class AlertSource(IntEnum):
    """Where an alert came from (incident.v1.AlertSource)."""

    SENTINEL_DETECTION = 1
    ALERTMANAGER = 2
    PAGERDUTY = 3
    API = 4

    @property
    def fingerprint_name(self) -> str:
        """The name that enters the fingerprint, e.g. "sentinel-detection"."""
        return _SOURCE_NAMES[self]


_SOURCE_NAMES = {
    AlertSource.SENTINEL_DETECTION: "sentinel-detection",
    AlertSource.ALERTMANAGER: "alertmanager",
    AlertSource.PAGERDUTY: "pagerduty",
    AlertSource.API: "api",
}


class AlertStatus(IntEnum):
    """Whether the condition behind an alert still holds (incident.v1.AlertStatus)."""

    FIRING = 1
    RESOLVED = 2


class TimelineKind(IntEnum):
    """What a timeline entry records (incident.v1.TimelineEntryKind)."""

    ALERT_RECEIVED = 1
    ALERT_DEDUPLICATED = 2
    ALERT_RESOLVED = 3
    STATE_CHANGED = 4
    REOPENED = 5
    ASSIGNED = 6
    NOTE_ADDED = 7
    SEVERITY_CHANGED = 8
    SUPPRESSED = 9
    NOTIFIED = 10
    ESCALATED = 11
    FLAPPING = 12
    PLAYBOOK_RUN = 13


class MatchOperator(IntEnum):
    """How a label matcher compares (common.v1.MatchOperator)."""

    EQUAL = 1
    NOT_EQUAL = 2
    REGEX = 3
    NOT_REGEX = 4


class SilenceState(IntEnum):
    """Derived from a silence's times and now (incident.v1.SilenceState)."""

    PENDING = 1
    ACTIVE = 2
    EXPIRED = 3


class Outcome(IntEnum):
    """What reporting an alert did (incident.v1.AlertOutcome; PENDING has no wire value)."""

    NEW_INCIDENT = 1
    ATTACHED = 2
    DEDUPLICATED = 3
    SUPPRESSED = 4
    RESOLVED = 5
    REOPENED = 6
    #: Recorded, but its group has fewer alerts than the minimum that opens an incident.
    PENDING = 100


class AnomalyType(IntEnum):
    """Kinds of anomaly detection reports (common.v1.AnomalyType)."""

    LATENCY_SPIKE = 1
    LEVEL_SHIFT = 2
    THROUGHPUT_DROP = 3
    ERROR_RATE_INCREASE = 4
    TOKEN_USAGE_SPIKE = 5
    COST_ANOMALY = 6
    DRIFT = 7
    VARIANCE_CHANGE = 8
    SEASONAL_DEVIATION = 9
    MULTIVARIATE_OUTLIER = 10
    SPIKE = 11
    DIP = 12


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One Prometheus-style label matcher; regexes must match the whole value."""

    name: str
    operator: MatchOperator
    value: str


@dataclass(frozen=True, slots=True)
class AlertInput:
    """An alert as received, before validation. Enum fields hold raw wire numbers (0 = unset)."""

    source: int = 0
    dedup_key: str = ""
    title: str = ""
    description: str = ""
    severity: int = 0
    priority: int = 0
    alert_type: str = ""
    service: str = ""
    model: str = ""
    labels: Labels = field(default_factory=dict)
    annotations: Labels = field(default_factory=dict)
    status: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    generator_url: str = ""
    anomaly_id: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """A stored alert: one per fingerprint; repeats fold into it."""

    alert_id: str
    fingerprint: str
    source: AlertSource
    title: str
    severity: Severity
    priority: Priority
    status: AlertStatus
    start_time: datetime
    first_seen_time: datetime
    last_seen_time: datetime
    group_key: str
    dedup_key: str = ""
    description: str = ""
    alert_type: str = ""
    service: str = ""
    model: str = ""
    labels: Labels = field(default_factory=dict)
    annotations: Labels = field(default_factory=dict)
    end_time: datetime | None = None
    generator_url: str = ""
    duplicate_count: int = 0
    incident_id: str = ""
    silenced_by: tuple[str, ...] = ()
    anomaly_id: str = ""
    version: int = 0

    def matcher_labels(self) -> dict[str, str]:
        """What silences and routing see: the labels plus service, model, alert_type, severity, source."""
        return alert_matcher_labels(
            labels=self.labels,
            service=self.service,
            model=self.model,
            alert_type=self.alert_type,
            severity=self.severity,
            source=self.source,
        )


def alert_matcher_labels(
    *, labels: Labels, service: str, model: str, alert_type: str, severity: Severity, source: AlertSource
) -> dict[str, str]:
    """Labels as matchers see them; the derived names win over same-named labels only when set."""
    seen = dict(labels)
    for name, value in (
        ("service", service),
        ("model", model),
        ("alert_type", alert_type),
        ("severity", severity.label),
        ("source", source.fingerprint_name),
    ):
        if value:
            seen[name] = value
    return seen


@dataclass(frozen=True, slots=True)
class Incident:
    """A group of related alerts with a lifecycle."""

    incident_id: str
    title: str
    state: IncidentState
    severity: Severity
    priority: Priority
    group_key: str
    create_time: datetime
    update_time: datetime
    description: str = ""
    incident_type: str = ""
    service: str = ""
    model: str = ""
    labels: Labels = field(default_factory=dict)
    alert_count: int = 0
    alert_fingerprints: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    flapping: bool = False
    acknowledge_time: datetime | None = None
    resolve_time: datetime | None = None
    close_time: datetime | None = None
    reopen_count: int = 0
    suppressed: bool = False
    silence_id: str = ""
    version: int = 0
    escalation_policy_id: str = ""
    escalation_level: int = 0
    next_escalation_time: datetime | None = None

    def matcher_labels(self) -> dict[str, str]:
        """What watch filters and playbooks see: labels plus service, model, incident_type, severity."""
        seen = dict(self.labels)
        for name, value in (
            ("service", self.service),
            ("model", self.model),
            ("incident_type", self.incident_type),
            ("severity", self.severity.label),
        ):
            if value:
                seen[name] = value
        return seen


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One append-only record of what happened to an incident, with who and why."""

    entry_id: str
    incident_id: str
    event_time: datetime
    kind: TimelineKind
    actor: str
    reason: str = ""
    from_value: str = ""
    to_value: str = ""
    message: str = ""
    attributes: Labels = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes matching alerts over [start_time, end_time); a maintenance window is a silence too."""

    silence_id: str
    matchers: tuple[LabelMatcher, ...]
    start_time: datetime
    end_time: datetime
    created_by: str
    comment: str
    maintenance: bool = False
    create_time: datetime | None = None
    update_time: datetime | None = None

    def state(self, now: datetime) -> SilenceState:
        """PENDING before start, ACTIVE within [start, end), EXPIRED from end on."""
        if now < self.start_time:
            return SilenceState.PENDING
        if now < self.end_time:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED


@dataclass(frozen=True, slots=True)
class AnomalyInput:
    """A detected anomaly as received from detection. Enum fields hold raw wire numbers."""

    anomaly_id: str = ""
    series_name: str = ""
    series_labels: Labels = field(default_factory=dict)
    has_series: bool = False
    start_time: datetime | None = None
    peak_time: datetime | None = None
    end_time: datetime | None = None
    value: float = 0.0
    baseline: float = 0.0
    score: float = 0.0
    severity: int = 0
    anomaly_type: int = 0
    detectors: tuple[str, ...] = ()
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class IncidentStats:
    """Noise funnel and response times over a range (incident.v1.IncidentStats)."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    alerts_received: int = 0
    alerts_deduplicated: int = 0
    alerts_grouped: int = 0
    alerts_suppressed: int = 0
    incidents_created: int = 0
    notifications_sent: int = 0
    notifications_failed: int = 0
    incidents_acknowledged: int = 0
    incidents_resolved: int = 0
    incidents_reopened: int = 0
    mean_time_to_acknowledge: timedelta = timedelta(0)
    p50_time_to_acknowledge: timedelta = timedelta(0)
    p90_time_to_acknowledge: timedelta = timedelta(0)
    mean_time_to_resolve: timedelta = timedelta(0)
    p50_time_to_resolve: timedelta = timedelta(0)
    p90_time_to_resolve: timedelta = timedelta(0)


class ChangeType(Enum):
    """What an incident change reports on the watch feed."""

    CREATED = 1
    UPDATED = 2
    HEARTBEAT = 3


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One change of an incident as the watch feed carries it; `cursor` is set by the feed."""

    tenant: str
    type: ChangeType
    event_time: datetime
    incident: Incident | None
    entries: tuple[TimelineEntry, ...] = ()
    cursor: str = ""
