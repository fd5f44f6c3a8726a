from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sentinel.incident_manager.adapters.dedup import InProcessDedupLock
from sentinel.incident_manager.domain.model import (
    AlertInput,
    AlertStatus,
    AnomalyInput,
    AnomalyType,
    ChangeType,
    IncidentState,
    LabelMatcher,
    MatchOperator,
    Outcome,
    Priority,
    Severity,
    TimelineKind,
)
from sentinel.incident_manager.domain.watch import WatchFilter
from sentinel.incident_manager.ports import IncidentQuery
from sentinel.incident_manager.service import IncidentService
from sentinel.runtime.clock import ManualClock
from sentinel.runtime.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)

TENANT = "acme"


def firing(**overrides: Any) -> AlertInput:
    fields: dict[str, Any] = {
        "alert_type": "latency_spike",
        "service": "chat-api",
        "model": "gpt-4o",
        "labels": {"env": "prod"},
        "severity": int(Severity.HIGH),
        "title": "p99 latency over 2s",
    }
    fields.update(overrides)
    return AlertInput(**fields)


def resolved(**overrides: Any) -> AlertInput:
    return firing(status=int(AlertStatus.RESOLVED), **overrides)


async def report(service: IncidentService, *alerts: AlertInput) -> list[Any]:
    outcome = await service.report_alerts(tenant=TENANT, alerts=list(alerts))
    assert not outcome.errors, outcome.errors
    return outcome.results


def kinds(store: Any, incident_id: str) -> list[TimelineKind]:
    return [e.kind for e in store.timeline(TENANT, incident_id)]


async def test_report_alert_opens_an_incident_with_priority_from_severity(
    service: IncidentService, store: Any
) -> None:
    [result] = await report(service, firing())

    assert result.outcome is Outcome.NEW_INCIDENT
    incident = await service.get_incident(tenant=TENANT, incident_id=result.alert.incident_id)
    assert incident.state is IncidentState.TRIGGERED
    assert (incident.severity, incident.priority) == (Severity.HIGH, Priority.P1)
    assert incident.incident_type == "latency_spike"
    assert incident.alert_fingerprints == (result.alert.fingerprint,)
    assert kinds(store, incident.incident_id) == [TimelineKind.ALERT_RECEIVED]
    assert result.alert.incident_id and result.alert.incident_id != result.alert.fingerprint


async def test_a_repeat_of_an_active_alert_counts_and_appends_but_never_opens_a_second_incident(
    service: IncidentService, store: Any
) -> None:
    [first] = await report(service, firing())
    [second] = await report(service, firing())
    [third] = await report(service, firing())

    assert (second.outcome, third.outcome) == (Outcome.DEDUPLICATED, Outcome.DEDUPLICATED)
    assert third.alert.alert_id == first.alert.alert_id and third.alert.duplicate_count == 2
    assert len(store.incidents) == 1
    assert kinds(store, first.alert.incident_id).count(TimelineKind.ALERT_DEDUPLICATED) == 2


async def test_fifty_concurrent_identical_reports_make_one_incident_counting_fifty(
    service: IncidentService, store: Any
) -> None:
    results = await asyncio.gather(*(report(service, firing()) for _ in range(50)))

    outcomes = [r[0].outcome for r in results]
    assert outcomes.count(Outcome.NEW_INCIDENT) == 1
    assert outcomes.count(Outcome.DEDUPLICATED) == 49
    assert len(store.incidents) == 1 and len(store.alerts) == 1
    [alert] = store.alerts.values()
    assert alert.duplicate_count == 49  # 50 reports: the first and 49 repeats
    assert kinds(store, alert.incident_id).count(TimelineKind.ALERT_DEDUPLICATED) == 49


