"""Concurrent writers: optimistic versions, one open incident per group key, idempotent retries."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from .conftest import Storage, error_info
from .incident_fixtures import (
    ACKNOWLEDGED,
    CLOSED,
    MINUTE,
    RESOLVED,
    T0,
    TRIGGERED,
    Records,
    entry,
    fails_with,
    failure,
    incident,
)

ABORTED = grpc.StatusCode.ABORTED
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


@pytest.fixture
def records(storage: Storage) -> Records:
    return Records(storage.stub)


async def _outcome(call: object) -> object:
    try:
        return await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error


async def test_two_updates_from_the_same_version_one_wins_the_other_is_aborted(records: Records) -> None:
    await records.create(incident("i1"))
    ack = incident("i1", state=ACKNOWLEDGED, assignees=["alice"])
    resolve = incident("i1", state=RESOLVED)
    outcomes = await asyncio.gather(
        _outcome(records.update(ack, 1, entry("ack", at=T0 + MINUTE))),
        _outcome(records.update(resolve, 1, entry("resolve", at=T0 + MINUTE))),
    )
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    [winner] = [o for o in outcomes if not isinstance(o, grpc.aio.AioRpcError)]
    [loser] = errors
    assert loser.code() is ABORTED
    assert error_info(loser).reason == "VERSION_MISMATCH"
    assert winner.incident.version == 2  # type: ignore[attr-defined]
    stored = await records.get("i1")
    assert stored == winner.incident  # type: ignore[attr-defined]
    # The loser's timeline entry was rolled back with it.
    assert len(await records.timeline("i1")) == 1


async def test_twenty_concurrent_creates_for_one_group_key_open_one_incident(records: Records) -> None:
    outcomes = await asyncio.gather(
        *(_outcome(records.create(incident(f"i{n}", group_key="g"), entry(f"e{n}"))) for n in range(20))
    )
    created = [o for o in outcomes if not isinstance(o, grpc.aio.AioRpcError)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == 1
    assert len(refused) == 19
    winner = created[0].incident.incident_id  # type: ignore[attr-defined]
    for error in refused:
        assert error.code() is ALREADY_EXISTS
        info = error_info(error)
        assert info.reason == "OPEN_INCIDENT_EXISTS"
        assert dict(info.metadata)["incident_id"] == winner
    assert await records.incidents() == [winner]
    # The losers wrote no timeline entries either.
    assert [e.entry_id for e in await records.timeline(winner)] == [f"e{winner[1:]}"]


async def test_a_retried_create_is_incident_exists(records: Records) -> None:
    await records.create(incident("i1"))
    error = await fails_with(records.create(incident("i1")), ALREADY_EXISTS, "INCIDENT_EXISTS")
    assert dict(error_info(error).metadata)["incident_id"] == "i1"


async def test_a_resolved_group_key_opens_again_and_reopening_the_old_one_conflicts(records: Records) -> None:
    await records.create(incident("old", group_key="g"))
    await records.update(incident("old", group_key="g", state=RESOLVED), 1)
    await records.create(incident("new", group_key="g"))
    error = await fails_with(
        records.update(incident("old", group_key="g", state=TRIGGERED), 2),
        ALREADY_EXISTS,
        "OPEN_INCIDENT_EXISTS",
    )
    assert dict(error_info(error).metadata)["incident_id"] == "new"
    assert (await records.get("old")).version == 2  # unchanged
    await records.update(incident("new", group_key="g", state=RESOLVED), 1)
    await records.update(incident("new", group_key="g", state=CLOSED), 2)
    reopened = await records.update(incident("old", group_key="g", state=ACKNOWLEDGED), 2)
    assert reopened.incident.version == 3


async def test_a_retried_update_with_its_request_id_returns_the_stored_incident(records: Records) -> None:
    await records.create(incident("i1"))
    change = incident("i1", state=ACKNOWLEDGED)
    first = await records.update(change, 1, entry("e1"), request_id="req-1")
    retry = await records.update(change, 1, entry("e1"), request_id="req-1")
    assert retry.incident == first.incident
    assert retry.incident.version == 2
    assert len(await records.timeline("i1")) == 1
    # Another request from the same stale version is still refused.
    await fails_with(records.update(change, 1, request_id="req-2"), ABORTED, "VERSION_MISMATCH")
    error = await failure(records.update(change, 1))
    assert error.code() is ABORTED


async def test_concurrent_updates_in_a_retry_loop_lose_no_change(records: Records) -> None:
    await records.create(incident("i1", assignees=[]))

    async def add_assignee(name: str) -> None:
        while True:
            current = await records.get("i1")
            current.assignees.append(name)
            outcome = await _outcome(records.update(current, current.version, entry(f"assign-{name}")))
            if not isinstance(outcome, grpc.aio.AioRpcError):
                return
            assert outcome.code() is ABORTED

    names = [f"user{n}" for n in range(10)]
    await asyncio.gather(*(add_assignee(name) for name in names))
    final = await records.get("i1")
    assert sorted(final.assignees) == names
    assert final.version == 11
    assert len(await records.timeline("i1")) == 10
