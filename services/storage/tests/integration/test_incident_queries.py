"""ListIncidents filters and pagination; GetIncidentStats against a hand-computed fixture."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb

from .conftest import Storage, error_info, timestamp
from .incident_fixtures import (
    ACKNOWLEDGED,
    HOUR,
    MINUTE,
    RESOLVED,
    T0,
    Records,
    alert,
    entry,
    failure,
    incident,
    state_change,
)

CRITICAL, HIGH, LOW = common_pb2.SEVERITY_CRITICAL, common_pb2.SEVERITY_HIGH, common_pb2.SEVERITY_LOW
EQ, NE, RE, NRE = (
    common_pb2.MATCH_OPERATOR_EQUAL,
    common_pb2.MATCH_OPERATOR_NOT_EQUAL,
    common_pb2.MATCH_OPERATOR_REGEX,
    common_pb2.MATCH_OPERATOR_NOT_REGEX,
)


@pytest.fixture
def records(storage: Storage) -> Records:
    return Records(storage.stub)


def window(start: int, end: int) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=timestamp(start), end_time=timestamp(end))


def label(name: str, operator: int, value: str) -> common_pb2.LabelMatcher:
    return common_pb2.LabelMatcher(name=name, operator=operator, value=value)  # type: ignore[arg-type]


async def test_pagination_returns_every_incident_once_in_order(records: Records) -> None:
    # 150 incidents, in runs of 3 sharing a create_time, written concurrently.
    ids = [f"i{n:03d}" for n in range(150)]
    await asyncio.gather(
        *(records.create(incident(i, created=T0 + (n // 3) * MINUTE)) for n, i in enumerate(ids))
    )
    expected = sorted(ids, key=lambda i: (int(i[1:]) // 3, i), reverse=True)  # newest first, then id
    for page_size in (1, 7, 100, 1000):
        assert await records.incidents(page_size=page_size) == expected
    filtered = await records.incidents(page_size=4, time_range=window(T0, T0 + 10 * MINUTE))
    assert filtered == [i for i in expected if int(i[1:]) // 3 < 10]

    # A token is bound to its query.
    page = await records.call("ListIncidents", pb.ListIncidentsRequest(page_size=5))
    other = pb.ListIncidentsRequest(page_size=5, service="chat", page_token=page.next_page_token)
    error = await failure(records.call("ListIncidents", other))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error_info(error).metadata)["field"] == "page_token"


async def test_alert_pagination_returns_every_alert_once(records: Records) -> None:
    ids = [f"a{n:03d}" for n in range(60)]
    await asyncio.gather(*(records.upsert(alert(a, seen=T0 + (n // 4) * MINUTE)) for n, a in enumerate(ids)))
    listed = await records.alerts(page_size=7)
    assert sorted(listed) == ids
    assert listed == sorted(ids, key=lambda a: (int(a[1:]) // 4, a), reverse=True)


async def test_incident_filters(records: Records) -> None:
    await records.create(
        incident(
            "i1",
            severity=CRITICAL,
            priority=incident_pb2.PRIORITY_P0,
            labels={"env": "prod", "team": "core"},
            title="GPU memory 100%",
            assignees=["alice"],
            next_escalation_time=timestamp(T0 + 2 * HOUR),
        )
    )
    await records.create(
        incident(
            "i2",
            state=ACKNOWLEDGED,
            created=T0 + HOUR,
            service="search",
            labels={"env": "staging"},
            description="Token usage SPIKE on the_search path",
            next_escalation_time=timestamp(T0 + HOUR),
        )
    )
    await records.create(
        incident(
            "i3",
            state=RESOLVED,
            created=T0 + 2 * HOUR,
            severity=LOW,
            priority=incident_pb2.PRIORITY_P3,
            model="claude",
            group_key="g3",
            assignees=["bob", "alice"],
        )
    )

    assert await records.incidents() == ["i3", "i2", "i1"]
    assert await records.incidents(states=[incident_pb2.INCIDENT_STATE_TRIGGERED, ACKNOWLEDGED]) == [
        "i2",
        "i1",
    ]
    assert await records.incidents(severities=[CRITICAL, LOW]) == ["i3", "i1"]
    assert await records.incidents(priorities=[incident_pb2.PRIORITY_P1]) == ["i2"]
    assert await records.incidents(service="search") == ["i2"]
    assert await records.incidents(model="claude") == ["i3"]
    assert await records.incidents(group_key="g3") == ["i3"]
    assert await records.incidents(assignee="alice") == ["i3", "i1"]
    assert await records.incidents(matchers=[label("env", EQ, "prod")]) == ["i3", "i1"]
    assert await records.incidents(matchers=[label("env", NE, "prod")]) == ["i2"]
    assert await records.incidents(matchers=[label("env", RE, "prod|staging"), label("team", EQ, "")]) == [
        "i3",
        "i2",
    ]
    assert await records.incidents(matchers=[label("env", NRE, "pr.*")]) == ["i2"]
    assert await records.incidents(time_range=window(T0 + 1, T0 + 2 * HOUR)) == ["i2"]
    assert await records.incidents(query="spike") == ["i2"]  # case-insensitive, over the description
    assert await records.incidents(query="100%") == ["i1"]  # % and _ are literal
    assert await records.incidents(query="the_search") == ["i2"]
    assert await records.incidents(query="the%search") == []
    assert await records.incidents(query="INCIDENT i") == ["i3", "i2"]  # titles
    due = await records.incidents(escalation_due_before=timestamp(T0 + 3 * HOUR), page_size=1)
    assert due == ["i2", "i1"]  # earliest escalation first; i3 has none
    assert await records.incidents(escalation_due_before=timestamp(T0 + HOUR)) == ["i2"]  # inclusive


async def test_stats_match_the_hand_computed_figures(records: Records) -> None:
    """Range [T0, T0 + 1 day). Alerts first seen in it with their repeats; first ack/resolve."""
    await records.create(incident("inc1", created=T0 + HOUR, alert_fingerprints=["f1", "f2"]))
    await records.create(incident("inc2", created=T0 + 2 * HOUR, alert_fingerprints=["f6"]))
    await records.create(incident("inc3", created=T0 + 4 * HOUR, service="search", alert_fingerprints=["f5"]))
    await records.create(incident("inc4", created=T0 - 2 * HOUR))
    await records.create(incident("inc5", created=T0 + 5 * HOUR))

    # Alerts: received, deduplicated, grouped (joined an incident another alert opened), suppressed.
    await records.upsert(alert("a1", seen=T0 + HOUR, fingerprint="f1", duplicate_count=4, incident_id="inc1"))
    await records.upsert(alert("a2", seen=T0 + 2 * HOUR, fingerprint="f2", incident_id="inc1"))
    await records.upsert(
        alert("a3", seen=T0 + 3 * HOUR, fingerprint="f3", duplicate_count=2, silenced_by=["s"])
    )
    await records.upsert(
        alert("a4", seen=T0 - HOUR, fingerprint="f4", duplicate_count=10)
    )  # before the range
    await records.upsert(
        alert(
            "a5",
            seen=T0 + 4 * HOUR,
            fingerprint="f5",
            duplicate_count=1,
            incident_id="inc3",
            service="search",
        )
    )

    # inc1: acknowledged after 10 min, resolved after 70 min.
    await records.append(
        state_change("inc1-ack", "inc1", T0 + HOUR + 10 * MINUTE, ACKNOWLEDGED),
        state_change("inc1-res", "inc1", T0 + HOUR + 70 * MINUTE, RESOLVED),
        entry(
            "inc1-n1",
            "inc1",
            at=T0 + HOUR + MINUTE,
            kind=incident_pb2.TIMELINE_ENTRY_KIND_NOTIFIED,
            attributes={"outcome": "sent"},
        ),
        entry(
            "inc1-n2",
            "inc1",
            at=T0 + HOUR + 2 * MINUTE,
            kind=incident_pb2.TIMELINE_ENTRY_KIND_NOTIFIED,
            attributes={"outcome": "failed"},
        ),
    )
    # inc2: first ack after 20 min (acknowledge_time holds the later one), resolved after 30, reopened.
    await records.update(
        incident(
            "inc2",
            created=T0 + 2 * HOUR,
            state=ACKNOWLEDGED,
            alert_fingerprints=["f6"],
            acknowledge_time=timestamp(T0 + 2 * HOUR + 50 * MINUTE),
            update_time=timestamp(T0 + 2 * HOUR + 50 * MINUTE),
        ),
        1,
        state_change("inc2-ack", "inc2", T0 + 2 * HOUR + 20 * MINUTE, ACKNOWLEDGED),
        state_change("inc2-res", "inc2", T0 + 2 * HOUR + 30 * MINUTE, RESOLVED),
        entry(
            "inc2-reopen",
            "inc2",
            at=T0 + 2 * HOUR + 40 * MINUTE,
            kind=incident_pb2.TIMELINE_ENTRY_KIND_REOPENED,
        ),
        state_change("inc2-ack2", "inc2", T0 + 2 * HOUR + 50 * MINUTE, ACKNOWLEDGED),
        entry(
            "inc2-n",
            "inc2",
            at=T0 + 2 * HOUR + MINUTE,
            kind=incident_pb2.TIMELINE_ENTRY_KIND_NOTIFIED,
            attributes={"outcome": "sent"},
        ),
    )
    # inc3 (service "search"): acknowledged after 40 min, known only from acknowledge_time.
    await records.update(
        incident(
            "inc3",
            created=T0 + 4 * HOUR,
            service="search",
            state=ACKNOWLEDGED,
            alert_fingerprints=["f5"],
            acknowledge_time=timestamp(T0 + 4 * HOUR + 40 * MINUTE),
            update_time=timestamp(T0 + 4 * HOUR + 40 * MINUTE),
        ),
        1,
    )
    # inc4: created and acknowledged before the range, resolved in it after 3 hours.
    await records.update(
        incident(
            "inc4",
            created=T0 - 2 * HOUR,
            state=RESOLVED,
            acknowledge_time=timestamp(T0 - HOUR),
            resolve_time=timestamp(T0 + HOUR),
            update_time=timestamp(T0 + HOUR),
        ),
        1,
        state_change("inc4-ack", "inc4", T0 - HOUR, ACKNOWLEDGED),
        entry(
            "inc4-n",
            "inc4",
            at=T0 - HOUR,
            kind=incident_pb2.TIMELINE_ENTRY_KIND_NOTIFIED,
            attributes={"outcome": "sent"},
        ),
    )

    stats = (
        await records.call(
            "GetIncidentStats", pb.GetIncidentStatsRequest(time_range=window(T0, T0 + 24 * HOUR))
        )
    ).stats
    assert stats.time_range == window(T0, T0 + 24 * HOUR)
    assert (
        stats.alerts_received,
        stats.alerts_deduplicated,
        stats.alerts_grouped,
        stats.alerts_suppressed,
    ) == (5 + 1 + 3 + 2, 4 + 2 + 1, 1, 1)
    assert (stats.incidents_created, stats.incidents_acknowledged, stats.incidents_resolved) == (4, 3, 3)
    assert (stats.incidents_reopened, stats.notifications_sent, stats.notifications_failed) == (1, 2, 1)
    # Acknowledged after 10, 20, 40 min; resolved after 30, 70, 180 min (percentile_cont).
    minutes = timedelta(minutes=1)
    assert stats.mean_time_to_acknowledge.ToTimedelta() == 70 / 3 * minutes
    assert stats.p50_time_to_acknowledge.ToTimedelta() == 20 * minutes
    assert stats.p90_time_to_acknowledge.ToTimedelta() == 36 * minutes  # 20 + 0.8 * (40 - 20)
    assert stats.mean_time_to_resolve.ToTimedelta() == 280 / 3 * minutes
    assert stats.p50_time_to_resolve.ToTimedelta() == 70 * minutes
    assert stats.p90_time_to_resolve.ToTimedelta() == 158 * minutes  # 70 + 0.8 * (180 - 70)

    chat = (
        await records.call(
            "GetIncidentStats",
            pb.GetIncidentStatsRequest(time_range=window(T0, T0 + 24 * HOUR), service="chat"),
        )
    ).stats
    assert (chat.alerts_received, chat.alerts_deduplicated, chat.incidents_created) == (9, 6, 3)
    assert (chat.incidents_acknowledged, chat.incidents_resolved) == (2, 3)
    assert chat.p90_time_to_acknowledge.ToTimedelta() == 19 * minutes  # 10 + 0.9 * (20 - 10)

    empty = (
        await records.call(
            "GetIncidentStats", pb.GetIncidentStatsRequest(time_range=window(T0 + 20 * HOUR, T0 + 21 * HOUR))
        )
    ).stats
    assert (empty.alerts_received, empty.incidents_created, empty.incidents_acknowledged) == (0, 0, 0)
    assert not empty.HasField("mean_time_to_acknowledge")
