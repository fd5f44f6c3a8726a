"""Alertmanager compatibility: the webhook receiver (version 4) and API v2 alerts and silences."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from sentinel.incident_manager.domain.model import (
    Alert,
    AlertInput,
    AlertSource,
    AlertStatus,
    LabelMatcher,
    Severity,
    Silence,
)
from sentinel.incident_manager.domain.silences import matches_all, validate_matchers
from sentinel.incident_manager.http import parse
from sentinel.incident_manager.http.server import CONTEXT, Context, read_json
from sentinel.incident_manager.ports import AlertQuery
from sentinel.incident_manager.service import ReportOutcome
from sentinel.runtime.errors import InvalidArgumentError

#: A posted alert without endsAt fires this long unless posted again (Alertmanager's resolve_timeout).
DEFAULT_RESOLVE_TIMEOUT = timedelta(minutes=5)
WEBHOOK_VERSION = "4"
_MAX_PAGES = 20

#: The `severity` label values Alertmanager users write, mapped to Sentinel severities;
#: other values leave the default severity (the label itself is kept).
SEVERITY_LABELS = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "minor": Severity.LOW,
    "low": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
}


def add_routes(app: web.Application) -> None:
    """Install the Alertmanager endpoints."""
    app.router.add_post("/api/v1/alertmanager", webhook)
    app.router.add_post("/api/v2/alerts", post_alerts)
    app.router.add_get("/api/v2/alerts", get_alerts)
    app.router.add_get("/api/v2/silences", get_silences)
    app.router.add_post("/api/v2/silences", post_silence)
    app.router.add_get("/api/v2/silence/{silence_id}", get_silence)
    app.router.add_delete("/api/v2/silence/{silence_id}", delete_silence)


def alert_input(
    body: dict[str, Any],
    field: str,
    *,
    status: AlertStatus,
    end_time: datetime | None,
    start: datetime | None,
) -> AlertInput:
    """An Alertmanager alert (labels/annotations/generatorURL) as a Sentinel alert."""
    labels = parse.string_map(body.get("labels"), f"{field}.labels", required=True)
    annotations = parse.string_map(body.get("annotations"), f"{field}.annotations")
    severity = SEVERITY_LABELS.get(labels.get("severity", "").strip().lower())
    return AlertInput(
        source=AlertSource.ALERTMANAGER,
        title=annotations.get("summary") or annotations.get("title") or "",
        description=annotations.get("description") or annotations.get("message") or "",
        severity=int(severity) if severity is not None else 0,
        alert_type=labels.get("alertname", ""),
        service=labels.get("service", ""),
        model=labels.get("model", ""),
        labels=labels,
        annotations=annotations,
        status=int(status),
        start_time=start,
        end_time=end_time,
        generator_url=parse.text(body, "generatorURL", f"{field}.generatorURL"),
    )


def _report_body(outcome: ReportOutcome) -> dict[str, Any]:
    return {
        "status": "success",
        "results": [
            {
                "index": result.index,
                "fingerprint": result.alert.fingerprint,
                "incidentId": result.alert.incident_id,
                "outcome": result.outcome.name.lower(),
                "silencedBy": list(result.silence_ids),
            }
            for result in outcome.results
        ],
        "errors": [
            {"index": error.index, "field": f"alerts[{error.index}].{error.field}", "error": error.reason}
            for error in outcome.errors
        ],
    }


async def webhook(request: web.Request) -> web.Response:
    """`POST /api/v1/alertmanager`: one notification (one group) of a webhook receiver."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    body = parse.obj(await read_json(request), "body")
    version = body.get("version")
    if version != WEBHOOK_VERSION:
        raise InvalidArgumentError("version", f"{version!r} is not supported (expected {WEBHOOK_VERSION!r})")
    raw_alerts = parse.array(body.get("alerts"), "alerts")
    alerts: list[AlertInput | InvalidArgumentError] = []
    for index, raw in enumerate(raw_alerts):
        field = f"alerts[{index}]"
        try:
            item = parse.obj(raw, field)
            state = parse.text(item, "status", f"{field}.status", required=True)
            if state not in ("firing", "resolved"):
                raise InvalidArgumentError(f"{field}.status", f"{state!r} is not 'firing' or 'resolved'")
            resolved = state == "resolved"
            start = parse.timestamp(item, "startsAt", f"{field}.startsAt")
            end = parse.timestamp(item, "endsAt", f"{field}.endsAt")
            alerts.append(
                alert_input(
                    item,
                    field,
                    status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                    # A firing alert's endsAt in a notification is a guess of Alertmanager's own.
                    end_time=end if resolved else None,
                    start=start,
                )
            )
        except InvalidArgumentError as bad:
            alerts.append(_relative(bad, field))
    outcome = await context.service.report_alerts(tenant=tenant, alerts=alerts)
    return web.json_response(_report_body(outcome))


