"""Protobuf ↔ domain. Protobuf types stop here (used by the servicer and the storage adapter)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.incident_manager.domain.model import (
    Alert,
    AlertInput,
    AlertSource,
    AlertStatus,
    AnomalyInput,
    ChangeType,
    Incident,
    IncidentChange,
    IncidentState,
    IncidentStats,
    LabelMatcher,
    MatchOperator,
    Outcome,
    Priority,
    Severity,
    Silence,
    SilenceState,
    TimelineEntry,
    TimelineKind,
)
from sentinel.incident_manager.domain.watch import WatchFilter
from sentinel.incident_manager.ports import AlertQuery, IncidentQuery, TimelineQuery
from sentinel.incident_manager.service import AlertResult, ReportOutcome
from sentinel.runtime.errors import InvalidArgumentError

# ---------------------------------------------------------------------------- time


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp, or None for an unset time."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_ts(message: Any, name: str, *, field: str | None = None) -> datetime | None:
    """`message.<name>` as an aware UTC datetime, None when unset.

    Raises:
        InvalidArgumentError: the timestamp is out of range (field `field` or `name`).
    """
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    if not (-62135596800 <= stamp.seconds <= 253402300799) or not (0 <= stamp.nanos < 1_000_000_000):
        raise InvalidArgumentError(field or name, "timestamp out of range")
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def to_duration(value: timedelta) -> duration_pb2.Duration:
    """A Duration."""
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


def _set_ts(message: Any, name: str, value: datetime | None) -> None:
    if value is None:
        return
    # As Timestamp.FromDatetime (a naive time counts as UTC), without its calendar round trip
    # and the copy of a temporary message: several times per alert on the hot path.
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    stamp = getattr(message, name)
    stamp.seconds = since.days * 86_400 + since.seconds
    stamp.nanos = since.microseconds * 1000


# ---------------------------------------------------------------------------- enums


def _known(kind: Any, raw: int, field: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise InvalidArgumentError(field, f"unknown value {raw}") from None


def _known_list(kind: Any, raws: Iterable[int], field: str) -> tuple[Any, ...]:
    return tuple(_known(kind, raw, f"{field}[{i}]") for i, raw in enumerate(raws) if raw != 0)


# ---------------------------------------------------------------------------- matchers


def matchers_from_proto(matchers: Iterable[common_pb2.LabelMatcher], field: str) -> tuple[LabelMatcher, ...]:
    """Domain matchers; the operator must be set and known."""
    out = []
    for index, matcher in enumerate(matchers):
        if matcher.operator == 0:
            raise InvalidArgumentError(f"{field}[{index}].operator", "must be set")
        operator = _known(MatchOperator, matcher.operator, f"{field}[{index}].operator")
        out.append(LabelMatcher(matcher.name, operator, matcher.value))
    return tuple(out)


def matchers_to_proto(matchers: Iterable[LabelMatcher]) -> list[common_pb2.LabelMatcher]:
    """Protobuf matchers."""
    return [
        common_pb2.LabelMatcher(name=m.name, operator=int(m.operator), value=m.value)  # type: ignore[arg-type]
        for m in matchers
    ]


# ---------------------------------------------------------------------------- alerts


def alert_input_from_proto(alert: res.Alert) -> AlertInput:
    """A reported alert as received (output-only fields ignored)."""
    return AlertInput(
        source=alert.source,
        dedup_key=alert.dedup_key,
        title=alert.title,
        description=alert.description,
        severity=alert.severity,
        priority=alert.priority,
        alert_type=alert.alert_type,
        service=alert.service,
        model=alert.model,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        status=alert.status,
        start_time=from_ts(alert, "start_time"),
        end_time=from_ts(alert, "end_time"),
        generator_url=alert.generator_url,
    )


def alert_inputs_from_request(request: api.ReportAlertsRequest) -> list[AlertInput | InvalidArgumentError]:
    """The alerts of a report; an undecodable one becomes its error (reported per index)."""
    out: list[AlertInput | InvalidArgumentError] = []
    for alert in request.alerts:
        try:
            out.append(alert_input_from_proto(alert))
        except InvalidArgumentError as bad:
            out.append(bad)
    return out


def alert_to_proto(alert: Alert) -> res.Alert:
    """The stored alert as the API (and storage) shows it."""
    message = res.Alert(
        alert_id=alert.alert_id,
        fingerprint=alert.fingerprint,
        source=int(alert.source),  # type: ignore[arg-type]
        dedup_key=alert.dedup_key,
        title=alert.title,
        description=alert.description,
        severity=int(alert.severity),  # type: ignore[arg-type]
        priority=int(alert.priority),  # type: ignore[arg-type]
        alert_type=alert.alert_type,
        service=alert.service,
        model=alert.model,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        status=int(alert.status),  # type: ignore[arg-type]
        generator_url=alert.generator_url,
        duplicate_count=alert.duplicate_count,
        incident_id=alert.incident_id,
        group_key=alert.group_key,
        silenced_by=list(alert.silenced_by),
        anomaly_id=alert.anomaly_id,
        version=alert.version,
    )
    _set_ts(message, "start_time", alert.start_time)
    _set_ts(message, "end_time", alert.end_time)
    _set_ts(message, "first_seen_time", alert.first_seen_time)
    _set_ts(message, "last_seen_time", alert.last_seen_time)
    return message


def alert_from_proto(message: res.Alert) -> Alert:
    """A stored alert (from storage)."""
    first_seen = from_ts(message, "first_seen_time") or _EPOCH
    return Alert(
        alert_id=message.alert_id,
        fingerprint=message.fingerprint,
        source=AlertSource(message.source or AlertSource.API),
        title=message.title,
        severity=Severity(message.severity or Severity.MEDIUM),
        priority=Priority(message.priority or Priority.P2),
        status=AlertStatus(message.status or AlertStatus.FIRING),
        start_time=from_ts(message, "start_time") or first_seen,
        first_seen_time=first_seen,
        last_seen_time=from_ts(message, "last_seen_time") or first_seen,
        group_key=message.group_key,
        dedup_key=message.dedup_key,
        description=message.description,
        alert_type=message.alert_type,
        service=message.service,
        model=message.model,
        labels=dict(message.labels),
        annotations=dict(message.annotations),
        end_time=from_ts(message, "end_time"),
        generator_url=message.generator_url,
        duplicate_count=message.duplicate_count,
        incident_id=message.incident_id,
        silenced_by=tuple(message.silenced_by),
        anomaly_id=message.anomaly_id,
        version=message.version,
    )


# ---------------------------------------------------------------------------- incidents


def incident_to_proto(incident: Incident) -> res.Incident:
    """An incident as the API (and storage) shows it."""
    message = res.Incident(
        incident_id=incident.incident_id,
        title=incident.title,
        description=incident.description,
        state=int(incident.state),  # type: ignore[arg-type]
        severity=int(incident.severity),  # type: ignore[arg-type]
        priority=int(incident.priority),  # type: ignore[arg-type]
        incident_type=incident.incident_type,
        group_key=incident.group_key,
        service=incident.service,
        model=incident.model,
        labels=dict(incident.labels),
        alert_count=incident.alert_count,
        alert_fingerprints=list(incident.alert_fingerprints),
        assignees=list(incident.assignees),
        flapping=incident.flapping,
        reopen_count=incident.reopen_count,
        suppressed=incident.suppressed,
        silence_id=incident.silence_id,
        version=incident.version,
        escalation_policy_id=incident.escalation_policy_id,
        escalation_level=incident.escalation_level,
    )
    for name in (
        "create_time",
        "acknowledge_time",
        "resolve_time",
        "close_time",
        "update_time",
        "next_escalation_time",
    ):
        _set_ts(message, name, getattr(incident, name))
    return message


def incident_from_proto(message: res.Incident) -> Incident:
    """A stored incident (from storage)."""
    created = from_ts(message, "create_time") or _EPOCH
    return Incident(
        incident_id=message.incident_id,
        title=message.title,
        state=IncidentState(message.state or IncidentState.TRIGGERED),
        severity=Severity(message.severity or Severity.MEDIUM),
        priority=Priority(message.priority or Priority.P2),
        group_key=message.group_key,
        create_time=created,
        update_time=from_ts(message, "update_time") or created,
        description=message.description,
        incident_type=message.incident_type,
        service=message.service,
        model=message.model,
        labels=dict(message.labels),
        alert_count=message.alert_count,
        alert_fingerprints=tuple(message.alert_fingerprints),
        assignees=tuple(message.assignees),
        flapping=message.flapping,
        acknowledge_time=from_ts(message, "acknowledge_time"),
        resolve_time=from_ts(message, "resolve_time"),
        close_time=from_ts(message, "close_time"),
        reopen_count=message.reopen_count,
        suppressed=message.suppressed,
        silence_id=message.silence_id,
        version=message.version,
        escalation_policy_id=message.escalation_policy_id,
        escalation_level=message.escalation_level,
        next_escalation_time=from_ts(message, "next_escalation_time"),
    )


# ---------------------------------------------------------------------------- timeline


def entry_to_proto(entry: TimelineEntry) -> res.TimelineEntry:
    """A timeline entry."""
    message = res.TimelineEntry(
        entry_id=entry.entry_id,
        incident_id=entry.incident_id,
        kind=int(entry.kind),  # type: ignore[arg-type]
        actor=entry.actor,
        reason=entry.reason,
        from_value=entry.from_value,
        to_value=entry.to_value,
        message=entry.message,
        attributes=dict(entry.attributes),
    )
    _set_ts(message, "event_time", entry.event_time)
    return message


def entry_from_proto(message: res.TimelineEntry) -> TimelineEntry:
    """A stored timeline entry."""
    return TimelineEntry(
        entry_id=message.entry_id,
        incident_id=message.incident_id,
        event_time=from_ts(message, "event_time") or datetime(1970, 1, 1, tzinfo=UTC),
        kind=TimelineKind(message.kind or TimelineKind.NOTE_ADDED),
        actor=message.actor,
        reason=message.reason,
        from_value=message.from_value,
        to_value=message.to_value,
        message=message.message,
        attributes=dict(message.attributes),
    )


# ---------------------------------------------------------------------------- silences


def silence_to_proto(silence: Silence, *, now: datetime | None = None) -> res.Silence:
    """A silence; `state` is derived from `now` when given."""
    message = res.Silence(
        silence_id=silence.silence_id,
        matchers=matchers_to_proto(silence.matchers),
        created_by=silence.created_by,
        comment=silence.comment,
        maintenance=silence.maintenance,
        state=int(silence.state(now)) if now is not None else 0,  # type: ignore[arg-type]
    )
    for name in ("start_time", "end_time", "create_time", "update_time"):
        _set_ts(message, name, getattr(silence, name))
    return message


def silence_from_proto(message: res.Silence) -> Silence:
    """A stored silence."""
    return Silence(
        silence_id=message.silence_id,
        matchers=matchers_from_proto(message.matchers, "silence.matchers"),
        start_time=from_ts(message, "start_time") or _EPOCH,
        end_time=from_ts(message, "end_time") or _EPOCH,
        created_by=message.created_by,
        comment=message.comment,
        maintenance=message.maintenance,
        create_time=from_ts(message, "create_time"),
        update_time=from_ts(message, "update_time"),
    )


# ---------------------------------------------------------------------------- stats


def stats_to_proto(stats: IncidentStats) -> res.IncidentStats:
    """The figures."""
    message = res.IncidentStats(
        alerts_received=stats.alerts_received,
        alerts_deduplicated=stats.alerts_deduplicated,
        alerts_grouped=stats.alerts_grouped,
        alerts_suppressed=stats.alerts_suppressed,
        incidents_created=stats.incidents_created,
        notifications_sent=stats.notifications_sent,
        notifications_failed=stats.notifications_failed,
        incidents_acknowledged=stats.incidents_acknowledged,
        incidents_resolved=stats.incidents_resolved,
        incidents_reopened=stats.incidents_reopened,
        mean_time_to_acknowledge=to_duration(stats.mean_time_to_acknowledge),
        p50_time_to_acknowledge=to_duration(stats.p50_time_to_acknowledge),
        p90_time_to_acknowledge=to_duration(stats.p90_time_to_acknowledge),
        mean_time_to_resolve=to_duration(stats.mean_time_to_resolve),
        p50_time_to_resolve=to_duration(stats.p50_time_to_resolve),
        p90_time_to_resolve=to_duration(stats.p90_time_to_resolve),
    )
    _set_ts(message.time_range, "start_time", stats.start_time)
    _set_ts(message.time_range, "end_time", stats.end_time)
    return message


def stats_from_proto(message: res.IncidentStats) -> IncidentStats:
    """Storage's figures."""
    return IncidentStats(
        start_time=from_ts(message.time_range, "start_time"),
        end_time=from_ts(message.time_range, "end_time"),
        alerts_received=message.alerts_received,
        alerts_deduplicated=message.alerts_deduplicated,
        alerts_grouped=message.alerts_grouped,
        alerts_suppressed=message.alerts_suppressed,
        incidents_created=message.incidents_created,
        notifications_sent=message.notifications_sent,
        notifications_failed=message.notifications_failed,
        incidents_acknowledged=message.incidents_acknowledged,
        incidents_resolved=message.incidents_resolved,
        incidents_reopened=message.incidents_reopened,
        mean_time_to_acknowledge=message.mean_time_to_acknowledge.ToTimedelta(),
        p50_time_to_acknowledge=message.p50_time_to_acknowledge.ToTimedelta(),
        p90_time_to_acknowledge=message.p90_time_to_acknowledge.ToTimedelta(),
        mean_time_to_resolve=message.mean_time_to_resolve.ToTimedelta(),
        p50_time_to_resolve=message.p50_time_to_resolve.ToTimedelta(),
        p90_time_to_resolve=message.p90_time_to_resolve.ToTimedelta(),
    )