async def test_fifty_concurrent_reports_over_two_replicas_sharing_the_dedup_claims_make_one_incident(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    shared = InProcessDedupLock(clock)  # stands in for Redis
    replicas = [make_service(dedup=shared), make_service(dedup=shared)]

    results = await asyncio.gather(*(report(replicas[i % 2], firing()) for i in range(50)))

    assert [r[0].outcome for r in results].count(Outcome.NEW_INCIDENT) == 1
    assert len(store.incidents) == 1 and len(store.alerts) == 1
    [alert] = store.alerts.values()
    assert alert.duplicate_count == 49


async def test_alerts_of_one_group_join_one_incident_also_when_replicas_race(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    shared = InProcessDedupLock(clock)
    replicas = [make_service(dedup=shared), make_service(dedup=shared)]

    results = await asyncio.gather(
        *(report(replicas[i % 2], firing(labels={"env": "prod", "pod": f"p{i}"})) for i in range(10))
    )

    assert len(store.incidents) == 1
    [incident] = store.incidents.values()
    assert incident.alert_count == 10
    assert sorted(r[0].outcome for r in results).count(Outcome.ATTACHED) == 9
    assert incident.labels == {"env": "prod"}


async def test_alerts_with_other_group_labels_open_their_own_incidents(
    service: IncidentService, store: Any
) -> None:
    await report(service, firing(), firing(service="billing"), firing(alert_type="error_rate_increase"))
    assert len(store.incidents) == 3


async def test_group_by_is_configurable(make_service: Any, store: Any) -> None:
    service = make_service(group_by=("env",))
    await report(service, firing(service="a"), firing(service="b"))
    assert len(store.incidents) == 1


async def test_minimum_count_holds_the_first_alerts_then_opens_one_incident_with_all(
    make_service: Any, store: Any
) -> None:
    service = make_service(min_alerts=3)
    [one] = await report(service, firing(labels={"pod": "a"}))
    [two] = await report(service, firing(labels={"pod": "b"}))
    assert (one.outcome, two.outcome) == (Outcome.PENDING, Outcome.PENDING)
    assert not store.incidents

    [three] = await report(service, firing(labels={"pod": "c"}))

    assert three.outcome is Outcome.NEW_INCIDENT
    [incident] = store.incidents.values()
    assert incident.alert_count == 3
    assert {a.incident_id for a in store.alerts.values()} == {incident.incident_id}


async def test_waiting_alerts_outside_the_group_window_do_not_count(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    service = make_service(min_alerts=2, group_window=timedelta(minutes=5))
    await report(service, firing(labels={"pod": "a"}))
    clock.advance(timedelta(minutes=6))
    [late] = await report(service, firing(labels={"pod": "b"}))
    assert late.outcome is Outcome.PENDING


async def test_resolving_every_alert_auto_resolves_the_incident(service: IncidentService, store: Any) -> None:
    await report(service, firing(labels={"pod": "a"}), firing(labels={"pod": "b"}))
    [first] = await report(service, resolved(labels={"pod": "a"}))
    assert first.outcome is Outcome.RESOLVED
    incident = next(iter(store.incidents.values()))
    assert incident.state is IncidentState.TRIGGERED

    await report(service, resolved(labels={"pod": "b"}))

    incident = next(iter(store.incidents.values()))
    assert incident.state is IncidentState.RESOLVED
    entries = store.timeline(TENANT, incident.incident_id)
    assert [e.kind for e in entries].count(TimelineKind.ALERT_RESOLVED) == 2
    change = next(e for e in entries if e.kind is TimelineKind.STATE_CHANGED)
    assert change.actor == "system:auto-resolve" and change.to_value == "RESOLVED"


async def test_a_new_firing_within_the_reopen_window_reopens_beyond_it_opens_a_new_incident(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    service = make_service(reopen_window=timedelta(hours=1))
    [first] = await report(service, firing())
    await report(service, resolved())
    clock.advance(timedelta(minutes=30))

    [again] = await report(service, firing())

    assert again.outcome is Outcome.REOPENED and again.alert.incident_id == first.alert.incident_id
    incident = store.incidents[(TENANT, first.alert.incident_id)]
    assert incident.state is IncidentState.TRIGGERED and incident.reopen_count == 1
    assert TimelineKind.REOPENED in kinds(store, incident.incident_id)

    await report(service, resolved())
    clock.advance(timedelta(hours=2))
    [later] = await report(service, firing())
    assert later.outcome is Outcome.NEW_INCIDENT and later.alert.incident_id != first.alert.incident_id
    assert later.alert.alert_id == first.alert.alert_id  # the same alert, a new episode


async def test_an_incident_that_keeps_resolving_and_reopening_is_marked_flapping(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    service = make_service(flap_threshold=4, flap_window=timedelta(minutes=30))
    await report(service, firing())
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        await report(service, resolved())
        clock.advance(timedelta(minutes=1))
        await report(service, firing())

    [incident] = store.incidents.values()
    assert incident.flapping
    flaps = [e for e in store.timeline(TENANT, incident.incident_id) if e.kind is TimelineKind.FLAPPING]
    assert flaps[0].to_value == "true"


async def test_a_silence_suppresses_and_names_itself_but_the_alert_is_recorded(
    service: IncidentService, store: Any
) -> None:
    silence = await service.create_silence(
        tenant=TENANT,
        matchers=[LabelMatcher("service", MatchOperator.REGEX, "chat-.*")],
        start_time=None,
        end_time=service.clock.now() + timedelta(hours=1),
        comment="deploy",
        actor="alice",
    )

    [muted, other] = await report(service, firing(), firing(service="billing"))

    assert muted.outcome is Outcome.SUPPRESSED and muted.silence_ids == (silence.silence_id,)
    assert muted.alert.silenced_by == (silence.silence_id,)
    incident = store.incidents[(TENANT, muted.alert.incident_id)]
    assert incident.suppressed and incident.silence_id == silence.silence_id
    entry = next(e for e in store.timeline(TENANT, incident.incident_id) if e.kind is TimelineKind.SUPPRESSED)
    assert entry.attributes["silence_id"] == silence.silence_id
    assert other.outcome is Outcome.NEW_INCIDENT and not other.silence_ids
    assert service.funnel.suppressed == 1


async def test_an_expired_silence_no_longer_suppresses(service: IncidentService) -> None:
    silence = await service.create_silence(
        tenant=TENANT,
        matchers=[LabelMatcher("env", MatchOperator.EQUAL, "prod")],
        start_time=None,
        end_time=service.clock.now() + timedelta(hours=1),
        comment="maintenance",
        maintenance=True,
    )
    expired = await service.expire_silence(tenant=TENANT, silence_id=silence.silence_id)
    assert expired.end_time == service.clock.now()
    assert (await service.expire_silence(tenant=TENANT, silence_id=silence.silence_id)) == expired

    [result] = await report(service, firing())
    assert result.outcome is Outcome.NEW_INCIDENT


async def test_creating_a_silence_marks_matching_open_incidents_suppressed(
    service: IncidentService, store: Any
) -> None:
    [result] = await report(service, firing())
    silence = await service.create_silence(
        tenant=TENANT,
        matchers=[LabelMatcher("service", MatchOperator.EQUAL, "chat-api")],
        start_time=None,
        end_time=service.clock.now() + timedelta(hours=1),
        comment="known issue",
    )
    incident = store.incidents[(TENANT, result.alert.incident_id)]
    assert incident.suppressed and incident.silence_id == silence.silence_id


async def test_silences_are_listed_and_filtered_by_alert_labels(service: IncidentService) -> None:
    end = service.clock.now() + timedelta(hours=1)
    chat = await service.create_silence(
        tenant=TENANT,
        matchers=[LabelMatcher("service", MatchOperator.EQUAL, "chat")],
        start_time=None,
        end_time=end,
        comment="c",
    )
    await service.create_silence(
        tenant=TENANT,
        matchers=[LabelMatcher("service", MatchOperator.EQUAL, "billing")],
        start_time=None,
        end_time=end,
        comment="b",
    )
    page = await service.list_silences(tenant=TENANT, alert_labels={"service": "chat"})
    assert [s.silence_id for s in page.items] == [chat.silence_id]
    assert (await service.get_silence(tenant=TENANT, silence_id=chat.silence_id)) == chat
    with pytest.raises(NotFoundError):
        await service.get_silence(tenant=TENANT, silence_id="nope")


async def test_lifecycle_with_actor_reason_and_versions(service: IncidentService, store: Any) -> None:
    [result] = await report(service, firing())
    incident_id = result.alert.incident_id

    acked = await service.acknowledge(
        tenant=TENANT, incident_id=incident_id, actor="user:alice", reason="looking"
    )
    assert acked.state is IncidentState.ACKNOWLEDGED and acked.acknowledge_time is not None
    same = await service.acknowledge(tenant=TENANT, incident_id=incident_id)
    assert same.version == acked.version  # idempotent

    with pytest.raises(ConflictError) as stale:
        await service.resolve(tenant=TENANT, incident_id=incident_id, expected_version=acked.version - 1)
    assert stale.value.reason == "VERSION_MISMATCH"

    done = await service.resolve(tenant=TENANT, incident_id=incident_id, expected_version=acked.version)
    assert done.state is IncidentState.RESOLVED
    assert all(a.status is AlertStatus.RESOLVED for a in store.alerts.values())

    with pytest.raises(FailedPreconditionError) as invalid:
        await service.acknowledge(tenant=TENANT, incident_id=incident_id)
    assert invalid.value.reason == "INVALID_TRANSITION"

    reopened = await service.reopen(tenant=TENANT, incident_id=incident_id, reason="not fixed")
    assert reopened.state is IncidentState.TRIGGERED and reopened.reopen_count == 1
    await service.resolve(tenant=TENANT, incident_id=incident_id)
    closed = await service.close(tenant=TENANT, incident_id=incident_id, actor="user:bob")
    assert closed.state is IncidentState.CLOSED
    with pytest.raises(FailedPreconditionError):
        await service.reopen(tenant=TENANT, incident_id=incident_id)

    changes = [e for e in store.timeline(TENANT, incident_id) if e.kind is TimelineKind.STATE_CHANGED]
    assert [(e.from_value, e.to_value) for e in changes] == [
        ("TRIGGERED", "ACKNOWLEDGED"),
        ("ACKNOWLEDGED", "RESOLVED"),
        ("RESOLVED", "TRIGGERED"),
        ("TRIGGERED", "RESOLVED"),
        ("RESOLVED", "CLOSED"),
    ]
    assert changes[0].actor == "user:alice" and changes[0].reason == "looking"
    assert changes[1].actor == f"api-key:{TENANT}"


async def test_a_closed_incident_is_final_and_a_new_firing_opens_a_new_one(
    service: IncidentService, store: Any
) -> None:
    [first] = await report(service, firing())
    await service.resolve(tenant=TENANT, incident_id=first.alert.incident_id)
    await service.close(tenant=TENANT, incident_id=first.alert.incident_id)
    [again] = await report(service, firing())
    assert again.outcome is Outcome.NEW_INCIDENT and again.alert.incident_id != first.alert.incident_id


async def test_unknown_incident_is_not_found(service: IncidentService) -> None:
    with pytest.raises(NotFoundError) as missing:
        await service.acknowledge(tenant=TENANT, incident_id="inc_missing")
    assert missing.value.reason == "INCIDENT_NOT_FOUND"
    with pytest.raises(InvalidArgumentError):
        await service.get_incident(tenant=TENANT, incident_id="")


async def test_notes_assignees_and_severity_changes_are_recorded(
    service: IncidentService, store: Any
) -> None:
    [result] = await report(service, firing())
    incident_id = result.alert.incident_id

    note = await service.add_note(tenant=TENANT, incident_id=incident_id, text="rolled back", request_id="r1")
    again = await service.add_note(
        tenant=TENANT, incident_id=incident_id, text="rolled back", request_id="r1"
    )
    assert note.kind is TimelineKind.NOTE_ADDED and note.message == "rolled back"
    assert again.entry_id == note.entry_id
    assert kinds(store, incident_id).count(TimelineKind.NOTE_ADDED) == 1

    assigned = await service.assign(tenant=TENANT, incident_id=incident_id, assignees=["alice", "bob"])
    assert assigned.assignees == ("alice", "bob")
    unchanged = await service.assign(tenant=TENANT, incident_id=incident_id, assignees=["bob", "alice"])
    assert unchanged.version == assigned.version

    changed = await service.change_severity(
        tenant=TENANT, incident_id=incident_id, severity=int(Severity.CRITICAL)
    )
    assert (changed.severity, changed.priority) == (Severity.CRITICAL, Priority.P0)
    entry = next(e for e in store.timeline(TENANT, incident_id) if e.kind is TimelineKind.SEVERITY_CHANGED)
    assert (entry.from_value, entry.to_value) == ("HIGH", "CRITICAL")
    assert entry.attributes == {"from_priority": "P1", "to_priority": "P0"}

    for call, field in [
        (service.add_note(tenant=TENANT, incident_id=incident_id, text=""), "text"),
        (service.add_note(tenant=TENANT, incident_id=incident_id, text="x" * 10_001), "text"),
        (service.assign(tenant=TENANT, incident_id=incident_id, assignees=[""]), "assignees[0]"),
        (
            service.assign(tenant=TENANT, incident_id=incident_id, assignees=[str(i) for i in range(21)]),
            "assignees",
        ),
        (service.change_severity(tenant=TENANT, incident_id=incident_id, severity=0), "severity"),
        (service.change_severity(tenant=TENANT, incident_id=incident_id, severity=77), "severity"),
    ]:
        with pytest.raises(InvalidArgumentError) as bad:
            await call
        assert bad.value.field == field


async def test_edits_of_a_closed_incident_are_refused(service: IncidentService) -> None:
    [result] = await report(service, firing())
    incident_id = result.alert.incident_id
    await service.resolve(tenant=TENANT, incident_id=incident_id)
    await service.close(tenant=TENANT, incident_id=incident_id)
    with pytest.raises(FailedPreconditionError) as refused:
        await service.assign(tenant=TENANT, incident_id=incident_id, assignees=["alice"])
    assert refused.value.reason == "INCIDENT_CLOSED"


async def test_the_sweep_expires_unseen_alerts_and_auto_resolves_their_incident(
    make_service: Any, store: Any, clock: ManualClock
) -> None:
    service = make_service(alert_ttl=timedelta(minutes=10))
    await report(service, firing(labels={"pod": "a"}), firing(labels={"pod": "b"}))
    clock.advance(timedelta(minutes=6))
    await report(service, firing(labels={"pod": "b"}))
    clock.advance(timedelta(minutes=5))

    assert await service.sweep() == 0  # pod b was seen 5 minutes ago
    [incident] = store.incidents.values()
    assert incident.state is IncidentState.TRIGGERED

    clock.advance(timedelta(minutes=6))
    assert await service.sweep() == 1
    [incident] = store.incidents.values()
    assert incident.state is IncidentState.RESOLVED
    assert all(a.status is AlertStatus.RESOLVED for a in store.alerts.values())


async def test_alertmanager_style_ends_at_expires_the_alert(
    service: IncidentService, store: Any, clock: ManualClock
) -> None:
    await report(service, firing(end_time=clock.now() + timedelta(minutes=5)))
    clock.advance(timedelta(minutes=5))
    assert await service.sweep() == 1


async def test_a_report_with_some_bad_alerts_keeps_the_good_ones(service: IncidentService) -> None:
    outcome = await service.report_alerts(tenant=TENANT, alerts=[firing(), AlertInput(), firing(severity=42)])
    assert [r.index for r in outcome.results] == [0]
    assert [(e.index, e.field) for e in outcome.errors] == [(1, "labels"), (2, "severity")]


async def test_a_report_of_only_bad_alerts_is_invalid_naming_index_and_field(
    service: IncidentService,
) -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        await service.report_alerts(tenant=TENANT, alerts=[firing(severity=42)])
    assert bad.value.field == "alerts[0].severity"
    with pytest.raises(InvalidArgumentError) as empty:
        await service.report_alerts(tenant=TENANT, alerts=[])
    assert empty.value.field == "alerts"
    with pytest.raises(InvalidArgumentError) as big:
        await service.report_alerts(tenant=TENANT, alerts=[firing()] * 1001)
    assert big.value.field == "alerts"


async def test_report_anomaly_maps_and_deduplicates_by_anomaly_id(
    service: IncidentService, store: Any
) -> None:
    anomaly = AnomalyInput(
        anomaly_id="an-7",
        series_name="error_rate",
        series_labels={"service": "chat-api", "model": "gpt-4o"},
        has_series=True,
        start_time=service.clock.now(),
        score=0.9,
        severity=int(Severity.CRITICAL),
        anomaly_type=int(AnomalyType.ERROR_RATE_INCREASE),
    )
    first = await service.report_anomaly(tenant=TENANT, anomaly=anomaly)
    again = await service.report_anomaly(tenant=TENANT, anomaly=anomaly)

    assert first.outcome is Outcome.NEW_INCIDENT and again.outcome is Outcome.DEDUPLICATED
    incident = store.incidents[(TENANT, first.alert.incident_id)]
    assert (incident.incident_type, incident.priority, incident.service) == (
        "error_rate_increase",
        Priority.P0,
        "chat-api",
    )
    assert first.alert.labels["metric"] == "error_rate"

    with pytest.raises(InvalidArgumentError) as bad:
        await service.report_anomaly(tenant=TENANT, anomaly=AnomalyInput(has_series=True, series_name="x"))
    assert bad.value.field == "anomaly.start_time"


async def test_list_incidents_filters_and_pages(service: IncidentService) -> None:
    await report(service, firing(), firing(service="billing", severity=int(Severity.LOW)))
    page = await service.list_incidents(tenant=TENANT, query=IncidentQuery(service="billing"))
    assert [i.service for i in page.items] == ["billing"]
    first = await service.list_incidents(tenant=TENANT, query=IncidentQuery(page_size=1))
    assert len(first.items) == 1 and first.next_page_token
    with pytest.raises(InvalidArgumentError) as bad:
        await service.list_incidents(
            tenant=TENANT, query=IncidentQuery(matchers=(LabelMatcher("env", MatchOperator.REGEX, "("),))
        )
    assert bad.value.field == "matchers[0].value"


async def test_watch_streams_matching_changes_and_heartbeats(service: IncidentService) -> None:
    stream = service.watch(
        tenant=TENANT, filter=WatchFilter(states=frozenset({IncidentState.ACKNOWLEDGED})), heartbeat_s=0.05
    )
    heartbeat = await anext(stream)
    assert heartbeat.type is ChangeType.HEARTBEAT and heartbeat.incident is None

    [result] = await report(service, firing())  # TRIGGERED: filtered out
    await service.acknowledge(tenant=TENANT, incident_id=result.alert.incident_id, actor="alice")

    event = await anext(stream)
    while event.type is ChangeType.HEARTBEAT:
        event = await anext(stream)
    assert event.type is ChangeType.UPDATED
    assert event.incident is not None and event.incident.state is IncidentState.ACKNOWLEDGED
    assert [e.kind for e in event.entries] == [TimelineKind.STATE_CHANGED]
    await stream.aclose()

    resumed = service.watch(
        tenant=TENANT, filter=WatchFilter(), resume_cursor=heartbeat.cursor, heartbeat_s=0.05
    )
    replayed = await anext(resumed)
    assert replayed.type is ChangeType.CREATED
    await resumed.aclose()


async def test_stats_validate_their_range(service: IncidentService) -> None:
    await report(service, firing(), firing())
    stats = await service.get_stats(tenant=TENANT, start_time=None, end_time=None)
    assert stats.alerts_received == 2 and stats.alerts_deduplicated == 1
    now = service.clock.now()
    with pytest.raises(InvalidArgumentError):
        await service.get_stats(tenant=TENANT, start_time=now, end_time=now - timedelta(days=1))
    with pytest.raises(InvalidArgumentError):
        await service.get_stats(tenant=TENANT, start_time=now - timedelta(days=91), end_time=now)


async def test_tenants_are_isolated(service: IncidentService, store: Any) -> None:
    await service.report_alerts(tenant="a", alerts=[firing()])
    [other] = (await service.report_alerts(tenant="b", alerts=[firing()])).results
    assert other.outcome is Outcome.NEW_INCIDENT
    assert len(store.incidents) == 2