async def post_alerts(request: web.Request) -> web.Response:
    """`POST /api/v2/alerts`: firing (endsAt unset or ahead) and resolved (endsAt past) alerts."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    raw_alerts = parse.array(await read_json(request), "body")
    now = context.clock.now()
    alerts: list[AlertInput | InvalidArgumentError] = []
    for index, raw in enumerate(raw_alerts):
        field = f"alerts[{index}]"
        try:
            item = parse.obj(raw, field)
            start = parse.timestamp(item, "startsAt", f"{field}.startsAt")
            end = parse.timestamp(item, "endsAt", f"{field}.endsAt")
            if start is not None and end is not None and end < start:
                raise InvalidArgumentError(f"{field}.endsAt", "must not be before startsAt")
            resolved = end is not None and end <= now
            if resolved and start is None:
                start = end  # a resolution of an alert posted before, without its start
            alerts.append(
                alert_input(
                    item,
                    field,
                    status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                    end_time=end or now + DEFAULT_RESOLVE_TIMEOUT,
                    start=start,
                )
            )
        except InvalidArgumentError as bad:
            alerts.append(_relative(bad, field))
    outcome = await context.service.report_alerts(tenant=tenant, alerts=alerts)
    if outcome.errors:
        first = outcome.errors[0]
        raise InvalidArgumentError(
            f"alerts[{first.index}].{first.field}",
            f"{first.reason} ({len(outcome.errors)} of {len(raw_alerts)} alerts rejected; the others were"
            " recorded)",
        )
    return web.json_response(_report_body(outcome))


def _relative(bad: InvalidArgumentError, field: str) -> InvalidArgumentError:
    """An error naming a field inside alert `field`, as the report's per-alert errors expect."""
    prefix = field + "."
    inner = bad.field[len(prefix) :] if bad.field.startswith(prefix) else bad.field
    return InvalidArgumentError(inner or "alert", bad.problem)


def _query_matchers(request: web.Request) -> tuple[LabelMatcher, ...]:
    matchers = tuple(
        parse.filter_matcher(value, f"filter[{index}]")
        for index, value in enumerate(request.query.getall("filter", []))
    )
    limits = request.app[CONTEXT].service.limits
    validate_matchers(matchers, "filter", required=False, limits=limits)
    return matchers


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgumentError(name, f"{value!r} is not true or false")


def _gettable_alert(alert: Alert) -> dict[str, Any]:
    silenced = list(alert.silenced_by)
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": parse.rfc3339(alert.start_time),
        "endsAt": parse.rfc3339(alert.end_time),
        "updatedAt": parse.rfc3339(alert.last_seen_time),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
        "receivers": [{"name": "sentinel"}],
        "status": {
            "state": "suppressed" if silenced else "active",
            "silencedBy": silenced,
            "inhibitedBy": [],
        },
    }


