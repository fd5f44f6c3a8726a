"""Incident-manager's records round-trip through storage: alerts, incidents, timelines, silences,
policies; per tenant, and across a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2_grpc
from sentinel.api.storage.v1 import storage_service_pb2 as pb
from sentinel.storage.app import build_server
from sentinel.testing.servers import channel_to, running

from .conftest import Storage, error_info, storage_settings, timestamp
from .incident_fixtures import (
    ACKNOWLEDGED,
    HOUR,
    MINUTE,
    RESOLVED,
    T0,
    Records,
    alert,
    entry,
    fails_with,
    incident,
    silence,
)

NOT_FOUND = grpc.StatusCode.NOT_FOUND
ABORTED = grpc.StatusCode.ABORTED
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


@pytest.fixture
def records(storage: Storage) -> Records:
    return Records(storage.stub)


# -- alerts -------------------------------------------------------------------------------------


async def test_an_alert_is_stored_as_given_and_versioned_on_every_write(records: Records) -> None:
    sent = alert("a1", duplicate_count=3, silenced_by=["s1"], incident_id="i1", group_key="g1")
    first = await records.upsert(sent)
    assert (first.created, first.alert.version) == (True, 1)
    again = await records.upsert(sent)
    assert (again.created, again.alert.version) == (False, 2)

    got = (await records.call("GetAlert", pb.GetAlertRequest(alert_id="a1"))).alert
    expected = incident_pb2.Alert()
    expected.CopyFrom(sent)
    expected.version = 2
    assert got == expected


async def test_get_alert_by_fingerprint_returns_the_most_recently_seen(records: Records) -> None:
    await records.upsert(alert("old", fingerprint="v1:f", seen=T0))
    await records.upsert(alert("new", fingerprint="v1:f", seen=T0 + MINUTE))
    await records.upsert(alert("other", fingerprint="v1:g", seen=T0 + HOUR))
    got = await records.call("GetAlert", pb.GetAlertRequest(fingerprint="v1:f"))
    assert got.alert.alert_id == "new"
    await fails_with(
        records.call("GetAlert", pb.GetAlertRequest(fingerprint="v1:none")), NOT_FOUND, "ALERT_NOT_FOUND"
    )


async def test_upsert_alert_with_expected_version_is_conditional(records: Records) -> None:
    await records.upsert(alert("a1"))
    updated = await records.upsert(alert("a1", title="changed"), expected_version=1)
    assert updated.alert.version == 2
    error = await fails_with(records.upsert(alert("a1"), expected_version=1), ABORTED, "VERSION_MISMATCH")
    assert dict(error_info(error).metadata)["version"] == "2"
    await fails_with(records.upsert(alert("nope"), expected_version=1), NOT_FOUND, "ALERT_NOT_FOUND")
    stored = await records.call("GetAlert", pb.GetAlertRequest(alert_id="a1"))
    assert stored.alert.title == "changed"


async def test_list_alerts_applies_every_filter(records: Records) -> None:
    resolved = incident_pb2.ALERT_STATUS_RESOLVED
    await records.upsert(alert("a1", seen=T0, incident_id="i1", group_key="g1"))
    await records.upsert(alert("a2", seen=T0 + MINUTE, incident_id="i1", group_key="g1", status=resolved))
    await records.upsert(alert("a3", seen=T0 + 2 * MINUTE, fingerprint="v1:shared", labels={"env": "dev"}))
    await records.upsert(alert("a4", seen=T0 + 3 * MINUTE, status=incident_pb2.ALERT_STATUS_UNSPECIFIED))

    assert await records.alerts() == ["a4", "a3", "a2", "a1"]  # most recently seen first
    assert await records.alerts(incident_id="i1") == ["a2", "a1"]
    assert await records.alerts(group_key="g1", statuses=[resolved]) == ["a2"]
    # Unset status means firing.
    assert await records.alerts(statuses=[incident_pb2.ALERT_STATUS_FIRING]) == ["a4", "a3", "a1"]
    assert await records.alerts(fingerprint="v1:shared") == ["a3"]
    env = common_pb2.LabelMatcher(name="env", operator=common_pb2.MATCH_OPERATOR_REGEX, value="de.")
    assert await records.alerts(matchers=[env]) == ["a3"]
    window = common_pb2.TimeRange(start_time=timestamp(T0 + MINUTE), end_time=timestamp(T0 + 3 * MINUTE))
    assert await records.alerts(time_range=window) == ["a3", "a2"]


# -- incidents and timelines --------------------------------------------------------------------


async def test_an_incident_and_its_first_timeline_entries_are_created_together(records: Records) -> None:
    sent = incident("i1", assignees=["alice@example.com"], next_escalation_time=timestamp(T0 + HOUR))
    created = await records.create(sent, entry("e1", at=T0), entry("e2", "i1", at=T0 + 1))
    assert created.incident.version == 1
    expected = incident_pb2.Incident()
    expected.CopyFrom(sent)
    expected.version = 1
    assert created.incident == expected
    assert await records.get("i1") == expected
    timeline = await records.timeline("i1")
    assert [(e.entry_id, e.incident_id) for e in timeline] == [("e1", "i1"), ("e2", "i1")]
    assert timeline[0].actor == "user:alice@example.com"


async def test_an_incident_without_times_gets_them_from_storage(records: Records) -> None:
    bare = incident_pb2.Incident(incident_id="i1", group_key="g", state=incident_pb2.INCIDENT_STATE_TRIGGERED)
    created = (await records.create(bare)).incident
    assert created.create_time.seconds > 0
    assert created.update_time.seconds > 0


async def test_update_replaces_the_incident_and_appends_its_timeline_entries(records: Records) -> None:
    await records.create(incident("i1"), entry("e1"))
    changed = incident("i1", state=ACKNOWLEDGED, acknowledge_time=timestamp(T0 + MINUTE), title="Ack'd")
    updated = await records.update(changed, 1, entry("e1"), entry("e2", at=T0 + MINUTE))
    assert updated.incident.version == 2
    got = await records.get("i1")
    assert (got.state, got.title, got.version) == (ACKNOWLEDGED, "Ack'd", 2)
    assert [e.entry_id for e in await records.timeline("i1")] == ["e1", "e2"]  # e1 already stored: skipped
    await fails_with(records.update(incident("nope"), 1), NOT_FOUND, "INCIDENT_NOT_FOUND")
    await fails_with(
        records.call("GetIncident", pb.GetIncidentRequest(incident_id="nope")),
        NOT_FOUND,
        "INCIDENT_NOT_FOUND",
    )


async def test_timeline_entries_are_appended_once_by_entry_id(records: Records) -> None:
    await records.create(incident("i1"))
    await records.create(incident("i2"))
    batch = [entry(f"e{n}", "i1", at=T0 + n * MINUTE) for n in range(3)]
    first = await records.append(*batch)
    assert (first.appended, first.duplicates) == (3, 0)
    again = await records.append(*batch, entry("e3", "i2"), entry("e3", "i2"))
    assert (again.appended, again.duplicates) == (1, 4)
    assert [e.entry_id for e in await records.timeline("i1")] == ["e0", "e1", "e2"]
    assert [e.entry_id for e in await records.timeline("i2")] == ["e3"]
    # Ten concurrent retries of one batch: stored once.
    retries = await asyncio.gather(*(records.append(entry("r", "i2"), entry("s", "i2")) for _ in range(10)))
    assert sum(r.appended for r in retries) == 2
    assert sum(r.duplicates for r in retries) == 18


async def test_appending_to_an_unknown_incident_writes_nothing(records: Records) -> None:
    await records.create(incident("i1"))
    error = await fails_with(
        records.append(entry("e1", "i1"), entry("e2", "ghost")), NOT_FOUND, "INCIDENT_NOT_FOUND"
    )
    assert dict(error_info(error).metadata)["incident_id"] == "ghost"
    assert await records.timeline("i1") == []
    await fails_with(
        records.call("ListTimelineEntries", pb.ListTimelineEntriesRequest(incident_id="ghost")),
        NOT_FOUND,
        "INCIDENT_NOT_FOUND",
    )


async def test_timeline_lists_oldest_first_with_kind_and_time_filters(records: Records) -> None:
    await records.create(incident("i1"))
    notified = incident_pb2.TIMELINE_ENTRY_KIND_NOTIFIED
    # Entries at the same time keep their write order.
    await records.append(
        entry("late", "i1", at=T0 + HOUR),
        entry("same-1", "i1", at=T0),
        entry("same-0", "i1", at=T0),
        entry("notified", "i1", at=T0 + MINUTE, kind=notified, attributes={"outcome": "sent"}),
    )
    assert [e.entry_id for e in await records.timeline("i1")] == ["same-1", "same-0", "notified", "late"]
    assert [e.entry_id for e in await records.timeline("i1", kinds=[notified])] == ["notified"]
    window = common_pb2.TimeRange(start_time=timestamp(T0 + 1), end_time=timestamp(T0 + HOUR))
    assert [e.entry_id for e in await records.timeline("i1", time_range=window)] == ["notified"]
    paged = await records.timeline("i1", page_size=1)
    assert [e.entry_id for e in paged] == ["same-1", "same-0", "notified", "late"]


# -- silences -----------------------------------------------------------------------------------


async def test_silences_are_stored_listed_by_state_and_deleted(records: Records, storage: Storage) -> None:
    now_ns = await _server_now_ns(records)
    active = await records.call(
        "PutSilence", pb.PutSilenceRequest(silence=silence("s-active", None, now_ns + HOUR))
    )
    assert active.created
    assert active.silence.state == incident_pb2.SILENCE_STATE_ACTIVE
    assert active.silence.start_time.seconds > 0  # unset start means now
    pending = silence("s-pending", now_ns + HOUR, now_ns + 2 * HOUR, maintenance=True)
    put = await records.call("PutSilence", pb.PutSilenceRequest(silence=pending))
    assert put.silence.state == incident_pb2.SILENCE_STATE_PENDING
    expired = silence("s-expired", now_ns - 2 * HOUR, now_ns - HOUR)
    put = await records.call("PutSilence", pb.PutSilenceRequest(silence=expired))
    assert put.silence.state == incident_pb2.SILENCE_STATE_EXPIRED

    # Expire the active one early: a replacement.
    early = silence("s-active", None, active.silence.start_time.ToNanoseconds() + 1_000, comment="done")
    early.start_time.CopyFrom(active.silence.start_time)
    replaced = await records.call("PutSilence", pb.PutSilenceRequest(silence=early))
    assert not replaced.created
    assert replaced.silence.state == incident_pb2.SILENCE_STATE_EXPIRED
    assert replaced.silence.create_time == active.silence.create_time
    assert replaced.silence.comment == "done"

    every = await records.every("ListSilences", pb.ListSilencesRequest(page_size=1), "silences")
    assert [s.silence_id for s in every] == ["s-expired", "s-pending", "s-active"]  # newest first
    expired_only = pb.ListSilencesRequest(states=[incident_pb2.SILENCE_STATE_EXPIRED])
    listed = await records.every("ListSilences", expired_only, "silences")
    assert sorted(s.silence_id for s in listed) == ["s-active", "s-expired"]
    pending_only = pb.ListSilencesRequest(states=[incident_pb2.SILENCE_STATE_PENDING])
    [listed_pending] = await records.every("ListSilences", pending_only, "silences")
    assert listed_pending.maintenance

    await records.call("DeleteSilence", pb.DeleteSilenceRequest(silence_id="s-expired"))
    await fails_with(
        records.call("DeleteSilence", pb.DeleteSilenceRequest(silence_id="s-expired")),
        NOT_FOUND,
        "SILENCE_NOT_FOUND",
    )


async def _server_now_ns(records: Records) -> int:
    # The storage service runs on the system clock; a silence created "now" reports its start.
    probe = await records.call("PutSilence", pb.PutSilenceRequest(silence=silence("probe", None, 4 * 10**18)))
    await records.call("DeleteSilence", pb.DeleteSilenceRequest(silence_id="probe"))
    return int(probe.silence.start_time.ToNanoseconds())


# -- policies -----------------------------------------------------------------------------------

POLICIES: dict[str, tuple[int, str, Any]] = {
    "escalation_policy": (
        resources_pb2.POLICY_KIND_ESCALATION_POLICY,
        "escalation_policy_id",
        lambda pid, name: incident_pb2.EscalationPolicy(
            escalation_policy_id=pid,
            name=name,
            levels=[incident_pb2.EscalationLevel(targets=[incident_pb2.EscalationTarget(user="alice")])],
        ),
    ),
    "routing_rule": (
        resources_pb2.POLICY_KIND_ROUTING_RULE,
        "routing_rule_id",
        lambda pid, name: incident_pb2.RoutingRule(routing_rule_id=pid, name=name, group_by=["service"]),
    ),
    "schedule": (
        resources_pb2.POLICY_KIND_SCHEDULE,
        "schedule_id",
        lambda pid, name: incident_pb2.Schedule(
            schedule_id=pid, name=name, rotations=[incident_pb2.Rotation(name="primary", participants=["a"])]
        ),
    ),
    "notification_channel": (
        resources_pb2.POLICY_KIND_NOTIFICATION_CHANNEL,
        "notification_channel_id",
        lambda pid, name: incident_pb2.NotificationChannel(
            notification_channel_id=pid,
            name=name,
            kind=incident_pb2.NOTIFICATION_CHANNEL_KIND_WEBHOOK,
            webhook=incident_pb2.WebhookConfig(
                url="https://hooks.example/x", hmac_secret=incident_pb2.Secret(value="ciphertext")
            ),
        ),
    ),
    "playbook": (
        resources_pb2.POLICY_KIND_PLAYBOOK,
        "playbook_id",
        lambda pid, name: incident_pb2.Playbook(
            playbook_id=pid,
            name=name,
            steps=[incident_pb2.PlaybookStep(name="note", kind=incident_pb2.PLAYBOOK_STEP_KIND_ADD_NOTE)],
        ),
    ),
}


def policy(which: str, policy_id: str, name: str) -> resources_pb2.Policy:
    return resources_pb2.Policy(**{which: POLICIES[which][2](policy_id, name)})


@pytest.mark.parametrize("which", sorted(POLICIES))
async def test_every_kind_of_policy_is_versioned_listed_and_deleted(records: Records, which: str) -> None:
    kind, id_field, _ = POLICIES[which]
    put = await records.call("PutPolicy", pb.PutPolicyRequest(policy=policy(which, "p1", "first")))
    inner = getattr(put.policy, which)
    assert (put.created, inner.version, getattr(inner, id_field)) == (True, 1, "p1")
    assert inner.create_time.seconds > 0
    assert inner.update_time == inner.create_time
    replaced = await records.call(
        "PutPolicy", pb.PutPolicyRequest(policy=policy(which, "p1", "renamed"), expected_version=1)
    )
    again = getattr(replaced.policy, which)
    assert (replaced.created, again.version, again.name) == (False, 2, "renamed")
    assert again.create_time == inner.create_time
    got = await records.call("GetPolicy", pb.GetPolicyRequest(kind=kind, policy_id="p1"))
    assert got.policy == replaced.policy

    await records.call("PutPolicy", pb.PutPolicyRequest(policy=policy(which, "p2", "another")))
    taken = pb.PutPolicyRequest(policy=policy(which, "p3", "renamed"))
    await fails_with(records.call("PutPolicy", taken), ALREADY_EXISTS, "NAME_TAKEN")
    stale = pb.PutPolicyRequest(policy=policy(which, "p1", "x"), expected_version=1)
    await fails_with(records.call("PutPolicy", stale), ABORTED, "VERSION_MISMATCH")
    missing = pb.PutPolicyRequest(policy=policy(which, "p9", "x"), expected_version=1)
    await fails_with(records.call("PutPolicy", missing), NOT_FOUND, "POLICY_NOT_FOUND")

    listed = await records.every("ListPolicies", pb.ListPoliciesRequest(kind=kind, page_size=1), "policies")
    assert [getattr(p, which).name for p in listed] == ["another", "renamed"]  # by name
    other_kind = kind % 5 + 1
    assert (await records.call("ListPolicies", pb.ListPoliciesRequest(kind=other_kind))).policies == []

    wrong = pb.DeletePolicyRequest(kind=kind, policy_id="p1", expected_version=1)
    await fails_with(records.call("DeletePolicy", wrong), ABORTED, "VERSION_MISMATCH")
    await records.call("DeletePolicy", pb.DeletePolicyRequest(kind=kind, policy_id="p1", expected_version=2))
    await records.call("DeletePolicy", pb.DeletePolicyRequest(kind=kind, policy_id="p2"))
    gone = pb.DeletePolicyRequest(kind=kind, policy_id="p1")
    await fails_with(records.call("DeletePolicy", gone), NOT_FOUND, "POLICY_NOT_FOUND")
    await fails_with(
        records.call("GetPolicy", pb.GetPolicyRequest(kind=kind, policy_id="p1")),
        NOT_FOUND,
        "POLICY_NOT_FOUND",
    )


async def test_routing_rules_list_by_order_then_name(records: Records) -> None:
    for rule_id, name, order in (("r1", "b", 2), ("r2", "a", 2), ("r3", "z", 1), ("r4", "c", 3)):
        rule = incident_pb2.RoutingRule(routing_rule_id=rule_id, name=name, order=order)
        await records.call("PutPolicy", pb.PutPolicyRequest(policy=resources_pb2.Policy(routing_rule=rule)))
    request = pb.ListPoliciesRequest(kind=resources_pb2.POLICY_KIND_ROUTING_RULE, page_size=3)
    listed = await records.every("ListPolicies", request, "policies")
    assert [p.routing_rule.routing_rule_id for p in listed] == ["r3", "r2", "r1", "r4"]


async def test_a_retried_put_policy_with_its_request_id_changes_nothing(records: Records) -> None:
    first = pb.PutPolicyRequest(policy=policy("schedule", "p1", "n"), request_id="req-1")
    await records.call("PutPolicy", first)
    conditional = pb.PutPolicyRequest(
        policy=policy("schedule", "p1", "m"), expected_version=1, request_id="req-2"
    )
    applied = await records.call("PutPolicy", conditional)
    assert applied.policy.schedule.version == 2
    retried = await records.call("PutPolicy", conditional)  # version is 2 now, but it is the same request
    assert (retried.policy.schedule.version, retried.created) == (2, False)
    unconditional = pb.PutPolicyRequest(policy=policy("schedule", "p1", "o"), request_id="req-3")
    assert (await records.call("PutPolicy", unconditional)).policy.schedule.version == 3
    assert (await records.call("PutPolicy", unconditional)).policy.schedule.version == 3


# -- tenancy and restarts -----------------------------------------------------------------------


async def test_tenants_never_see_or_block_each_others_records(records: Records) -> None:
    other = records.as_tenant("globex")
    await records.upsert(alert("a1"))
    await records.create(incident("i1", group_key="shared"), entry("e1"))
    await records.call("PutSilence", pb.PutSilenceRequest(silence=silence("s1", T0, 4 * 10**18)))
    await records.call("PutPolicy", pb.PutPolicyRequest(policy=policy("playbook", "p1", "n")))

    await fails_with(other.call("GetAlert", pb.GetAlertRequest(alert_id="a1")), NOT_FOUND, "ALERT_NOT_FOUND")
    await fails_with(
        other.call("GetAlert", pb.GetAlertRequest(fingerprint="v1:a1")), NOT_FOUND, "ALERT_NOT_FOUND"
    )
    await fails_with(
        other.call("GetIncident", pb.GetIncidentRequest(incident_id="i1")), NOT_FOUND, "INCIDENT_NOT_FOUND"
    )
    await fails_with(other.update(incident("i1"), 1), NOT_FOUND, "INCIDENT_NOT_FOUND")
    await fails_with(other.append(entry("e2", "i1")), NOT_FOUND, "INCIDENT_NOT_FOUND")
    await fails_with(
        other.call("DeleteSilence", pb.DeleteSilenceRequest(silence_id="s1")), NOT_FOUND, "SILENCE_NOT_FOUND"
    )
    playbook = resources_pb2.POLICY_KIND_PLAYBOOK
    await fails_with(
        other.call("GetPolicy", pb.GetPolicyRequest(kind=playbook, policy_id="p1")),
        NOT_FOUND,
        "POLICY_NOT_FOUND",
    )
    assert await other.alerts() == []
    assert await other.incidents() == []
    assert (await other.call("ListSilences", pb.ListSilencesRequest())).silences == []
    assert (await other.call("ListPolicies", pb.ListPoliciesRequest(kind=playbook))).policies == []
    stats = await other.call(
        "GetIncidentStats",
        pb.GetIncidentStatsRequest(
            time_range=common_pb2.TimeRange(start_time=timestamp(T0 - HOUR), end_time=timestamp(T0 + HOUR))
        ),
    )
    assert (stats.stats.alerts_received, stats.stats.incidents_created) == (0, 0)

    # The same ids and the same open group key in another tenant are other records.
    assert (await other.create(incident("i1", group_key="shared"), entry("e1"))).incident.version == 1
    assert (await other.upsert(alert("a1"))).created
    assert (await other.append(entry("e1", "i1"))).duplicates == 1
    assert [e.entry_id for e in await records.timeline("i1")] == ["e1"]


async def test_a_new_server_on_the_same_database_reads_everything(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    settings = storage_settings(postgres_dsn, redis_url, redis_namespace)
    writes: dict[str, Any] = {}
    async with running(build_server(settings)) as address, channel_to(address) as channel:
        records = Records(storage_service_pb2_grpc.StorageServiceStub(channel))
        writes["alert"] = (await records.upsert(alert("a1"))).alert
        await records.create(incident("i1"), entry("e1"))
        writes["incident"] = (
            await records.update(incident("i1", state=RESOLVED), 1, entry("e2", at=T0 + MINUTE))
        ).incident
        await records.append(entry("e3", "i1", at=T0 + HOUR))
        writes["silence"] = (
            await records.call("PutSilence", pb.PutSilenceRequest(silence=silence("s1", T0, 4 * 10**18)))
        ).silence
        writes["policy"] = (
            await records.call("PutPolicy", pb.PutPolicyRequest(policy=policy("routing_rule", "r1", "n")))
        ).policy
    async with running(build_server(settings)) as address, channel_to(address) as channel:
        records = Records(storage_service_pb2_grpc.StorageServiceStub(channel))
        assert (await records.call("GetAlert", pb.GetAlertRequest(alert_id="a1"))).alert == writes["alert"]
        assert await records.get("i1") == writes["incident"]
        assert [e.entry_id for e in await records.timeline("i1")] == ["e1", "e2", "e3"]
        [stored_silence] = (await records.call("ListSilences", pb.ListSilencesRequest())).silences
        assert stored_silence == writes["silence"]
        got = await records.call(
            "GetPolicy", pb.GetPolicyRequest(kind=resources_pb2.POLICY_KIND_ROUTING_RULE, policy_id="r1")
        )
        assert got.policy == writes["policy"]
        # The version carried on: a stale update is still refused.
        await fails_with(records.update(incident("i1"), 1), ABORTED, "VERSION_MISMATCH")
