"""Protobuf <-> domain for incident records. Protobuf types stop here.

A record's body is its message serialized as received; reads parse it back and set what storage
owns (versions, policy times, silence state) or fills in (times the message did not carry).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2
from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.incidents import (
    AlertChange,
    AlertChangeResult,
    AlertFilter,
    AlertRecord,
    Durations,
    IncidentFilter,
    IncidentRecord,
    IncidentStats,
    PolicyFilter,
    PolicyKind,
    PolicyRecord,
    SilenceFilter,
    SilenceRecord,
    SilenceState,
    StatsRequest,
    Stored,
    StoredPage,
    TimelineFilter,
    TimelineRecord,
)
from sentinel.storage.domain.query import LabelMatcher, MatchOperator, validate_matchers

_OPERATORS = {
    common_pb2.MATCH_OPERATOR_EQUAL: MatchOperator.EQUAL,
    common_pb2.MATCH_OPERATOR_NOT_EQUAL: MatchOperator.NOT_EQUAL,
    common_pb2.MATCH_OPERATOR_REGEX: MatchOperator.REGEX,
    common_pb2.MATCH_OPERATOR_NOT_REGEX: MatchOperator.NOT_REGEX,
}
_SILENCE_STATES = {
    incident_pb2.SILENCE_STATE_PENDING: SilenceState.PENDING,
    incident_pb2.SILENCE_STATE_ACTIVE: SilenceState.ACTIVE,
    incident_pb2.SILENCE_STATE_EXPIRED: SilenceState.EXPIRED,
}
_SILENCE_STATE_MESSAGES = {state: number for number, state in _SILENCE_STATES.items()}
# Policy oneof field -> (kind, id field of the wrapped resource).
_POLICY_FIELDS = {
    "escalation_policy": (PolicyKind.ESCALATION_POLICY, "escalation_policy_id"),
    "routing_rule": (PolicyKind.ROUTING_RULE, "routing_rule_id"),
    "schedule": (PolicyKind.SCHEDULE, "schedule_id"),
    "notification_channel": (PolicyKind.NOTIFICATION_CHANNEL, "notification_channel_id"),
    "playbook": (PolicyKind.PLAYBOOK, "playbook_id"),
}
_POLICY_KINDS = {
    resources_pb2.POLICY_KIND_ESCALATION_POLICY: PolicyKind.ESCALATION_POLICY,
    resources_pb2.POLICY_KIND_ROUTING_RULE: PolicyKind.ROUTING_RULE,
    resources_pb2.POLICY_KIND_SCHEDULE: PolicyKind.SCHEDULE,
    resources_pb2.POLICY_KIND_NOTIFICATION_CHANNEL: PolicyKind.NOTIFICATION_CHANNEL,
    resources_pb2.POLICY_KIND_PLAYBOOK: PolicyKind.PLAYBOOK,
}
_FIELD_OF_KIND = {kind: field for field, (kind, _) in _POLICY_FIELDS.items()}


# -- scalars ------------------------------------------------------------------------------------


def _us(message: Any, field: str, *, ceil: bool = False) -> int | None:
    """Microseconds of a Timestamp field (PostgreSQL's precision); None when unset.

    Stored times are floored; range bounds are rounded up, so that [start, end) selects exactly
    the stored times t with start <= t < end at nanosecond precision.
    """
    if not message.HasField(field):
        return None
    timestamp: Timestamp = getattr(message, field)
    nanos = timestamp.seconds * 1_000_000_000 + timestamp.nanos
    return int(-(-nanos // 1_000) if ceil else nanos // 1_000)


def _timestamp(unix_micro: int) -> Timestamp:
    return Timestamp(seconds=unix_micro // 1_000_000, nanos=unix_micro % 1_000_000 * 1_000)


def _fill(message: Any, field: str, unix_micro: int | None, *, replace: bool = False) -> None:
    if unix_micro is not None and (replace or not message.HasField(field)):
        getattr(message, field).CopyFrom(_timestamp(unix_micro))


def _duration(unix_micro: int | None) -> Duration | None:
    if unix_micro is None:
        return None
    return Duration(seconds=unix_micro // 1_000_000, nanos=unix_micro % 1_000_000 * 1_000)


_KNOWN: dict[int, frozenset[int]] = {}


def _enum(value: int, wrapper: Any, path: str) -> int:
    """A known value of a proto enum (the contract's number); proto3 accepts unknown ones."""
    # wrapper.values() builds a new list on every call: remember each enum's values once.
    known = _KNOWN.get(id(wrapper))
    if known is None:
        known = _KNOWN[id(wrapper)] = frozenset(wrapper.values())
    if value not in known:
        raise InvalidArgumentError(path, f"unknown value {value}")
    return value


def _enums(values: Iterable[int], wrapper: Any, path: str) -> tuple[int, ...]:
    return tuple(_enum(v, wrapper, f"{path}[{i}]") for i, v in enumerate(values))


def _matchers(messages: Iterable[common_pb2.LabelMatcher], path: str) -> tuple[LabelMatcher, ...]:
    matchers = []
    for i, message in enumerate(messages):
        operator = _OPERATORS.get(message.operator)
        if operator is None:
            raise InvalidArgumentError(f"{path}[{i}].operator", f"unknown or unset value {message.operator}")
        matchers.append(LabelMatcher(message.name, operator, message.value))
    return tuple(matchers)


def _range(message: Any, field: str = "time_range") -> tuple[int | None, int | None]:
    if not message.HasField(field):
        return None, None
    time_range = getattr(message, field)
    return _us(time_range, "start_time", ceil=True), _us(time_range, "end_time", ceil=True)


def _page(page: StoredPage, parse: Any) -> tuple[list[Any], str]:
    return [parse(item) for item in page.items], page.next_page_token


# -- alerts -------------------------------------------------------------------------------------


def alert_record(alert: incident_pb2.Alert) -> AlertRecord:
    _enum(alert.source, incident_pb2.AlertSource, "alert.source")
    _enum(alert.severity, common_pb2.Severity, "alert.severity")
    _enum(alert.priority, incident_pb2.Priority, "alert.priority")
    status = _enum(alert.status, incident_pb2.AlertStatus, "alert.status")
    return AlertRecord(
        alert_id=alert.alert_id,
        fingerprint=alert.fingerprint,
        body=alert.SerializeToString(),
        group_key=alert.group_key,
        incident_id=alert.incident_id,
        status=status or incident_pb2.ALERT_STATUS_FIRING,  # unset means firing
        service=alert.service,
        model=alert.model,
        labels=dict(alert.labels),
        first_seen_us=_us(alert, "first_seen_time"),
        last_seen_us=_us(alert, "last_seen_time"),
        duplicate_count=alert.duplicate_count,
        silenced=len(alert.silenced_by) > 0,
    )


def alert_changes(request: storage_service_pb2.ApplyAlertChangesRequest) -> tuple[AlertChange, ...]:
    changes = []
    for i, change in enumerate(request.changes):
        try:
            alert = alert_record(change.alert)
        except InvalidArgumentError as bad:
            raise InvalidArgumentError(f"changes[{i}].{bad.field}", bad.problem) from None
        timeline = timeline_records(change.timeline_entries, f"changes[{i}].timeline_entries")
        incident = None
        if change.HasField("new_incident"):
            try:
                incident = incident_record(change.new_incident)
            except InvalidArgumentError as bad:
                raise InvalidArgumentError(f"changes[{i}].new_{bad.field}", bad.problem) from None
        changes.append(AlertChange(alert, change.expected_version, timeline, incident))
    return tuple(changes)


def apply_alert_changes_response(
    results: Iterable[AlertChangeResult],
) -> storage_service_pb2.ApplyAlertChangesResponse:
    return storage_service_pb2.ApplyAlertChangesResponse(
        results=[
            storage_service_pb2.AlertChangeResult(
                status=int(r.status),  # type: ignore[arg-type]
                version=r.version,
                created=r.created,
                timeline_appended=r.timeline_appended,
                incident_id=r.incident_id,
            )
            for r in results
        ]
    )


def alert_message(stored: Stored) -> incident_pb2.Alert:
    alert = incident_pb2.Alert.FromString(stored.body)
    alert.version = stored.version
    return alert


def alert_filter(request: storage_service_pb2.ListAlertsRequest) -> AlertFilter:
    start, end = _range(request)
    statuses = _enums(request.statuses, incident_pb2.AlertStatus, "statuses")
    return AlertFilter(
        incident_id=request.incident_id,
        fingerprint=request.fingerprint,
        group_key=request.group_key,
        statuses=tuple(sorted({s or incident_pb2.ALERT_STATUS_FIRING for s in statuses})),
        matchers=_matchers(request.matchers, "matchers"),
        start_us=start,
        end_us=end,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def list_alerts_response(page: StoredPage) -> storage_service_pb2.ListAlertsResponse:
    alerts, token = _page(page, alert_message)
    return storage_service_pb2.ListAlertsResponse(alerts=alerts, next_page_token=token)


# -- incidents ----------------------------------------------------------------------------------


def incident_record(incident: incident_pb2.Incident) -> IncidentRecord:
    return IncidentRecord(
        incident_id=incident.incident_id,
        group_key=incident.group_key,
        state=_enum(incident.state, incident_pb2.IncidentState, "incident.state"),
        body=incident.SerializeToString(),
        severity=_enum(incident.severity, common_pb2.Severity, "incident.severity"),
        priority=_enum(incident.priority, incident_pb2.Priority, "incident.priority"),
        service=incident.service,
        model=incident.model,
        labels=dict(incident.labels),
        title=incident.title,
        description=incident.description,
        assignees=tuple(incident.assignees),
        first_fingerprint=incident.alert_fingerprints[0] if incident.alert_fingerprints else "",
        create_us=_us(incident, "create_time"),
        update_us=_us(incident, "update_time"),
        acknowledge_us=_us(incident, "acknowledge_time"),
        resolve_us=_us(incident, "resolve_time"),
        next_escalation_us=_us(incident, "next_escalation_time"),
    )


def incident_message(stored: Stored) -> incident_pb2.Incident:
    incident = incident_pb2.Incident.FromString(stored.body)
    incident.version = stored.version
    _fill(incident, "create_time", stored.create_us)
    _fill(incident, "update_time", stored.update_us)
    return incident


def group_incidents_response(
    groups: Iterable[tuple[str, Stored | None, Stored | None]],
) -> storage_service_pb2.BatchGetGroupIncidentsResponse:
    return storage_service_pb2.BatchGetGroupIncidentsResponse(
        groups=[
            storage_service_pb2.GroupIncidents(
                group_key=key,
                open_incident=incident_message(open_incident) if open_incident is not None else None,
                last_resolved_incident=incident_message(resolved) if resolved is not None else None,
            )
            for key, open_incident, resolved in groups
        ]
    )


def timeline_records(
    entries: Iterable[incident_pb2.TimelineEntry], path: str, *, incident_id: str = ""
) -> tuple[TimelineRecord, ...]:
    """Entries; with `incident_id`, those naming no incident are stored as the incident's."""
    records = []
    for i, entry in enumerate(entries):
        _enum(entry.kind, incident_pb2.TimelineEntryKind, f"{path}[{i}].kind")
        owner = entry.incident_id
        if incident_id and not owner:
            owned = incident_pb2.TimelineEntry()
            owned.CopyFrom(entry)
            owned.incident_id = owner = incident_id
            entry = owned
        records.append(
            TimelineRecord(
                entry_id=entry.entry_id,
                incident_id=owner,
                event_us=_us(entry, "event_time"),
                kind=entry.kind,
                body=entry.SerializeToString(),
                to_value=entry.to_value,
                attributes=dict(entry.attributes),
            )
        )
    return tuple(records)


def timeline_message(stored: Stored) -> incident_pb2.TimelineEntry:
    return incident_pb2.TimelineEntry.FromString(stored.body)


def incident_filter(request: storage_service_pb2.ListIncidentsRequest) -> IncidentFilter:
    start, end = _range(request)
    return IncidentFilter(
        states=_enums(request.states, incident_pb2.IncidentState, "states"),
        severities=_enums(request.severities, common_pb2.Severity, "severities"),
        priorities=_enums(request.priorities, incident_pb2.Priority, "priorities"),
        service=request.service,
        model=request.model,
        group_key=request.group_key,
        matchers=_matchers(request.matchers, "matchers"),
        start_us=start,
        end_us=end,
        query=request.query,
        assignee=request.assignee,
        escalation_due_before_us=_us(request, "escalation_due_before"),
        page_size=request.page_size,
        page_token=request.page_token,
    )


def list_incidents_response(page: StoredPage) -> storage_service_pb2.ListIncidentsResponse:
    incidents, token = _page(page, incident_message)
    return storage_service_pb2.ListIncidentsResponse(incidents=incidents, next_page_token=token)


def timeline_filter(request: storage_service_pb2.ListTimelineEntriesRequest) -> TimelineFilter:
    start, end = _range(request)
    return TimelineFilter(
        incident_id=request.incident_id,
        kinds=_enums(request.kinds, incident_pb2.TimelineEntryKind, "kinds"),
        start_us=start,
        end_us=end,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def list_timeline_response(page: StoredPage) -> storage_service_pb2.ListTimelineEntriesResponse:
    entries, token = _page(page, timeline_message)
    return storage_service_pb2.ListTimelineEntriesResponse(entries=entries, next_page_token=token)


def stats_request(request: storage_service_pb2.GetIncidentStatsRequest) -> StatsRequest:
    start, end = _range(request)
    return StatsRequest(start_us=start, end_us=end, service=request.service, model=request.model)


def stats_response(stats: IncidentStats) -> storage_service_pb2.GetIncidentStatsResponse:
    message = incident_pb2.IncidentStats(
        time_range=common_pb2.TimeRange(
            start_time=_timestamp(stats.start_us), end_time=_timestamp(stats.end_us)
        ),
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
    )
    for prefix, durations in (("acknowledge", stats.time_to_acknowledge), ("resolve", stats.time_to_resolve)):
        for name, value in _figures(durations):
            duration = _duration(value)
            if duration is not None:
                getattr(message, f"{name}_time_to_{prefix}").CopyFrom(duration)
    return storage_service_pb2.GetIncidentStatsResponse(stats=message)


def _figures(durations: Durations) -> tuple[tuple[str, int | None], ...]:
    return (("mean", durations.mean_us), ("p50", durations.p50_us), ("p90", durations.p90_us))


# -- silences -----------------------------------------------------------------------------------


def silence_record(silence: incident_pb2.Silence) -> SilenceRecord:
    validate_matchers(_matchers(silence.matchers, "silence.matchers"), "silence.matchers", selective=False)
    return SilenceRecord(
        silence_id=silence.silence_id,
        matcher_count=len(silence.matchers),
        start_us=_us(silence, "start_time"),
        end_us=_us(silence, "end_time"),
        body=silence.SerializeToString(),
        create_us=_us(silence, "create_time"),
        update_us=_us(silence, "update_time"),
    )


def silence_message(stored: Stored) -> incident_pb2.Silence:
    silence = incident_pb2.Silence.FromString(stored.body)
    _fill(silence, "start_time", stored.start_us)
    _fill(silence, "create_time", stored.create_us)
    _fill(silence, "update_time", stored.update_us)
    if stored.silence_state is not None:
        silence.state = _SILENCE_STATE_MESSAGES[stored.silence_state]
    return silence


def silence_filter(request: storage_service_pb2.ListSilencesRequest) -> SilenceFilter:
    states = []
    for i, value in enumerate(request.states):
        state = _SILENCE_STATES.get(value)
        if state is None:
            raise InvalidArgumentError(f"states[{i}]", f"unknown or unset value {value}")
        states.append(state)
    return SilenceFilter(states=tuple(states), page_size=request.page_size, page_token=request.page_token)


def list_silences_response(page: StoredPage) -> storage_service_pb2.ListSilencesResponse:
    silences, token = _page(page, silence_message)
    return storage_service_pb2.ListSilencesResponse(silences=silences, next_page_token=token)


# -- policies -----------------------------------------------------------------------------------


def policy_record(policy: resources_pb2.Policy) -> PolicyRecord:
    which = policy.WhichOneof("policy")
    if which is None:
        raise InvalidArgumentError("policy", "exactly one kind of policy must be set")
    kind, id_field = _POLICY_FIELDS[which]
    inner = getattr(policy, which)
    return PolicyRecord(
        kind=kind,
        policy_id=getattr(inner, id_field),
        name=inner.name,
        body=policy.SerializeToString(),
        order=policy.routing_rule.order if kind is PolicyKind.ROUTING_RULE else 0,
        id_field=id_field,
    )


def policy_message(stored: Stored) -> resources_pb2.Policy:
    policy = resources_pb2.Policy.FromString(stored.body)
    which = policy.WhichOneof("policy")
    if which is not None:
        inner = getattr(policy, which)
        inner.version = stored.version
        _fill(inner, "create_time", stored.create_us, replace=True)
        _fill(inner, "update_time", stored.update_us, replace=True)
    return policy


def policy_kind(value: resources_pb2.PolicyKind.ValueType) -> PolicyKind | None:
    """None for POLICY_KIND_UNSPECIFIED (rejected by the use case)."""
    if value == resources_pb2.POLICY_KIND_UNSPECIFIED:
        return None
    kind = _POLICY_KINDS.get(value)
    if kind is None:
        raise InvalidArgumentError("kind", f"unknown value {value}")
    return kind


def policy_filter(request: storage_service_pb2.ListPoliciesRequest) -> PolicyFilter:
    return PolicyFilter(
        kind=policy_kind(request.kind), page_size=request.page_size, page_token=request.page_token
    )


def list_policies_response(page: StoredPage) -> storage_service_pb2.ListPoliciesResponse:
    policies, token = _page(page, policy_message)
    return storage_service_pb2.ListPoliciesResponse(policies=policies, next_page_token=token)