async def get_alerts(request: web.Request) -> web.Response:
    """`GET /api/v2/alerts`: the firing alerts, filtered like Alertmanager's (`filter`, `silenced`)."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    matchers = _query_matchers(request)
    active = _flag(request, "active", True)
    silenced = _flag(request, "silenced", True)
    now = context.clock.now()
    found: list[dict[str, Any]] = []
    token = ""
    for _ in range(_MAX_PAGES):
        page = await context.service.list_alerts(
            tenant=tenant,
            query=AlertQuery(
                statuses=(AlertStatus.FIRING,), matchers=matchers, page_size=500, page_token=token
            ),
        )
        for alert in page.items:
            if alert.end_time is not None and alert.end_time <= now:
                continue
            if (alert.silenced_by and not silenced) or (not alert.silenced_by and not active):
                continue
            if matches_all(matchers, alert.labels):
                found.append(_gettable_alert(alert))
        token = page.next_page_token
        if not token:
            break
    return web.json_response(found)


def _silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": silence.silence_id,
        "status": {"state": silence.state(now).name.lower()},
        "updatedAt": parse.rfc3339(silence.update_time or silence.create_time or silence.start_time),
        "matchers": [parse.api_matcher_json(m) for m in silence.matchers],
        "startsAt": parse.rfc3339(silence.start_time),
        "endsAt": parse.rfc3339(silence.end_time),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    }


async def get_silences(request: web.Request) -> web.Response:
    """`GET /api/v2/silences`: every silence, or those whose matchers satisfy every `filter`."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    matchers = _query_matchers(request)
    now = context.clock.now()
    found: list[dict[str, Any]] = []
    token = ""
    for _ in range(_MAX_PAGES):
        page = await context.service.list_silences(tenant=tenant, page_size=500, page_token=token)
        for silence in page.items:
            # Alertmanager's rule: a filter sees a silence as the labels its matchers name.
            if matches_all(matchers, {m.name: m.value for m in silence.matchers}):
                found.append(_silence_json(silence, now))
        token = page.next_page_token
        if not token:
            break
    return web.json_response(found)


async def post_silence(request: web.Request) -> web.Response:
    """`POST /api/v2/silences`: create a silence, or replace the one named by `id` (Alertmanager's update)."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    body = parse.obj(await read_json(request), "body")
    raw_matchers = parse.array(body.get("matchers"), "matchers")
    if not raw_matchers:
        raise InvalidArgumentError("matchers", "at least one matcher is required")
    matchers = [parse.api_matcher(raw, f"matchers[{index}]") for index, raw in enumerate(raw_matchers)]
    start = parse.timestamp(body, "startsAt", "startsAt")
    end = parse.timestamp(body, "endsAt", "endsAt")
    if end is None:
        raise InvalidArgumentError("endsAt", "is required")
    created_by = parse.text(body, "createdBy", "createdBy", required=True)
    comment = parse.text(body, "comment", "comment", required=True)
    replaced = parse.text(body, "id", "id")
    if replaced:
        await context.service.get_silence(tenant=tenant, silence_id=replaced)
    silence = await context.service.create_silence(
        tenant=tenant,
        matchers=matchers,
        start_time=start,
        end_time=end,
        comment=comment,
        actor=created_by,
    )
    if replaced:
        await context.service.expire_silence(
            tenant=tenant, silence_id=replaced, actor=created_by, reason=f"replaced by {silence.silence_id}"
        )
    return web.json_response({"silenceID": silence.silence_id})


async def get_silence(request: web.Request) -> web.Response:
    """`GET /api/v2/silence/{id}`."""
    context = request.app[CONTEXT]
    tenant = context.tenant(request)
    silence = await context.service.get_silence(tenant=tenant, silence_id=request.match_info["silence_id"])
    return web.json_response(_silence_json(silence, context.clock.now()))


async def delete_silence(request: web.Request) -> web.Response:
    """`DELETE /api/v2/silence/{id}`: expire it now."""
    context: Context = request.app[CONTEXT]
    tenant = context.tenant(request)
    await context.service.expire_silence(tenant=tenant, silence_id=request.match_info["silence_id"])
    return web.Response(status=200)
