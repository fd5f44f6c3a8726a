"""Malformed record requests are INVALID_ARGUMENT naming the offending field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import resources_pb2 as incident_pb2
from sentinel.api.storage.v1 import resources_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb

from .conftest import Storage, error_info, timestamp
from .incident_fixtures import HOUR, T0, Records, alert, entry, failure, incident, silence

BAD_TOKEN = "bm90LWEtdG9rZW4"
ROUTING = resources_pb2.POLICY_KIND_ROUTING_RULE


def with_fields(message: Any, **fields: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(copy, name).update(value)
        else:
            setattr(copy, name, value)
    return copy


def reversed_range() -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=timestamp(T0 + HOUR), end_time=timestamp(T0))


def many_entries(n: int) -> list[incident_pb2.TimelineEntry]:
    return [entry(f"e{i}", "i1") for i in range(n)]


CASES: dict[str, tuple[str, Any, str]] = {
    # alerts
    "alert id missing": ("UpsertAlert", pb.UpsertAlertRequest(alert=alert("")), "alert.alert_id"),
    "alert fingerprint missing": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a", fingerprint="")),
        "alert.fingerprint",
    ),
    "unknown severity": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a", severity=42)),
        "alert.severity",
    ),
    "unknown alert status": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a", status=7)),
        "alert.status",
    ),
    "too many labels": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a", labels={f"k{i}": "v" for i in range(65)})),
        "alert.labels",
    ),
    "oversize label value": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a", labels={"k": "v" * 501})),
        "alert.labels['k']",
    ),
    "oversize alert id": ("UpsertAlert", pb.UpsertAlertRequest(alert=alert("a" * 256)), "alert.alert_id"),
    "negative alert version": (
        "UpsertAlert",
        pb.UpsertAlertRequest(alert=alert("a"), expected_version=-1),
        "expected_version",
    ),
    "no alert key": ("GetAlert", pb.GetAlertRequest(), "key"),
    "alert list bad token": ("ListAlerts", pb.ListAlertsRequest(page_token=BAD_TOKEN), "page_token"),
    "alert list bad operator": (
        "ListAlerts",
        pb.ListAlertsRequest(matchers=[common_pb2.LabelMatcher(name="a", value="b")]),
        "matchers[0].operator",
    ),
    "alert list bad regex": (
        "ListAlerts",
        pb.ListAlertsRequest(
            matchers=[common_pb2.LabelMatcher(name="a", operator=common_pb2.MATCH_OPERATOR_REGEX, value="(")]
        ),
        "matchers[0].value",
    ),
    "alert list unknown status": ("ListAlerts", pb.ListAlertsRequest(statuses=[1, 9]), "statuses[1]"),
    "alert list reversed range": (
        "ListAlerts",
        pb.ListAlertsRequest(time_range=reversed_range()),
        "time_range",
    ),
    # incidents
    "incident id missing": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("")),
        "incident.incident_id",
    ),
    "group key missing": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=with_fields(incident("i"), group_key="")),
        "incident.group_key",
    ),
    "state missing": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i", state=0)),
        "incident.state",
    ),
    "unknown state": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i", state=9)),
        "incident.state",
    ),
    "unknown priority": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i", priority=99)),
        "incident.priority",
    ),
    "oversize title": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i", title="t" * 301)),
        "incident.title",
    ),
    "oversize description": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i", description="d" * 10_001)),
        "incident.description",
    ),
    "entry id missing": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i"), timeline_entries=[entry("")]),
        "timeline_entries[0].entry_id",
    ),
    "entry of another incident": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i"), timeline_entries=[entry("e", "other")]),
        "timeline_entries[0].incident_id",
    ),
    "unknown entry kind": (
        "CreateIncident",
        pb.CreateIncidentRequest(incident=incident("i"), timeline_entries=[entry("e0"), entry("e", kind=99)]),
        "timeline_entries[1].kind",
    ),
    "update without version": (
        "UpdateIncident",
        pb.UpdateIncidentRequest(incident=incident("i")),
        "expected_version",
    ),
    "update without id": (
        "UpdateIncident",
        pb.UpdateIncidentRequest(incident=incident(""), expected_version=1),
        "incident.incident_id",
    ),
    "get without id": ("GetIncident", pb.GetIncidentRequest(), "incident_id"),
    "list unknown state": ("ListIncidents", pb.ListIncidentsRequest(states=[17]), "states[0]"),
    "list unknown severity": ("ListIncidents", pb.ListIncidentsRequest(severities=[3, 42]), "severities[1]"),
    "list unknown priority": ("ListIncidents", pb.ListIncidentsRequest(priorities=[8]), "priorities[0]"),
    "list oversize query": ("ListIncidents", pb.ListIncidentsRequest(query="q" * 1001), "query"),
    "list reversed range": (
        "ListIncidents",
        pb.ListIncidentsRequest(time_range=reversed_range()),
        "time_range",
    ),
    "list bad token": ("ListIncidents", pb.ListIncidentsRequest(page_token=BAD_TOKEN), "page_token"),
    "list negative page size": ("ListIncidents", pb.ListIncidentsRequest(page_size=-1), "page_size"),
    "stats without start": ("GetIncidentStats", pb.GetIncidentStatsRequest(), "time_range.start_time"),
    "stats reversed": (
        "GetIncidentStats",
        pb.GetIncidentStatsRequest(time_range=reversed_range()),
        "time_range",
    ),
    "stats over 90 days": (
        "GetIncidentStats",
        pb.GetIncidentStatsRequest(
            time_range=common_pb2.TimeRange(start_time=timestamp(T0), end_time=timestamp(T0 + 91 * 24 * HOUR))
        ),
        "time_range",
    ),
    # timeline
    "append nothing": ("AppendTimelineEntries", pb.AppendTimelineEntriesRequest(), "entries"),
    "append too many": (
        "AppendTimelineEntries",
        pb.AppendTimelineEntriesRequest(entries=many_entries(1001)),
        "entries",
    ),
    "append without incident": (
        "AppendTimelineEntries",
        pb.AppendTimelineEntriesRequest(entries=[entry("e", "")]),
        "entries[0].incident_id",
    ),
    "append without time": (
        "AppendTimelineEntries",
        pb.AppendTimelineEntriesRequest(
            entries=[entry("e", "i1"), incident_pb2.TimelineEntry(entry_id="x", incident_id="i1", kind=7)]
        ),
        "entries[1].event_time",
    ),
    "append without kind": (
        "AppendTimelineEntries",
        pb.AppendTimelineEntriesRequest(entries=[entry("e", "i1", kind=0)]),
        "entries[0].kind",
    ),
    "timeline without incident": ("ListTimelineEntries", pb.ListTimelineEntriesRequest(), "incident_id"),
    "timeline unknown kind": (
        "ListTimelineEntries",
        pb.ListTimelineEntriesRequest(incident_id="i1", kinds=[77]),
        "kinds[0]",
    ),
    # silences
    "silence id missing": (
        "PutSilence",
        pb.PutSilenceRequest(silence=silence("", T0, T0 + HOUR)),
        "silence.silence_id",
    ),
    "silence without matchers": (
        "PutSilence",
        pb.PutSilenceRequest(silence=silence("s", T0, T0 + HOUR, matchers=[])),
        "silence.matchers",
    ),
    "silence ends before it starts": (
        "PutSilence",
        pb.PutSilenceRequest(silence=silence("s", T0 + HOUR, T0)),
        "silence.end_time",
    ),
    "silence without end": (
        "PutSilence",
        pb.PutSilenceRequest(
            silence=incident_pb2.Silence(
                silence_id="s", matchers=[common_pb2.LabelMatcher(name="a", operator=1, value="b")]
            )
        ),
        "silence.end_time",
    ),
    "silences unknown state": ("ListSilences", pb.ListSilencesRequest(states=[0]), "states[0]"),
    "delete silence without id": ("DeleteSilence", pb.DeleteSilenceRequest(), "silence_id"),
    # policies
    "no policy": ("PutPolicy", pb.PutPolicyRequest(policy=resources_pb2.Policy()), "policy"),
    "policy id missing": (
        "PutPolicy",
        pb.PutPolicyRequest(policy=resources_pb2.Policy(routing_rule=incident_pb2.RoutingRule(name="n"))),
        "policy.routing_rule.routing_rule_id",
    ),
    "policy name missing": (
        "PutPolicy",
        pb.PutPolicyRequest(policy=resources_pb2.Policy(schedule=incident_pb2.Schedule(schedule_id="s"))),
        "policy.schedule.name",
    ),
    "get policy kind unspecified": ("GetPolicy", pb.GetPolicyRequest(policy_id="p"), "kind"),
    "get policy unknown kind": ("GetPolicy", pb.GetPolicyRequest(kind=9, policy_id="p"), "kind"),
    "get policy without id": ("GetPolicy", pb.GetPolicyRequest(kind=ROUTING), "policy_id"),
    "list policies kind unspecified": ("ListPolicies", pb.ListPoliciesRequest(), "kind"),
    "list policies bad token": (
        "ListPolicies",
        pb.ListPoliciesRequest(kind=ROUTING, page_token="x"),
        "page_token",
    ),
    "delete policy kind unspecified": ("DeletePolicy", pb.DeletePolicyRequest(policy_id="p"), "kind"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_input_is_invalid_argument_naming_the_field(storage: Storage, case: str) -> None:
    rpc, request, field = CASES[case]
    error = await failure(Records(storage.stub).call(rpc, request))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert dict(error_info(error).metadata)["field"] == field
    assert error.details().startswith(field)


async def test_a_call_without_tenant_header_acts_for_the_default_tenant_only(storage: Storage) -> None:
    # Without API keys configured, the runtime's KeyRing resolves a missing header to the default
    # tenant, which sees nothing of tenant "acme".
    await Records(storage.stub).create(incident("i"))
    error = await failure(storage.stub.GetIncident(pb.GetIncidentRequest(incident_id="i")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(error).reason == "INCIDENT_NOT_FOUND"
