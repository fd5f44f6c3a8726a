"""Incident-record domain: enum mirrors of the contract, page tokens, silence states, stats range."""

from __future__ import annotations

import pytest

from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import resources_pb2
from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.incidents import (
    MAX_STATS_RANGE_US,
    IncidentState,
    PolicyKind,
    SilenceState,
    StatsRequest,
    TimelineKind,
    plan_page,
    plan_stats,
    silence_state,
)


def test_domain_enums_mirror_the_contract_numbers() -> None:
    for state in IncidentState:
        assert incident_pb2.IncidentState.Value(f"INCIDENT_STATE_{state.name}") == state
    for kind in TimelineKind:
        assert incident_pb2.TimelineEntryKind.Value(f"TIMELINE_ENTRY_KIND_{kind.name}") == kind
    for silence in SilenceState:
        assert incident_pb2.SilenceState.Value(f"SILENCE_STATE_{silence.name}") == silence
    for policy in PolicyKind:
        assert resources_pb2.PolicyKind.Value(f"POLICY_KIND_{policy.name}") == policy


def test_silence_state_is_pending_then_active_then_expired() -> None:
    assert silence_state(start_us=10, end_us=20, now_us=9) is SilenceState.PENDING
    assert silence_state(start_us=10, end_us=20, now_us=10) is SilenceState.ACTIVE
    assert silence_state(start_us=10, end_us=20, now_us=19) is SilenceState.ACTIVE
    assert silence_state(start_us=10, end_us=20, now_us=20) is SilenceState.EXPIRED


def test_a_page_token_round_trips_for_its_own_query_only() -> None:
    first = plan_page(0, "", query=("incidents", "chat"), shape=(int, str))
    assert (first.size, first.after) == (100, None)
    token = first.token([123, "inc-1"])
    resumed = plan_page(5, token, query=("incidents", "chat"), shape=(int, str))
    assert (resumed.size, resumed.after) == (5, (123, "inc-1"))
    assert plan_page(5000, "", query=(), shape=(int, str)).size == 1000
    with pytest.raises(InvalidArgumentError, match="different query"):
        plan_page(0, token, query=("incidents", "search"), shape=(int, str))
    for bad in ("garbage!", first.token(["x", "y"]), first.token([1]), token[:-3]):
        with pytest.raises(InvalidArgumentError) as raised:
            plan_page(0, bad, query=("incidents", "chat"), shape=(int, str))
        assert raised.value.field == "page_token"
    with pytest.raises(InvalidArgumentError) as negative:
        plan_page(-1, "", query=(), shape=(int, str))
    assert negative.value.field == "page_size"


def test_stats_range_defaults_its_end_to_now_and_is_bounded() -> None:
    assert plan_stats(StatsRequest(start_us=5, end_us=None), now_us=100) == (5, 100)
    assert plan_stats(StatsRequest(start_us=0, end_us=MAX_STATS_RANGE_US), now_us=1) == (
        0,
        MAX_STATS_RANGE_US,
    )
    for request, field in (
        (StatsRequest(start_us=None, end_us=10), "time_range.start_time"),
        (StatsRequest(start_us=10, end_us=10), "time_range"),
        (StatsRequest(start_us=0, end_us=MAX_STATS_RANGE_US + 1), "time_range"),
    ):
        with pytest.raises(InvalidArgumentError) as raised:
            plan_stats(request, now_us=0)
        assert raised.value.field == field
