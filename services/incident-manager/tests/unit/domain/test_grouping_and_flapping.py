from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sentinel.incident_manager.domain import grouping
from sentinel.incident_manager.domain.flapping import is_flapping, should_notify, update_flapping
from sentinel.incident_manager.domain.funnel import NoiseFunnel
from sentinel.incident_manager.domain.grouping import Placement, place_alert
from sentinel.incident_manager.domain.model import (
    AlertInput,
    AlertStatus,
    Incident,
    IncidentState,
    Outcome,
    Priority,
    Severity,
    TimelineKind,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.validate import validate_alert

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = IncidentPolicy(reopen_window=timedelta(hours=1), group_window=timedelta(minutes=5), min_alerts=1)


def incident(state: IncidentState, **extra: object) -> Incident:
    return Incident(
        incident_id="inc_1",
        title="t",
        state=state,
        severity=Severity.MEDIUM,
        priority=Priority.P2,
        group_key="g",
        create_time=NOW - timedelta(hours=2),
        update_time=NOW - timedelta(hours=2),
        alert_count=1,
        alert_fingerprints=("v1:a",),
        labels={"env": "prod", "pod": "a"},
        service="chat",
        model="gpt",
        version=1,
        **extra,  # type: ignore[arg-type]
    )


def alert(**overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "alert_type": "latency_spike",
        "service": "chat",
        "model": "gpt",
        "labels": {"env": "prod", "pod": "b"},
        "severity": int(Severity.HIGH),
    }
    fields.update(overrides)
    return validate_alert(AlertInput(**fields), now=NOW, policy=POLICY, limits=Limits())  # type: ignore[arg-type]


def test_an_open_incident_of_the_group_absorbs_a_new_alert() -> None:
    for state in (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED):
        placement = place_alert(
            open_incident=incident(state), last_resolved=None, pending_alerts=0, now=NOW, policy=POLICY
        )
        assert placement is Placement.ATTACH


def test_a_new_firing_within_the_reopen_window_reopens_after_it_a_new_incident_opens() -> None:
    recent = incident(IncidentState.RESOLVED, resolve_time=NOW - timedelta(minutes=59))
    old = incident(IncidentState.RESOLVED, resolve_time=NOW - timedelta(minutes=61))
    args = {"open_incident": None, "pending_alerts": 0, "now": NOW, "policy": POLICY}
    assert place_alert(last_resolved=recent, **args) is Placement.REOPEN  # type: ignore[arg-type]
    assert place_alert(last_resolved=old, **args) is Placement.CREATE  # type: ignore[arg-type]
    closed = incident(IncidentState.CLOSED, resolve_time=NOW - timedelta(minutes=1))
    assert place_alert(last_resolved=closed, **args) is Placement.CREATE  # type: ignore[arg-type]


def test_minimum_count_holds_alerts_until_enough_arrive_within_the_group_window() -> None:
    policy = replace(POLICY, min_alerts=3)
    args = {"open_incident": None, "last_resolved": None, "now": NOW, "policy": policy}
    assert place_alert(pending_alerts=0, **args) is Placement.HOLD  # type: ignore[arg-type]
    assert place_alert(pending_alerts=1, **args) is Placement.HOLD  # type: ignore[arg-type]
    assert place_alert(pending_alerts=2, **args) is Placement.CREATE  # type: ignore[arg-type]

    waiting = alert()
    assert grouping.in_group_window(waiting, now=NOW + timedelta(minutes=4), policy=policy)
    assert not grouping.in_group_window(waiting, now=NOW + timedelta(minutes=5), policy=policy)
    assert not grouping.in_group_window(replace(waiting, incident_id="inc_x"), now=NOW, policy=policy)


def test_attach_counts_distinct_fingerprints_keeps_common_fields_and_raises_severity() -> None:
    joined = grouping.attach(incident(IncidentState.TRIGGERED), alert(), now=NOW)
    assert joined.alert_count == 2
    assert joined.severity is Severity.HIGH and joined.priority is Priority.P1
    assert joined.labels == {"env": "prod"}
    assert (joined.service, joined.model) == ("chat", "gpt")
    again = grouping.attach(joined, alert(), now=NOW)
    assert again.alert_count == 2
    other_service = grouping.attach(joined, alert(service="billing"), now=NOW)
    assert other_service.service == ""


def test_new_incident_takes_title_type_and_silence_from_its_first_alert() -> None:
    first = alert(title="p99 over 2s")
    created = grouping.new_incident(first, incident_id="inc_9", now=NOW, silence=None)
    assert (created.title, created.incident_type, created.state) == (
        "p99 over 2s",
        "latency_spike",
        IncidentState.TRIGGERED,
    )
    assert created.alert_fingerprints == (first.fingerprint,)
    assert not created.suppressed


def test_repeat_increments_and_expiry_follows_end_time_or_ttl() -> None:
    first = alert()
    repeated = grouping.repeat(first, first, now=NOW + timedelta(seconds=5))
    assert repeated.duplicate_count == 1 and repeated.last_seen_time == NOW + timedelta(seconds=5)
    policy = replace(POLICY, alert_ttl=timedelta(hours=1))
    assert not grouping.is_expired(first, now=NOW + timedelta(minutes=59), policy=policy)
    assert grouping.is_expired(first, now=NOW + timedelta(hours=1), policy=policy)
    ends = replace(first, end_time=NOW + timedelta(minutes=5))
    assert grouping.is_expired(ends, now=NOW + timedelta(minutes=5), policy=policy)
    assert not grouping.is_active(replace(first, status=AlertStatus.RESOLVED), now=NOW, policy=policy)


def test_flapping_needs_threshold_changes_within_the_window() -> None:
    window = timedelta(minutes=30)
    times = [NOW - timedelta(minutes=m) for m in (1, 5, 10)]
    assert not is_flapping(times, now=NOW, window=window, threshold=4)
    assert is_flapping([*times, NOW], now=NOW, window=window, threshold=4)
    stale = [NOW - timedelta(minutes=m) for m in (31, 40, 50, 59)]
    assert not is_flapping(stale, now=NOW, window=window, threshold=4)


def test_flapping_toggles_are_recorded_and_silence_renotification() -> None:
    calm = incident(IncidentState.TRIGGERED)
    times = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    flapping, entries = update_flapping(calm, times, now=NOW, window=timedelta(minutes=30), threshold=4)
    assert flapping.flapping and [e.kind for e in entries] == [TimelineKind.FLAPPING]
    assert entries[0].to_value == "true"
    assert not should_notify(flapping)
    again, none = update_flapping(flapping, times, now=NOW, window=timedelta(minutes=30), threshold=4)
    assert again.flapping and none == ()
    later = NOW + timedelta(hours=1)
    calmed, stop = update_flapping(
        flapping, [*times, later], now=later, window=timedelta(minutes=30), threshold=4
    )
    assert not calmed.flapping and stop[0].to_value == "false"
    assert should_notify(calmed)


def test_noise_funnel_counts_each_stage() -> None:
    funnel = NoiseFunnel()
    for outcome in [Outcome.NEW_INCIDENT, *[Outcome.DEDUPLICATED] * 8, Outcome.ATTACHED]:
        funnel.record(outcome)
    funnel.record(Outcome.SUPPRESSED)
    assert (funnel.received, funnel.deduplicated, funnel.grouped, funnel.suppressed, funnel.incidents) == (
        11,
        8,
        1,
        1,
        1,
    )
    assert funnel.noise_reduction == 1 - 1 / 11
