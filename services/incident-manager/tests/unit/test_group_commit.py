"""Repeats and first firings go through the group commit: one storage call for many reports."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from sentinel.incident_manager.domain.model import Outcome, TimelineKind
from sentinel.incident_manager.service import IncidentService
from sentinel.runtime.errors import UnavailableError

from .test_service import TENANT, firing, kinds, report


async def test_concurrent_repeats_of_one_alert_coalesce_into_one_write_counting_each(
    service: IncidentService, store: Any
) -> None:
    [first] = await report(service, firing())
    store.calls.clear()

    results = await asyncio.gather(*(report(service, firing()) for _ in range(30)))

    assert all(r[0].outcome is Outcome.DEDUPLICATED for r in results)
    assert store.calls == {"apply_alert_changes": 1}  # no read, one write for all thirty
    [alert] = store.alerts.values()
    assert alert.duplicate_count == 30 and alert.version == first.alert.version + 1
    assert kinds(store, first.alert.incident_id).count(TimelineKind.ALERT_DEDUPLICATED) == 30


async def test_repeats_of_many_alerts_in_one_report_share_one_write(
    service: IncidentService, store: Any
) -> None:
    alerts = [firing(labels={"env": "prod", "pod": f"p{i}"}) for i in range(5)]
    await report(service, *alerts)
    store.calls.clear()

    results = await report(service, *alerts, *alerts)

    assert [r.outcome for r in results] == [Outcome.DEDUPLICATED] * 10
    assert store.calls == {"apply_alert_changes": 1}
    assert sorted(a.duplicate_count for a in store.alerts.values()) == [2] * 5


async def test_a_repeat_that_lost_a_version_race_rereads_and_still_counts_once(
    service: IncidentService, store: Any
) -> None:
    [first] = await report(service, firing())
    # Another replica wrote the alert meanwhile: this replica's cached version is stale.
    key = (TENANT, first.alert.alert_id)
    store.alerts[key] = replace(store.alerts[key], duplicate_count=5, version=first.alert.version + 1)

    [again] = await report(service, firing())

    assert again.outcome is Outcome.DEDUPLICATED
    assert store.alerts[key].duplicate_count == 6
    assert len(store.incidents) == 1


async def test_a_report_is_not_acknowledged_when_its_group_commit_fails(
    service: IncidentService, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first] = await report(service, firing())

    async def down(**_: Any) -> Any:
        raise UnavailableError("storage is unavailable; retry")

    monkeypatch.setattr(store, "apply_alert_changes", down)
    with pytest.raises(UnavailableError):
        await report(service, firing())
    monkeypatch.undo()

    # Nothing was counted; the next report re-reads (the cached version was dropped) and counts.
    assert store.alerts[(TENANT, first.alert.alert_id)].duplicate_count == 0
    [again] = await report(service, firing())
    assert again.outcome is Outcome.DEDUPLICATED and again.alert.duplicate_count == 1


async def test_new_incidents_and_their_alerts_are_written_together(
    service: IncidentService, store: Any
) -> None:
    alerts = [firing(service=f"svc-{i}") for i in range(4)]

    results = await report(service, *alerts)

    assert [r.outcome for r in results] == [Outcome.NEW_INCIDENT] * 4
    assert store.calls.get("create_incident", 0) == 0 and store.calls["apply_alert_changes"] == 1
    assert len(store.incidents) == 4
    for r in results:
        assert kinds(store, r.alert.incident_id) == [TimelineKind.ALERT_RECEIVED]


async def test_the_sweep_reads_firing_alerts_in_bulk_and_checks_only_incidents_that_may_resolve(
    make_service: Any, store: Any, clock: Any
) -> None:
    service = make_service(alert_ttl=timedelta(minutes=10))
    await report(service, *(firing(service=f"svc-{i}") for i in range(20)))
    clock.advance(timedelta(minutes=11))
    await report(service, *(firing(service=f"svc-{i}") for i in range(1, 20)))  # svc-0 fell silent
    store.calls.clear()

    assert await service.sweep() == 1

    assert store.calls["list_alerts"] == 2  # one bulk page, then svc-0's incident checked on its own
    assert sorted(i.state.name for i in store.incidents.values()).count("RESOLVED") == 1