# ---------------------------------------------------------------------------- requests


def anomaly_from_proto(request: api.ReportAnomalyRequest) -> AnomalyInput:
    """The anomaly of a ReportAnomaly request (validated by the domain)."""
    if not request.HasField("anomaly"):
        raise InvalidArgumentError("anomaly", "is required")
    anomaly = request.anomaly
    return AnomalyInput(
        anomaly_id=anomaly.anomaly_id,
        series_name=anomaly.series.name,
        series_labels=dict(anomaly.series.labels),
        has_series=anomaly.HasField("series"),
        start_time=from_ts(anomaly, "start_time", field="anomaly.start_time"),
        peak_time=from_ts(anomaly, "peak_time", field="anomaly.peak_time"),
        end_time=from_ts(anomaly, "end_time", field="anomaly.end_time"),
        value=anomaly.value,
        baseline=anomaly.baseline,
        score=anomaly.score,
        severity=anomaly.severity,
        anomaly_type=anomaly.anomaly_type,
        detectors=tuple(c.detector for c in anomaly.contributions),
        explanation=anomaly.explanation,
    )


def time_range(message: Any, name: str) -> tuple[datetime | None, datetime | None]:
    if not message.HasField(name):
        return None, None
    time_range = getattr(message, name)
    return (
        from_ts(time_range, "start_time", field=f"{name}.start_time"),
        from_ts(time_range, "end_time", field=f"{name}.end_time"),
    )


