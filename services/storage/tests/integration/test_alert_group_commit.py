"""ApplyAlertChanges (group commit of alert writes) and the batched reads of first reports."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb

from .conftest import Storage
from .incident_fixtures import RESOLVED, T0, Records, alert, entry, fails_with, incident

APPLIED = pb.ALERT_CHANGE_STATUS_APPLIED
MISMATCH = pb.ALERT_CHANGE_STATUS_VERSION_MISMATCH
NOT_FOUND = pb.ALERT_CHANGE_STATUS_ALERT_NOT_FOUND
OPEN_EXISTS = pb.ALERT_CHANGE_STATUS_OPEN_INCIDENT_EXISTS
DEDUPLICATED = incident_pb2.TIMELINE_ENTRY_KIND_ALERT_DEDUPLICATED


@pytest.fixture
def records(storage: Storage) -> Records:
    return Records(storage.stub)


def change(
    message: incident_pb2.Alert, expected_version: int = 0, *entries: Any, **fields: Any
) -> pb.AlertChange:
    return pb.AlertChange(
        alert=message, expected_version=expected_version, timeline_entries=entries, **fields
    )


def apply(records: Records, *changes: pb.AlertChange) -> Any:
    return records.call("ApplyAlertChanges", pb.ApplyAlertChangesRequest(changes=changes))


async def stored_alert(records: Records, alert_id: str) -> incident_pb2.Alert:
    response = await records.call("GetAlert", pb.GetAlertRequest(alert_id=alert_id))
    return response.alert  # type: ignore[no-any-return]


async def test_one_call_applies_each_change_on_its_own_and_a_stale_version_fails_only_its_change(
    records: Records,
) -> None:
    await records.create(incident("i1"))
    await records.upsert(alert("a1", incident_id="i1"))
    await records.upsert(alert("a2", incident_id="i1"))
    await records.upsert(alert("a2", incident_id="i1"), expected_version=1)  # a2 moves on to version 2

    response = await apply(
        records,
        change(
            alert("a1", incident_id="i1", duplicate_count=3),
            1,
            *(entry(f"dup-a1-{n}", "i1", kind=DEDUPLICATED) for n in (1, 2, 3)),
        ),
        change(
            alert("a2", incident_id="i1", duplicate_count=1), 1, entry("dup-a2-1", "i1", kind=DEDUPLICATED)
        ),
        change(alert("a3", incident_id="i1", duplicate_count=9), 4),
        change(alert("a4")),
    )

    statuses = [(r.status, r.version, r.created, r.timeline_appended) for r in response.results]
    assert statuses == [
        (APPLIED, 2, False, 3),
        (MISMATCH, 2, False, 0),
        (NOT_FOUND, 0, False, 0),
        (APPLIED, 1, True, 0),
    ]
    assert (await stored_alert(records, "a1")).duplicate_count == 3
    assert (await stored_alert(records, "a2")).duplicate_count == 0
    kept = [e.entry_id for e in await records.timeline("i1")]
    assert kept == ["dup-a1-1", "dup-a1-2", "dup-a1-3"]  # the failed change's entry was not written


async def test_entries_of_a_missing_incident_are_skipped_not_fatal_and_retries_append_nothing(
    records: Records,
) -> None:
    first = await apply(records, change(alert("a1"), 0, entry("e1", "nowhere"), entry("e2", "nowhere")))
    assert first.results[0].status == APPLIED and first.results[0].timeline_appended == 0

    await records.create(incident("i1"))
    again = [change(alert("a1", incident_id="i1"), 1, entry("e3", "i1"))]
    assert (await apply(records, *again)).results[0].timeline_appended == 1
    retried = await apply(records, change(alert("a1", incident_id="i1"), 2, entry("e3", "i1")))
    assert retried.results[0].timeline_appended == 0  # idempotent by entry_id


async def test_a_change_may_open_its_incident_and_a_second_open_one_for_the_group_is_refused(
    records: Records,
) -> None:
    response = await apply(
        records,
        change(
            alert("a1", incident_id="i1"), 0, entry("r1", "i1"), new_incident=incident("i1", group_key="g")
        ),
        change(
            alert("a2", incident_id="i2"), 0, entry("r2", "i2"), new_incident=incident("i2", group_key="g")
        ),
    )

    assert [r.status for r in response.results] == [APPLIED, OPEN_EXISTS]
    assert response.results[1].incident_id == "i1"
    assert (await records.get("i1")).version == 1
    assert await records.incidents() == ["i1"]
    assert await records.alerts() == ["a1"]  # the refused change wrote nothing
    # A retry of a committed change keeps the stored incident.
    retried = await apply(
        records,
        change(
            alert("a1", incident_id="i1"), 1, entry("r1", "i1"), new_incident=incident("i1", group_key="g")
        ),
    )
    assert retried.results[0].status == APPLIED and retried.results[0].timeline_appended == 0


async def test_one_alert_twice_in_a_call_is_invalid(records: Records) -> None:
    error = await fails_with(
        apply(records, change(alert("a1")), change(alert("a1"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert "changes[1].alert.alert_id" in (error.details() or "")


async def test_concurrent_calls_on_the_same_alerts_never_lose_a_repeat(records: Records) -> None:
    await records.create(incident("i1"))
    await records.upsert(alert("a1", incident_id="i1"))
    await records.upsert(alert("b1", incident_id="i1"))
    counts = {"a1": 0, "b1": 0}
    versions = {"a1": 1, "b1": 1}

    async def writer(order: list[str]) -> None:
        for _ in range(10):
            todo = list(order)
            while todo:  # like incident-manager: a lost version check re-reads and retries that alert
                changes = [
                    change(alert(a, incident_id="i1", duplicate_count=counts[a] + 1), versions[a])
                    for a in todo
                ]
                response = await apply(records, *changes)
                for a, r in zip(list(todo), response.results, strict=True):
                    if r.status == APPLIED:
                        counts[a] += 1
                        todo.remove(a)
                    versions[a] = r.version

    await asyncio.gather(writer(["a1", "b1"]), writer(["b1", "a1"]))
    assert (await stored_alert(records, "a1")).duplicate_count == counts["a1"] == 20
    assert (await stored_alert(records, "b1")).duplicate_count == counts["b1"] == 20


async def test_batched_reads_return_what_exists_and_leave_out_the_rest(records: Records) -> None:
    await records.upsert(alert("a1"))
    await records.create(incident("old", group_key="g", state=RESOLVED, created=T0))
    await records.create(incident("older", group_key="g", state=RESOLVED, created=T0 - 10))
    await records.create(incident("now", group_key="g", created=T0 + 10))

    alerts = await records.call("BatchGetAlerts", pb.BatchGetAlertsRequest(alert_ids=["a1", "nope"]))
    assert [(a.alert_id, a.version) for a in alerts.alerts] == [("a1", 1)]
    groups = await records.call(
        "BatchGetGroupIncidents", pb.BatchGetGroupIncidentsRequest(group_keys=["none", "g"])
    )
    assert [g.group_key for g in groups.groups] == ["none", "g"]
    assert not groups.groups[0].HasField("open_incident") and not groups.groups[0].HasField(
        "last_resolved_incident"
    )
    assert groups.groups[1].open_incident.incident_id == "now"
    assert groups.groups[1].last_resolved_incident.incident_id == "old"
    missing = await records.call("GetAlert", pb.GetAlertRequest(alert_id="nope", allow_missing=True))
    assert not missing.HasField("alert")
