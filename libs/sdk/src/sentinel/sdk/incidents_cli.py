"""`sentinel alert`, `sentinel incidents ...` and `sentinel silences ...`: the incident manager.

Tables by default, `--json` for scripts (one JSON document; `incidents watch` prints JSON lines).
The target comes from --target, else $SENTINEL_INCIDENT_MANAGER_ADDR, else 127.0.0.1:50054; the
actor from --actor, else $USER. Errors print the server's status and message and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from typing import Any, TextIO

import grpc
from google.protobuf import json_format, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.runtime.clock import SystemClock
from sentinel.sdk.client import Endpoint, endpoint_from_env, retrying
from sentinel.sdk.selectors import parse_duration

ADDR_ENV = "SENTINEL_INCIDENT_MANAGER_ADDR"
DEFAULT_ADDR = "127.0.0.1:50054"
SEVERITIES = ["critical", "high", "medium", "low", "info"]
STATES = ["triggered", "acknowledged", "resolved", "closed"]
SILENCE_STATES = ["pending", "active", "expired"]
_OPERATORS = {
    "=": common_pb2.MATCH_OPERATOR_EQUAL,
    "!=": common_pb2.MATCH_OPERATOR_NOT_EQUAL,
    "=~": common_pb2.MATCH_OPERATOR_REGEX,
    "!~": common_pb2.MATCH_OPERATOR_NOT_REGEX,
}
_OPERATOR_TEXT = {value: text for text, value in _OPERATORS.items()}
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
ConnectionFlags = Callable[[argparse.ArgumentParser, str], None]


class UsageError(Exception):
    """Bad command-line input caught before calling the server."""


# --- parsing helpers -------------------------------------------------------------------------


def parse_label(text: str) -> tuple[str, str]:
    """`k=v` to a pair."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"a label is key=value, got {text!r}")
    return key.strip(), value


def parse_matcher(text: str) -> common_pb2.LabelMatcher:
    """`k=v`, `k!=v`, `k=~regex`, `k!~regex` (the value may be quoted) to a LabelMatcher."""
    match = _MATCHER.match(text)
    if not match:
        raise UsageError(
            f"a matcher is label=value, label!=value, label=~regex or label!~regex, got {text!r}"
        )
    name, op, value = match.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return common_pb2.LabelMatcher(name=name, operator=_OPERATORS[op], value=value)


def _severity(name: str) -> common_pb2.Severity.ValueType:
    return common_pb2.Severity.Value(f"SEVERITY_{name.upper()}")


def _state(name: str) -> res.IncidentState.ValueType:
    return res.IncidentState.Value(f"INCIDENT_STATE_{name.upper()}")


