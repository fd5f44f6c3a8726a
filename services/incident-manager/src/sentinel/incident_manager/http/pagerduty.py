"""PagerDuty Events API v2: `POST /v2/enqueue` trigger / acknowledge / resolve by dedup_key."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from sentinel.incident_manager.domain.fingerprint import fingerprint
from sentinel.incident_manager.domain.model import AlertInput, AlertSource, AlertStatus, Severity
from sentinel.incident_manager.http import parse
from sentinel.incident_manager.http.server import CONTEXT, Context, read_json
from sentinel.incident_manager.ports import AlertQuery
from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError

SEVERITIES = {
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.INFO,
}
ACTIONS = ("trigger", "acknowledge", "resolve")


def add_routes(app: web.Application) -> None:
    """Install the PagerDuty endpoint."""
    app.router.add_post("/v2/enqueue", enqueue)


def _accepted(dedup_key: str) -> web.Response:
    return web.json_response(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status=202
    )


async def enqueue(request: web.Request) -> web.Response:
    """One event. The routing_key authenticates when no `Authorization` header is sent."""
    context = request.app[CONTEXT]
    body = parse.obj(await read_json(request), "body")
    routing_key = parse.text(body, "routing_key", "routing_key", required=True)
    tenant = context.tenant(request, fallback_key=routing_key)
    action = parse.text(body, "event_action", "event_action", required=True)
    if action not in ACTIONS:
        raise InvalidArgumentError("event_action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    dedup_key = parse.text(body, "dedup_key", "dedup_key")
    if action == "trigger":
        return await _trigger(context, tenant, body, dedup_key or uuid.uuid4().hex)
    if not dedup_key:
        raise InvalidArgumentError("dedup_key", f"is required to {action}")
    if action == "acknowledge":
        incident_id = await _incident_of(context, tenant, dedup_key)
        await context.service.acknowledge(
            tenant=tenant, incident_id=incident_id, actor="pagerduty", reason="PagerDuty acknowledge event"
        )
        return _accepted(dedup_key)
    # resolve: the alert resolves through the same path as any source's; its incident resolves
    # when no other alert of it still fires.
    await _incident_of(context, tenant, dedup_key)
    await context.service.report_alerts(
        tenant=tenant,
        alerts=[
            AlertInput(source=AlertSource.PAGERDUTY, dedup_key=dedup_key, status=int(AlertStatus.RESOLVED))
        ],
    )
    return _accepted(dedup_key)


async def _trigger(context: Context, tenant: str, body: dict[str, Any], dedup_key: str) -> web.Response:
    payload = parse.obj(body.get("payload"), "payload")
    summary = parse.text(payload, "summary", "payload.summary", required=True)
    source = parse.text(payload, "source", "payload.source", required=True)
    severity_name = parse.text(payload, "severity", "payload.severity", required=True)
    severity = SEVERITIES.get(severity_name)
    if severity is None:
        raise InvalidArgumentError(
            "payload.severity", f"{severity_name!r} is not one of {', '.join(SEVERITIES)}"
        )
    component = parse.text(payload, "component", "payload.component")
    group = parse.text(payload, "group", "payload.group")
    event_class = parse.text(payload, "class", "payload.class")
    details = payload.get("custom_details")
    annotations: dict[str, str] = {}
    if isinstance(details, dict):
        annotations = {
            str(key): value if isinstance(value, str) else json.dumps(value) for key, value in details.items()
        }
    elif details is not None:
        annotations = {"details": details if isinstance(details, str) else json.dumps(details)}
    labels = {
        name: value
        for name, value in (
            ("host", source),
            ("component", component),
            ("group", group),
            ("class", event_class),
        )
        if value
    }
    client_url = parse.text(body, "client_url", "client_url")
    await context.service.report_alerts(
        tenant=tenant,
        alerts=[
            AlertInput(
                source=AlertSource.PAGERDUTY,
                dedup_key=dedup_key,
                title=summary[:1024],
                severity=int(severity),
                alert_type=event_class or "pagerduty_event",
                service=component,
                labels=labels,
                annotations=annotations,
                status=int(AlertStatus.FIRING),
                start_time=parse.timestamp(payload, "timestamp", "payload.timestamp"),
                generator_url=client_url,
            )
        ],
    )
    return _accepted(dedup_key)


async def _incident_of(context: Context, tenant: str, dedup_key: str) -> str:
    """The incident of the alert triggered with `dedup_key`."""
    page = await context.service.list_alerts(
        tenant=tenant,
        query=AlertQuery(
            fingerprint=fingerprint(
                source=AlertSource.PAGERDUTY,
                alert_type="",
                service="",
                model="",
                labels={},
                dedup_key=dedup_key,
            ),
            page_size=1,
        ),
    )
    if not page.items:
        raise NotFoundError(f"dedup_key: no event was triggered with {dedup_key!r}", reason="ALERT_NOT_FOUND")
    alert = page.items[0]
    if not alert.incident_id:
        raise FailedPreconditionError(f"dedup_key: the alert {dedup_key!r} has no incident yet")
    return alert.incident_id