def incident_query_from_proto(request: api.ListIncidentsRequest) -> IncidentQuery:
    """Filters of ListIncidents."""
    start, end = time_range(request, "time_range")
    return IncidentQuery(
        states=_known_list(IncidentState, request.states, "states"),
        severities=_known_list(Severity, request.severities, "severities"),
        priorities=_known_list(Priority, request.priorities, "priorities"),
        service=request.service,
        model=request.model,
        matchers=matchers_from_proto(request.matchers, "matchers"),
        start_time=start,
        end_time=end,
        text=request.query,
        assignee=request.assignee,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def alert_query_from_proto(request: api.ListAlertsRequest) -> AlertQuery:
    """Filters of ListAlerts."""
    start, end = time_range(request, "time_range")
    return AlertQuery(
        incident_id=request.incident_id,
        fingerprint=request.fingerprint,
        statuses=_known_list(AlertStatus, request.statuses, "statuses"),
        matchers=matchers_from_proto(request.matchers, "matchers"),
        start_time=start,
        end_time=end,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def timeline_query_from_proto(request: api.ListTimelineRequest) -> TimelineQuery:
    """Selection of ListTimeline."""
    return TimelineQuery(
        incident_id=request.incident_id,
        kinds=_known_list(TimelineKind, request.kinds, "kinds"),
        page_size=request.page_size,
        page_token=request.page_token,
    )


def watch_filter_from_proto(request: api.WatchIncidentsRequest) -> WatchFilter:
    """Filters of WatchIncidents."""
    return WatchFilter(
        incident_ids=frozenset(request.incident_ids),
        states=frozenset(_known_list(IncidentState, request.states, "states")),
        severities=frozenset(_known_list(Severity, request.severities, "severities")),
        service=request.service,
        model=request.model,
        matchers=matchers_from_proto(request.matchers, "matchers"),
    )


def silence_states_from_proto(states: Iterable[int]) -> tuple[SilenceState, ...]:
    """Silence state filters."""
    return _known_list(SilenceState, states, "states")


# ---------------------------------------------------------------------------- responses

_OUTCOMES = {
    Outcome.NEW_INCIDENT: api.ALERT_OUTCOME_NEW_INCIDENT,
    Outcome.ATTACHED: api.ALERT_OUTCOME_ATTACHED,
    Outcome.DEDUPLICATED: api.ALERT_OUTCOME_DEDUPLICATED,
    Outcome.SUPPRESSED: api.ALERT_OUTCOME_SUPPRESSED,
    Outcome.RESOLVED: api.ALERT_OUTCOME_RESOLVED,
    Outcome.REOPENED: api.ALERT_OUTCOME_REOPENED,
    # Waiting for the group's minimum count: the contract has no outcome for it yet.
    Outcome.PENDING: api.ALERT_OUTCOME_UNSPECIFIED,
}


def outcome_to_proto(outcome: Outcome) -> api.AlertOutcome.ValueType:
    """The wire outcome."""
    return _OUTCOMES[outcome]


def report_response(outcome: ReportOutcome) -> api.ReportAlertsResponse:
    """ReportAlerts' answer: results in request order, then the rejected alerts."""
    return api.ReportAlertsResponse(
        results=[_result(result) for result in outcome.results],
        errors=[common_pb2.RowError(index=e.index, field=e.field, reason=e.reason) for e in outcome.errors],
    )


def _result(result: AlertResult) -> api.AlertResult:
    return api.AlertResult(
        index=result.index,
        alert_id=result.alert.alert_id,
        fingerprint=result.alert.fingerprint,
        incident_id=result.alert.incident_id,
        outcome=outcome_to_proto(result.outcome),
        silence_ids=list(result.silence_ids),
    )


_EVENT_TYPES = {
    ChangeType.CREATED: res.INCIDENT_EVENT_TYPE_CREATED,
    ChangeType.UPDATED: res.INCIDENT_EVENT_TYPE_UPDATED,
    ChangeType.HEARTBEAT: res.INCIDENT_EVENT_TYPE_HEARTBEAT,
}


def event_to_proto(change: IncidentChange) -> api.WatchIncidentsResponse:
    """One streamed change (or heartbeat)."""
    event = res.IncidentEvent(
        cursor=change.cursor,
        type=_EVENT_TYPES[change.type],
        timeline_entries=[entry_to_proto(entry) for entry in change.entries],
    )
    _set_ts(event, "event_time", change.event_time)
    if change.incident is not None:
        event.incident.CopyFrom(incident_to_proto(change.incident))
    return api.WatchIncidentsResponse(event=event)


_CHANGE_TYPES = {proto: domain for domain, proto in _EVENT_TYPES.items()}


def change_from_event(event: res.IncidentEvent, *, tenant: str, cursor: str) -> IncidentChange:
    """A change read back from the watch feed's stream (see `event_to_proto`)."""
    return IncidentChange(
        tenant=tenant,
        type=_CHANGE_TYPES.get(event.type, ChangeType.UPDATED),
        event_time=from_ts(event, "event_time") or _EPOCH,
        incident=incident_from_proto(event.incident) if event.HasField("incident") else None,
        entries=tuple(entry_from_proto(entry) for entry in event.timeline_entries),
        cursor=cursor,
    )
