from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from sentinel.incident_manager.domain import lifecycle
from sentinel.incident_manager.domain.model import (
    Incident,
    IncidentState,
    Priority,
    Severity,
    TimelineKind,
)
from sentinel.runtime.errors import FailedPreconditionError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
T, A, R, C = IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED, IncidentState.CLOSED
ALLOWED = {(T, A), (T, R), (A, R), (R, T), (R, C)}
NO_OPS = {(A, A), (R, R), (C, C)}


def incident(state: IncidentState, **extra: object) -> Incident:
    return Incident(
        incident_id="inc_1",
        title="latency",
        state=state,
        severity=Severity.HIGH,
        priority=Priority.P1,
        group_key="g1:x",
        create_time=NOW - timedelta(hours=1),
        update_time=NOW - timedelta(hours=1),
        version=3,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed_transitions_change_state_and_record_actor_and_reason(
    source: IncidentState, target: IncidentState
) -> None:
    change = lifecycle.transition(incident(source), target, now=NOW, actor="user:alice", reason="on it")

    assert change is not None
    assert change.incident.state is target
    assert change.incident.update_time == NOW
    first = change.entries[0]
    assert first.kind is TimelineKind.STATE_CHANGED
    assert (first.from_value, first.to_value) == (source.name, target.name)
    assert (first.actor, first.reason, first.event_time) == ("user:alice", "on it", NOW)


INVALID = sorted(
    (s, t) for s, t in itertools.product(IncidentState, IncidentState) if (s, t) not in ALLOWED | NO_OPS
)


@pytest.mark.parametrize(("source", "target"), INVALID)
def test_every_other_transition_is_failed_precondition_invalid_transition(
    source: IncidentState, target: IncidentState
) -> None:
    with pytest.raises(FailedPreconditionError) as raised:
        lifecycle.transition(incident(source), target, now=NOW, actor="user:alice")
    assert raised.value.reason == "INVALID_TRANSITION"
    assert raised.value.metadata["from"] == source.name
    assert raised.value.metadata["to"] == target.name


def test_invalid_transitions_include_everything_out_of_closed() -> None:
    assert {(C, T), (C, A), (C, R)} <= set(INVALID)
    assert {(A, T), (A, C), (T, C), (R, A), (T, T)} <= set(INVALID)


@pytest.mark.parametrize("state", [A, R, C])
def test_same_state_requests_are_idempotent_no_ops(state: IncidentState) -> None:
    assert lifecycle.transition(incident(state), state, now=NOW, actor="user:alice") is None


def test_stamps_acknowledge_resolve_close_times() -> None:
    acked = lifecycle.acknowledge(incident(T), now=NOW, actor="a")
    assert acked is not None and acked.incident.acknowledge_time == NOW
    resolved = lifecycle.resolve(acked.incident, now=NOW + timedelta(minutes=1), actor="a")
    assert resolved is not None and resolved.incident.resolve_time == NOW + timedelta(minutes=1)
    closed = lifecycle.close(resolved.incident, now=NOW + timedelta(minutes=2), actor="a")
    assert closed is not None and closed.incident.close_time == NOW + timedelta(minutes=2)


def test_reopen_counts_and_records_a_reopened_entry() -> None:
    change = lifecycle.reopen(
        incident(R, reopen_count=2, acknowledge_time=NOW), now=NOW, actor="a", reason="again"
    )

    assert change.incident.state is T
    assert change.incident.reopen_count == 3
    assert change.incident.acknowledge_time is None
    assert [e.kind for e in change.entries] == [TimelineKind.STATE_CHANGED, TimelineKind.REOPENED]


@pytest.mark.parametrize("state", [T, A, C])
def test_reopen_of_a_not_resolved_incident_is_invalid(state: IncidentState) -> None:
    with pytest.raises(FailedPreconditionError) as raised:
        lifecycle.reopen(incident(state), now=NOW, actor="a")
    assert raised.value.reason == "INVALID_TRANSITION"


def test_reopen_window() -> None:
    resolved = incident(R, resolve_time=NOW - timedelta(minutes=30))
    assert lifecycle.within_reopen_window(resolved, now=NOW, window_s=3600)
    assert not lifecycle.within_reopen_window(resolved, now=NOW, window_s=1800)
    assert not lifecycle.within_reopen_window(incident(C, resolve_time=NOW), now=NOW, window_s=3600)


def test_state_change_entry_ids_are_deterministic_for_idempotent_retries() -> None:
    one = lifecycle.acknowledge(incident(T), now=NOW, actor="a")
    two = lifecycle.acknowledge(incident(T), now=NOW, actor="a")
    assert one is not None and two is not None
    assert one.entries[0].entry_id == two.entries[0].entry_id


def test_edits_on_closed_incidents_are_refused() -> None:
    with pytest.raises(FailedPreconditionError) as raised:
        lifecycle.ensure_not_closed(incident(C))
    assert raised.value.reason == "INCIDENT_CLOSED"
    lifecycle.ensure_not_closed(incident(R))
