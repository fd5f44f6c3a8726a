"""Incident-manager records as storage keeps them: alerts, incidents, timeline entries, silences,
policies; their validation, filters, keyset page tokens and the figures of the stats.

Each record carries the fields storage filters, orders or enforces rules on (as plain values) and
`body`, the caller's serialized message, stored and returned as is. Times are microseconds since
the Unix epoch (PostgreSQL's precision), None when unset. Enum fields are the contract's numbers;
the ones storage reasons about are mirrored below (a unit test checks them against the contract).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.query import LabelMatcher, validate_matchers

MAX_ID = 255
MAX_KEY = 1_000  # fingerprints, group keys
MAX_TEXT = 300  # titles, names, services, models, actors
MAX_DESCRIPTION = 10_000
MAX_LABELS = 64
MAX_LABEL_KEY = 100
MAX_LABEL_VALUE = 500
MAX_ASSIGNEES = 100
MAX_BODY = 1 << 20  # serialized message
MAX_BATCH = 1_000  # timeline entries per call
MAX_CHANGES = 1_000  # alert changes per ApplyAlertChanges
MAX_QUERY = 1_000  # text search
MAX_STATS_RANGE_US = 90 * 86_400 * 1_000_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
_TOKEN_VERSION = 1


class IncidentState(enum.IntEnum):
    """incident.v1.IncidentState."""

    UNSPECIFIED = 0
    TRIGGERED = 1
    ACKNOWLEDGED = 2
    RESOLVED = 3
    CLOSED = 4


# At most one incident per group key may be in these states (a partial unique index holds it).
OPEN_STATES = (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED)


class TimelineKind(enum.IntEnum):
    """The incident.v1.TimelineEntryKind values the stats read."""

    STATE_CHANGED = 4
    REOPENED = 5
    NOTIFIED = 10


class SilenceState(enum.IntEnum):
    """incident.v1.SilenceState: derived from the times and the current time."""

    PENDING = 1
    ACTIVE = 2
    EXPIRED = 3


def silence_state(*, start_us: int, end_us: int, now_us: int) -> SilenceState:
    """PENDING before start, ACTIVE within [start, end), EXPIRED from end on."""
    if now_us < start_us:
        return SilenceState.PENDING
    return SilenceState.ACTIVE if now_us < end_us else SilenceState.EXPIRED


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRecord:
    """An alert: key alert_id; the columns of ListAlerts and the stats; body the full message."""

    alert_id: str
    fingerprint: str
    body: bytes
    group_key: str = ""
    incident_id: str = ""
    status: int = 0
    service: str = ""
    model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    first_seen_us: int | None = None
    last_seen_us: int | None = None
    duplicate_count: int = 0
    silenced: bool = False


@dataclass(frozen=True)
class AlertChange:
    """One alert write of a group commit: the alert (conditionally) and its timeline entries."""

    alert: AlertRecord
    expected_version: int
    timeline: tuple[TimelineRecord, ...] = ()
    new_incident: IncidentRecord | None = None


class AlertChangeStatus(enum.IntEnum):
    """storage.v1.AlertChangeStatus."""

    APPLIED = 1
    VERSION_MISMATCH = 2
    ALERT_NOT_FOUND = 3
    OPEN_INCIDENT_EXISTS = 4


@dataclass(frozen=True)
class AlertChangeResult:
    """What one change did: APPLIED at `version`, or nothing (the stored version, 0 if none)."""

    status: AlertChangeStatus
    version: int = 0
    created: bool = False
    timeline_appended: int = 0
    incident_id: str = ""


@dataclass(frozen=True)
class IncidentRecord:
    """An incident: key incident_id; group_key unique among open incidents."""

    incident_id: str
    group_key: str
    state: int
    body: bytes
    severity: int = 0
    priority: int = 0
    service: str = ""
    model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    assignees: tuple[str, ...] = ()
    first_fingerprint: str = ""
    create_us: int | None = None
    update_us: int | None = None
    acknowledge_us: int | None = None
    resolve_us: int | None = None
    next_escalation_us: int | None = None


@dataclass(frozen=True)
class TimelineRecord:
    """A timeline entry: key entry_id (the idempotency key), of one incident."""

    entry_id: str
    incident_id: str
    event_us: int | None
    kind: int
    body: bytes
    to_value: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SilenceRecord:
    """A silence or maintenance window: key silence_id."""

    silence_id: str
    matcher_count: int
    start_us: int | None
    end_us: int | None
    body: bytes
    create_us: int | None = None
    update_us: int | None = None


class PolicyKind(enum.IntEnum):
    """storage.v1.PolicyKind."""

    ESCALATION_POLICY = 1
    ROUTING_RULE = 2
    SCHEDULE = 3
    NOTIFICATION_CHANNEL = 4
    PLAYBOOK = 5


@dataclass(frozen=True)
class PolicyRecord:
    """A policy: key (kind, policy_id); name unique per kind; `order` sorts routing rules."""

    kind: PolicyKind
    policy_id: str
    name: str
    body: bytes
    order: int = 0
    id_field: str = "policy_id"  # field path of the id, for errors


@dataclass(frozen=True)
class Stored:
    """A record as stored: its body and the values storage owns or fills in.

    Attributes:
        version: optimistic-concurrency version (alerts, incidents, policies).
        create_us, update_us: stored times (filled in where the body has none).
        start_us, end_us: a silence's interval.
        silence_state: a silence's state at the time of the call.
    """

    body: bytes
    version: int = 0
    create_us: int | None = None
    update_us: int | None = None
    start_us: int | None = None
    end_us: int | None = None
    silence_state: SilenceState | None = None


@dataclass(frozen=True)
class StoredPage:
    """One page of stored records and the token of the next one ("" on the last page)."""

    items: tuple[Stored, ...]
    next_page_token: str = ""


# -- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """ListAlerts: every set filter must match; time range on last_seen."""

    incident_id: str = ""
    fingerprint: str = ""
    group_key: str = ""
    statuses: tuple[int, ...] = ()
    matchers: tuple[LabelMatcher, ...] = ()
    start_us: int | None = None
    end_us: int | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class IncidentFilter:
    """ListIncidents: every set filter must match; time range on create_time."""

    states: tuple[int, ...] = ()
    severities: tuple[int, ...] = ()
    priorities: tuple[int, ...] = ()
    service: str = ""
    model: str = ""
    group_key: str = ""
    matchers: tuple[LabelMatcher, ...] = ()
    start_us: int | None = None
    end_us: int | None = None
    query: str = ""
    assignee: str = ""
    escalation_due_before_us: int | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class TimelineFilter:
    """ListTimelineEntries of one incident."""

    incident_id: str
    kinds: tuple[int, ...] = ()
    start_us: int | None = None
    end_us: int | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class SilenceFilter:
    """ListSilences: states evaluated at the time of the call."""

    states: tuple[SilenceState, ...] = ()
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class PolicyFilter:
    """ListPolicies of one kind."""

    kind: PolicyKind | None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class PagePlan:
    """A validated page request: its size, where it resumes (keyset values) and its fingerprint."""

    size: int
    after: tuple[Any, ...] | None
    fingerprint: str

    def token(self, values: Sequence[Any]) -> str:
        """Token of the page that resumes after the row with these keyset values."""
        raw = json.dumps([_TOKEN_VERSION, self.fingerprint, list(values)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def plan_page(page_size: int, page_token: str, *, query: Sequence[Any], shape: tuple[type, ...]) -> PagePlan:
    """Validate page_size/page_token; a token is only valid for the same query and keyset shape.

    Raises:
        InvalidArgumentError: page_size negative, or a token this query did not issue.
    """
    if page_size < 0:
        raise InvalidArgumentError("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    fingerprint = hashlib.sha256(json.dumps(list(query), default=repr).encode()).hexdigest()[:16]
    if not page_token:
        return PagePlan(size, None, fingerprint)
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
        version, token_query, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgumentError("page_token", "is not a token this service issued") from None
    if (
        version != _TOKEN_VERSION
        or not isinstance(values, list)
        or len(values) != len(shape)
        or not all(type(v) is t for v, t in zip(values, shape, strict=True))
    ):
        raise InvalidArgumentError("page_token", "is not a token this service issued")
    if token_query != fingerprint:
        raise InvalidArgumentError("page_token", "belongs to a different query; send the same parameters")
    return PagePlan(size, tuple(values), fingerprint)


# -- validation ---------------------------------------------------------------------------------


def _text(value: str, path: str, *, limit: int, required: bool = False) -> None:
    if required and not value:
        raise InvalidArgumentError(path, "is required")
    if len(value) > limit:
        raise InvalidArgumentError(path, f"is {len(value)} characters; at most {limit}")


def _labels(labels: Mapping[str, str], path: str) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgumentError(path, f"has {len(labels)} labels; at most {MAX_LABELS}")
    for key, value in labels.items():
        if not 0 < len(key) <= MAX_LABEL_KEY:
            raise InvalidArgumentError(f"{path}[{key[:40]!r}]", f"key must be 1..{MAX_LABEL_KEY} characters")
        _text(value, f"{path}[{key!r}]", limit=MAX_LABEL_VALUE)


def _body(body: bytes, path: str) -> None:
    if len(body) > MAX_BODY:
        raise InvalidArgumentError(path, f"is {len(body)} bytes serialized; at most {MAX_BODY}")


def _range(start_us: int | None, end_us: int | None, path: str) -> None:
    if start_us is not None and end_us is not None and end_us <= start_us:
        raise InvalidArgumentError(path, "end_time must be after start_time")


def validate_alert(alert: AlertRecord, expected_version: int) -> None:
    """Raises InvalidArgumentError naming the field ("alert.<field>")."""
    _text(alert.alert_id, "alert.alert_id", limit=MAX_ID, required=True)
    _text(alert.fingerprint, "alert.fingerprint", limit=MAX_KEY, required=True)
    _text(alert.group_key, "alert.group_key", limit=MAX_KEY)
    _text(alert.incident_id, "alert.incident_id", limit=MAX_ID)
    _text(alert.service, "alert.service", limit=MAX_TEXT)
    _text(alert.model, "alert.model", limit=MAX_TEXT)
    _labels(alert.labels, "alert.labels")
    _body(alert.body, "alert")
    if expected_version < 0:
        raise InvalidArgumentError("expected_version", "must not be negative")


def validate_alert_changes(changes: Sequence[AlertChange]) -> None:
    """1..MAX_CHANGES changes of distinct alerts, at most MAX_BATCH entries in all, each valid.

    Raises:
        InvalidArgumentError: naming the field ("changes[i].alert.<field>", ...).
    """
    if not changes:
        raise InvalidArgumentError("changes", "at least one change is required")
    if len(changes) > MAX_CHANGES:
        raise InvalidArgumentError("changes", f"has {len(changes)} changes; at most {MAX_CHANGES}")
    entries = sum(len(change.timeline) for change in changes)
    if entries > MAX_BATCH:
        raise InvalidArgumentError("changes", f"carry {entries} timeline entries; at most {MAX_BATCH}")
    seen: set[str] = set()
    incidents: set[str] = set()
    for i, change in enumerate(changes):
        try:
            validate_alert(change.alert, change.expected_version)
        except InvalidArgumentError as bad:
            raise InvalidArgumentError(f"changes[{i}].{bad.field}", bad.problem) from None
        if change.alert.alert_id in seen:
            raise InvalidArgumentError(f"changes[{i}].alert.alert_id", "appears in another change")
        seen.add(change.alert.alert_id)
        if change.new_incident is not None:
            try:
                validate_incident(change.new_incident)
            except InvalidArgumentError as bad:
                raise InvalidArgumentError(f"changes[{i}].new_{bad.field}", bad.problem) from None
            if change.new_incident.incident_id in incidents:
                raise InvalidArgumentError(
                    f"changes[{i}].new_incident.incident_id", "appears in another change"
                )
            incidents.add(change.new_incident.incident_id)
        validate_timeline(change.timeline, f"changes[{i}].timeline_entries", incident_id=None)


def validate_incident(incident: IncidentRecord) -> None:
    """Raises InvalidArgumentError naming the field ("incident.<field>")."""
    _text(incident.incident_id, "incident.incident_id", limit=MAX_ID, required=True)
    _text(incident.group_key, "incident.group_key", limit=MAX_KEY, required=True)
    if incident.state == IncidentState.UNSPECIFIED:
        raise InvalidArgumentError("incident.state", "is required")
    _text(incident.title, "incident.title", limit=MAX_TEXT)
    _text(incident.description, "incident.description", limit=MAX_DESCRIPTION)
    _text(incident.service, "incident.service", limit=MAX_TEXT)
    _text(incident.model, "incident.model", limit=MAX_TEXT)
    _labels(incident.labels, "incident.labels")
    if len(incident.assignees) > MAX_ASSIGNEES:
        raise InvalidArgumentError("incident.assignees", f"at most {MAX_ASSIGNEES}")
    for i, assignee in enumerate(incident.assignees):
        _text(assignee, f"incident.assignees[{i}]", limit=MAX_TEXT, required=True)
    _body(incident.body, "incident")


def validate_timeline(entries: Sequence[TimelineRecord], path: str, *, incident_id: str | None) -> None:
    """Check entries; with `incident_id`, each must belong to it (or name no incident).

    Raises:
        InvalidArgumentError: naming `path[i].<field>`.
    """
    if len(entries) > MAX_BATCH:
        raise InvalidArgumentError(path, f"has {len(entries)} entries; at most {MAX_BATCH}")
    for i, entry in enumerate(entries):
        _text(entry.entry_id, f"{path}[{i}].entry_id", limit=MAX_ID, required=True)
        if incident_id is None:
            _text(entry.incident_id, f"{path}[{i}].incident_id", limit=MAX_ID, required=True)
        elif entry.incident_id not in ("", incident_id):
            raise InvalidArgumentError(f"{path}[{i}].incident_id", "must be empty or the incident's id")
        if entry.event_us is None:
            raise InvalidArgumentError(f"{path}[{i}].event_time", "is required")
        if entry.kind == 0:
            raise InvalidArgumentError(f"{path}[{i}].kind", "is required")
        _labels(entry.attributes, f"{path}[{i}].attributes")
        _body(entry.body, f"{path}[{i}]")


def validate_silence(silence: SilenceRecord) -> None:
    """Raises InvalidArgumentError naming the field ("silence.<field>")."""
    _text(silence.silence_id, "silence.silence_id", limit=MAX_ID, required=True)
    if silence.matcher_count == 0:
        raise InvalidArgumentError("silence.matchers", "at least one matcher is required")
    if silence.end_us is None:
        raise InvalidArgumentError("silence.end_time", "is required")
    if silence.start_us is not None and silence.end_us <= silence.start_us:
        raise InvalidArgumentError("silence.end_time", "must be after start_time")
    _body(silence.body, "silence")


def validate_policy(policy: PolicyRecord, expected_version: int) -> None:
    """Raises InvalidArgumentError naming the field ("policy.<kind>.<field>")."""
    prefix = f"policy.{policy.kind.name.lower()}"
    _text(policy.policy_id, f"{prefix}.{policy.id_field}", limit=MAX_ID, required=True)
    _text(policy.name, f"{prefix}.name", limit=MAX_TEXT, required=True)
    _body(policy.body, "policy")
    if expected_version < 0:
        raise InvalidArgumentError("expected_version", "must not be negative")


def validate_key(value: str, path: str) -> None:
    """A required id of a lookup."""
    _text(value, path, limit=MAX_ID, required=True)


def validate_alert_filter(f: AlertFilter) -> None:
    _text(f.incident_id, "incident_id", limit=MAX_ID)
    _text(f.fingerprint, "fingerprint", limit=MAX_KEY)
    _text(f.group_key, "group_key", limit=MAX_KEY)
    validate_matchers(f.matchers, "matchers", selective=False)
    _range(f.start_us, f.end_us, "time_range")


def validate_incident_filter(f: IncidentFilter) -> None:
    for value, path, limit in (
        (f.service, "service", MAX_TEXT),
        (f.model, "model", MAX_TEXT),
        (f.group_key, "group_key", MAX_KEY),
        (f.query, "query", MAX_QUERY),
        (f.assignee, "assignee", MAX_TEXT),
    ):
        _text(value, path, limit=limit)
    validate_matchers(f.matchers, "matchers", selective=False)
    _range(f.start_us, f.end_us, "time_range")


def validate_timeline_filter(f: TimelineFilter) -> None:
    validate_key(f.incident_id, "incident_id")
    _range(f.start_us, f.end_us, "time_range")


# -- stats --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsRequest:
    """GetIncidentStats: start required; end unset means now; at most 90 days."""

    start_us: int | None
    end_us: int | None
    service: str = ""
    model: str = ""


def plan_stats(request: StatsRequest, *, now_us: int) -> tuple[int, int]:
    """The [start, end) range of the figures.

    Raises:
        InvalidArgumentError: start unset, end not after start, or a range over 90 days.
    """
    if request.start_us is None:
        raise InvalidArgumentError("time_range.start_time", "is required")
    end = now_us if request.end_us is None else request.end_us
    if end <= request.start_us:
        raise InvalidArgumentError("time_range", "end_time must be after start_time")
    if end - request.start_us > MAX_STATS_RANGE_US:
        raise InvalidArgumentError("time_range", "must span at most 90 days")
    _text(request.service, "service", limit=MAX_TEXT)
    _text(request.model, "model", limit=MAX_TEXT)
    return request.start_us, end


@dataclass(frozen=True)
class Durations:
    """Mean, median and 90th percentile of a sample of durations (µs); None for an empty sample."""

    mean_us: int | None = None
    p50_us: int | None = None
    p90_us: int | None = None


@dataclass(frozen=True)
class IncidentStats:
    """The noise funnel and response times over [start_us, end_us).

    Alert figures count the alerts first seen in the range, with all their repeats; incident
    figures count incidents created, first acknowledged, first resolved or reopened in the range.
    """

    start_us: int
    end_us: int
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
    time_to_acknowledge: Durations = Durations()
    time_to_resolve: Durations = Durations()