def _enum_text(enum: Any, value: int, prefix: str) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def _time_text(ts: timestamp_pb2.Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """A plain left-aligned table; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)] + [row[-1]]
        out.write("  ".join(cells).rstrip() + "\n")


def error_text(exc: grpc.aio.AioRpcError) -> str:
    """`CODE: message [reason, field=...]` from a status and its google.rpc.ErrorInfo."""
    extra: list[str] = []
    for key, value in exc.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                extra.append(info.reason)
                extra += [f"{k}={v}" for k, v in sorted(info.metadata.items())]
    suffix = f" [{', '.join(e for e in extra if e)}]" if any(extra) else ""
    return f"{exc.code().name}: {exc.details()}{suffix}"


# --- rendering -------------------------------------------------------------------------------


def _incident_row(incident: res.Incident) -> list[str]:
    return [
        incident.incident_id,
        _enum_text(res.IncidentState, incident.state, "INCIDENT_STATE_"),
        _enum_text(common_pb2.Severity, incident.severity, "SEVERITY_"),
        _enum_text(res.Priority, incident.priority, "PRIORITY_").upper(),
        incident.service or "-",
        incident.model or "-",
        str(incident.alert_count),
        ",".join(incident.assignees) or "-",
        _time_text(incident.create_time),
        incident.title,
    ]


INCIDENT_HEADERS = [
    "ID",
    "STATE",
    "SEVERITY",
    "PRI",
    "SERVICE",
    "MODEL",
    "ALERTS",
    "ASSIGNEES",
    "CREATED",
    "TITLE",
]


def _incident_summary(incident: res.Incident) -> str:
    state = _enum_text(res.IncidentState, incident.state, "INCIDENT_STATE_")
    return f"{incident.incident_id}  {state}  v{incident.version}  {incident.title}"


def _silence_row(silence: res.Silence) -> list[str]:
    matchers = ",".join(f"{m.name}{_OPERATOR_TEXT.get(m.operator, '?')}{m.value}" for m in silence.matchers)
    return [
        silence.silence_id,
        _enum_text(res.SilenceState, silence.state, "SILENCE_STATE_"),
        matchers,
        _time_text(silence.start_time),
        _time_text(silence.end_time),
        silence.created_by or "-",
        silence.comment,
    ]


SILENCE_HEADERS = ["ID", "STATE", "MATCHERS", "STARTS", "ENDS", "CREATED BY", "COMMENT"]


# --- commands --------------------------------------------------------------------------------


# The generated stub is typed for the sync API; over grpc.aio its calls return awaitables.
Stub = Any


async def _call(endpoint: Endpoint, method: Callable[..., Awaitable[Any]], request: Any) -> Any:
    return await retrying(lambda: method(request, metadata=endpoint.metadata, timeout=30))


async def cmd_alert(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    labels = dict(parse_label(text) for text in args.label)
    alert = res.Alert(
        source=res.ALERT_SOURCE_API,
        title=args.title,
        description=args.description or "",
        severity=_severity(args.severity) if args.severity else common_pb2.SEVERITY_UNSPECIFIED,
        alert_type=args.type or "",
        service=args.service or "",
        model=args.model or "",
        labels=labels,
        annotations=dict(parse_label(text) for text in args.annotation),
        dedup_key=args.dedup_key or "",
        status=res.ALERT_STATUS_RESOLVED if args.resolve else res.ALERT_STATUS_FIRING,
        generator_url=args.url or "",
    )
    if args.resolve:
        alert.end_time.GetCurrentTime()
    response = await _call(endpoint, stub.ReportAlerts, api.ReportAlertsRequest(alerts=[alert]))
    if args.json:
        out.write(json.dumps({"results": [_dict(r) for r in response.results],
                              "errors": [_dict(e) for e in response.errors]}) + "\n")  # fmt: skip
    else:
        rows = [
            [_enum_text(api.AlertOutcome, r.outcome, "ALERT_OUTCOME_"), r.incident_id or "-", r.alert_id,
             r.fingerprint, ",".join(r.silence_ids) or "-"]
            for r in response.results
        ]  # fmt: skip
        if rows:
            table(["OUTCOME", "INCIDENT", "ALERT", "FINGERPRINT", "SILENCED BY"], rows, out)
    for error in response.errors:
        print(f"sentinel alert: rejected: {error.field}: {error.reason}", file=sys.stderr)
    return 1 if response.errors else 0


def _list_request(args: argparse.Namespace) -> api.ListIncidentsRequest:
    return api.ListIncidentsRequest(
        states=[_state(s) for s in args.state],
        severities=[_severity(s) for s in args.severity],
        service=args.service or "",
        model=args.model or "",
        matchers=[parse_matcher(m) for m in args.matcher],
        query=args.text or "",
        assignee=args.assignee or "",
    )


async def cmd_list(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    request = _list_request(args)
    incidents: list[res.Incident] = []
    while len(incidents) < args.limit:
        request.page_size = min(500, args.limit - len(incidents))
        response = await _call(endpoint, stub.ListIncidents, request)
        incidents.extend(response.incidents)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    incidents = incidents[: args.limit]
    if args.json:
        out.write(json.dumps([_dict(i) for i in incidents]) + "\n")
    elif incidents:
        table(INCIDENT_HEADERS, [_incident_row(i) for i in incidents], out)
    else:
        out.write("no incidents\n")
    return 0


async def cmd_get(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    incident = (await _call(endpoint, stub.GetIncident, api.GetIncidentRequest(incident_id=args.id))).incident
    alerts = (
        await _call(endpoint, stub.ListAlerts, api.ListAlertsRequest(incident_id=args.id, page_size=100))
    ).alerts
    timeline = (
        await _call(endpoint, stub.ListTimeline, api.ListTimelineRequest(incident_id=args.id, page_size=200))
    ).entries
    if args.json:
        out.write(json.dumps({"incident": _dict(incident), "alerts": [_dict(a) for a in alerts],
                              "timeline": [_dict(e) for e in timeline]}) + "\n")  # fmt: skip
        return 0
    fields = [
        ("id", incident.incident_id),
        ("title", incident.title),
        ("state", _enum_text(res.IncidentState, incident.state, "INCIDENT_STATE_")),
        ("severity", _enum_text(common_pb2.Severity, incident.severity, "SEVERITY_")),
        ("priority", _enum_text(res.Priority, incident.priority, "PRIORITY_").upper()),
        ("type", incident.incident_type or "-"),
        ("service", incident.service or "-"),
        ("model", incident.model or "-"),
        ("labels", ",".join(f"{k}={v}" for k, v in sorted(incident.labels.items())) or "-"),
        ("alerts", str(incident.alert_count)),
        ("assignees", ",".join(incident.assignees) or "-"),
        ("created", _time_text(incident.create_time)),
        ("updated", _time_text(incident.update_time)),
        ("reopened", str(incident.reopen_count)),
        ("flapping", "yes" if incident.flapping else "no"),
        ("suppressed", f"yes ({incident.silence_id})" if incident.suppressed else "no"),
        ("version", str(incident.version)),
    ]
    for name, value in fields:
        out.write(f"{name + ':':<12} {value}\n")
    out.write("\nalerts\n")
    table(
        ["FINGERPRINT", "STATUS", "REPORTS", "FIRST SEEN", "LAST SEEN", "TITLE"],
        [[a.fingerprint[:19], _enum_text(res.AlertStatus, a.status, "ALERT_STATUS_"),
          str(a.duplicate_count + 1), _time_text(a.first_seen_time), _time_text(a.last_seen_time), a.title]
         for a in alerts],
        out,
    )  # fmt: skip
    out.write("\ntimeline\n")
    table(
        ["TIME", "KIND", "ACTOR", "MESSAGE"],
        [[_time_text(e.event_time), _enum_text(res.TimelineEntryKind, e.kind, "TIMELINE_ENTRY_KIND_"),
          e.actor or "-", e.message] for e in timeline],
        out,
    )  # fmt: skip
    return 0


async def cmd_change(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    """ack / resolve / reopen / note / assign: one mutating call, retried with one request_id."""
    common: dict[str, Any] = {
        "incident_id": args.id,
        "actor": args.actor or "",
        "request_id": uuid.uuid4().hex,
    }
    method: Callable[..., Awaitable[Any]]
    request: Any
    if args.action == "ack":
        method, request = (
            stub.AcknowledgeIncident,
            api.AcknowledgeIncidentRequest(reason=args.reason, **common),
        )
    elif args.action == "resolve":
        method, request = stub.ResolveIncident, api.ResolveIncidentRequest(reason=args.reason, **common)
    elif args.action == "reopen":
        method, request = stub.ReopenIncident, api.ReopenIncidentRequest(reason=args.reason, **common)
    elif args.action == "note":
        method, request = stub.AddNote, api.AddNoteRequest(text=args.text, **common)
    else:
        method, request = (
            stub.AssignIncident,
            api.AssignIncidentRequest(assignees=args.users, reason=args.reason, **common),
        )
    response = await _call(endpoint, method, request)
    if args.action == "note":  # AddNote answers with the NOTE_ADDED entry
        entry = response.entry
        if args.json:
            out.write(json.dumps(_dict(entry)) + "\n")
        else:
            row = [entry.incident_id, _time_text(entry.event_time), entry.actor or "-", entry.message]
            table(["INCIDENT", "TIME", "ACTOR", "NOTE"], [row], out)
        return 0
    if args.json:
        out.write(json.dumps(_dict(response.incident)) + "\n")
    else:
        table(INCIDENT_HEADERS, [_incident_row(response.incident)], out)
    return 0


async def cmd_watch(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    """Stream changes until Ctrl-C (or --count events); reconnect with the last cursor."""
    request = api.WatchIncidentsRequest(
        incident_ids=args.id,
        states=[_state(s) for s in args.state],
        severities=[_severity(s) for s in args.severity],
        service=args.service or "",
        model=args.model or "",
        matchers=[parse_matcher(m) for m in args.matcher],
    )
    seen = 0
    backoff = 0.5
    if not args.json:
        out.write("watching incident changes (Ctrl-C to stop)\n")
        out.flush()
    while True:
        try:
            async for response in stub.WatchIncidents(request, metadata=endpoint.metadata):
                backoff = 0.5
                event = response.event
                if event.cursor:
                    request.resume_cursor = event.cursor
                if event.type == res.INCIDENT_EVENT_TYPE_HEARTBEAT:
                    continue
                if args.json:
                    out.write(json.dumps(_dict(event)) + "\n")
                else:
                    kind = _enum_text(res.IncidentEventType, event.type, "INCIDENT_EVENT_TYPE_")
                    what = "; ".join(e.message for e in event.timeline_entries if e.message)
                    out.write(f"{_time_text(event.event_time)}  {kind:<8} {_incident_summary(event.incident)}"
                              + (f"  ({what})" if what else "") + "\n")  # fmt: skip
                out.flush()
                seen += 1
                if args.count and seen >= args.count:
                    return 0
            return 0
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def cmd_silence_add(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    if not args.matcher:
        raise UsageError("at least one --matcher is needed")
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    now = SystemClock().now()
    silence = res.Silence(
        matchers=[parse_matcher(m) for m in args.matcher], comment=args.comment, maintenance=args.maintenance
    )
    silence.start_time.FromDatetime(now)
    silence.end_time.FromDatetime(now + duration)
    request = api.CreateSilenceRequest(silence=silence, actor=args.actor or "", request_id=uuid.uuid4().hex)
    created = (await _call(endpoint, stub.CreateSilence, request)).silence
    if args.json:
        out.write(json.dumps(_dict(created)) + "\n")
    else:
        table(SILENCE_HEADERS, [_silence_row(created)], out)
    return 0


async def cmd_silence_list(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    request = api.ListSilencesRequest(
        states=[res.SilenceState.Value(f"SILENCE_STATE_{s.upper()}") for s in args.state]
    )
    silences: list[res.Silence] = []
    while len(silences) < args.limit:
        request.page_size = min(500, args.limit - len(silences))
        response = await _call(endpoint, stub.ListSilences, request)
        silences.extend(response.silences)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    silences = silences[: args.limit]
    if args.json:
        out.write(json.dumps([_dict(s) for s in silences]) + "\n")
    elif silences:
        table(SILENCE_HEADERS, [_silence_row(s) for s in silences], out)
    else:
        out.write("no silences\n")
    return 0


async def cmd_silence_expire(args: argparse.Namespace, stub: Stub, endpoint: Endpoint, out: TextIO) -> int:
    request = api.ExpireSilenceRequest(silence_id=args.id, actor=args.actor or "", reason=args.reason)
    silence = (await _call(endpoint, stub.ExpireSilence, request)).silence
    if args.json:
        out.write(json.dumps(_dict(silence)) + "\n")
    else:
        table(SILENCE_HEADERS, [_silence_row(silence)], out)
    return 0


Command = Callable[[argparse.Namespace, Stub, Endpoint, TextIO], Awaitable[int]]


def run(args: argparse.Namespace) -> int:
    """Run one incident-manager subcommand; gRPC and input errors exit 1 with the message."""
    endpoint = endpoint_from_env(args.target, ADDR_ENV, DEFAULT_ADDR, args.api_key, args.tenant)
    command: Command = args.incident_command
    name = args.command_name

    async def main() -> int:
        channel = endpoint.channel()
        task = asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
        try:
            return await command(
                args, incident_service_pb2_grpc.IncidentServiceStub(channel), endpoint, sys.stdout
            )
        except asyncio.CancelledError:
            return 0
        finally:
            await channel.close()

    try:
        return asyncio.run(main())
    except UsageError as exc:
        print(f"sentinel {name}: {exc}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"sentinel {name}: {error_text(exc)}", file=sys.stderr)
        return 1


# --- argument parsers ------------------------------------------------------------------------


def add_commands(commands: Any, connection_flags: ConnectionFlags) -> None:
    """Register `alert`, `incidents` and `silences` on the `sentinel` subparsers."""

    def leaf(parent: Any, name: str, help_text: str, command: Command, *, actor: bool = False,
             label: str | None = None) -> argparse.ArgumentParser:  # fmt: skip
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        parser.set_defaults(handler=run, incident_command=command, command_name=label or name)
        parser.add_argument("--json", action="store_true", help="JSON instead of tables")
        if actor:
            parser.add_argument(
                "--actor", default=os.environ.get("USER", ""), help="who does it (default $USER)"
            )
        connection_flags(parser, ADDR_ENV)
        return parser

    alert = leaf(commands, "alert", "report an alert to the incident manager", cmd_alert)
    alert.add_argument("--title", required=True, help="short summary")
    alert.add_argument("--severity", choices=SEVERITIES, help="default medium")
    alert.add_argument("--service")
    alert.add_argument("--model")
    alert.add_argument("--type", help="alert type, e.g. latency_spike")
    alert.add_argument("--description")
    alert.add_argument("--label", action="append", default=[], metavar="K=V", help="repeatable")
    alert.add_argument("--annotation", action="append", default=[], metavar="K=V", help="repeatable")
    alert.add_argument("--dedup-key", help="your own deduplication key")
    alert.add_argument("--url", help="link back to the source")
    alert.add_argument("--resolve", action="store_true", help="report the alert as resolved")

    incidents = commands.add_parser("incidents", help="list, inspect and act on incidents")
    sub = incidents.add_subparsers(dest="incidents_command", required=True)

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state", action="append", default=[], choices=STATES, help="repeatable")
        parser.add_argument("--severity", action="append", default=[], choices=SEVERITIES, help="repeatable")
        parser.add_argument("--service")
        parser.add_argument("--model")
        parser.add_argument("--matcher", action="append", default=[], help="label matcher, e.g. env=prod")

    listing = leaf(sub, "list", "incidents matching filters, newest first", cmd_list, label="incidents list")
    filters(listing)
    listing.add_argument("--text", help="free-text search in title and description")
    listing.add_argument("--assignee")
    listing.add_argument("--limit", type=int, default=50)

    get = leaf(sub, "get", "one incident with its alerts and timeline", cmd_get, label="incidents get")
    get.add_argument("id")

    for action, help_text in (("ack", "acknowledge"), ("resolve", "resolve"), ("reopen", "reopen")):
        parser = leaf(
            sub, action, f"{help_text} an incident", cmd_change, actor=True, label=f"incidents {action}"
        )
        parser.add_argument("id")
        parser.add_argument("--reason", default="")
        parser.set_defaults(action=action)
    note = leaf(sub, "note", "add a note to the timeline", cmd_change, actor=True, label="incidents note")
    note.add_argument("id")
    note.add_argument("text")
    note.set_defaults(action="note")
    assign = leaf(sub, "assign", "replace the assignees", cmd_change, actor=True, label="incidents assign")
    assign.add_argument("id")
    assign.add_argument("users", nargs="+", metavar="USER")
    assign.add_argument("--reason", default="")
    assign.set_defaults(action="assign")

    watch = leaf(sub, "watch", "stream incident changes", cmd_watch, label="incidents watch")
    filters(watch)
    watch.add_argument("--id", action="append", default=[], help="only this incident (repeatable)")
    watch.add_argument("--count", type=int, default=0, help="stop after this many changes")

    silences = commands.add_parser("silences", help="mute matching alerts for a while")
    silence_sub = silences.add_subparsers(dest="silences_command", required=True)
    add = leaf(silence_sub, "add", "create a silence", cmd_silence_add, label="silences add")
    add.add_argument("--matcher", action="append", default=[], help="k=v, k!=v, k=~re, k!~re (repeatable)")
    add.add_argument("--duration", default="2h", help="e.g. 30m, 2h, 1d (default 2h)")
    add.add_argument("--comment", required=True)
    add.add_argument("--author", "--actor", dest="actor", default=os.environ.get("USER", ""),
                     help="who creates it (default $USER)")  # fmt: skip
    add.add_argument("--maintenance", action="store_true", help="a planned maintenance window")
    silence_list = leaf(
        silence_sub, "list", "silences, newest first", cmd_silence_list, label="silences list"
    )
    silence_list.add_argument("--state", action="append", default=[], choices=SILENCE_STATES)
    silence_list.add_argument("--limit", type=int, default=100)
    expire = leaf(silence_sub, "expire", "end a silence now", cmd_silence_expire, actor=True,
                  label="silences expire")  # fmt: skip
    expire.add_argument("id")
    expire.add_argument("--reason", default="")
