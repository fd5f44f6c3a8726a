# ruff: noqa: F811  (fixtures imported from tests/support/incident_http.py)
"""HTTP receivers against real clients: Alertmanager (webhook), amtool (API v2), PagerDuty Events v2."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from incident_http import (  # noqa: F401  (fixtures)
    TEAM_KEY,
    TEAM_TENANT,
    Alertmanager,
    HttpIncidents,
    alertmanager,
    alertmanager_binaries,
    http_incidents,
    keyed_incidents,
    run_amtool,
    start_incidents,
    stop_incidents,
)

from sentinel.incident_manager.domain.model import Incident, IncidentState
from sentinel.incident_manager.ports import IncidentQuery

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 20) -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await probe()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def incidents_of(running: HttpIncidents, tenant: str, **query: Any) -> list[Incident]:
    page = await running.manager.service.list_incidents(tenant=tenant, query=IncidentQuery(**query))
    return page.items


async def send(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            data=raw if raw is not None else json.dumps(body) if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response,
    ):
        text = await response.text()
        parsed = json.loads(text) if text and response.content_type == "application/json" else text
        return response.status, parsed, dict(response.headers)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- Alertmanager webhook


async def test_alertmanager_webhook_opens_and_resolves_incidents(
    alertmanager: Alertmanager, keyed_incidents: HttpIncidents
) -> None:
    labels = {"alertname": "HighLatency", "service": "chat-api", "severity": "critical", "env": "prod"}
    start = datetime.now(UTC) - timedelta(seconds=30)
    firing = [{"labels": labels, "annotations": {"summary": "p99 over 2s"}, "startsAt": rfc3339(start)}]
    status, _, _ = await send("POST", f"{alertmanager.url}/api/v2/alerts", firing)
    assert status == 200

    async def opened() -> Incident | None:
        found = await incidents_of(keyed_incidents, TEAM_TENANT, service="chat-api")
        return found[0] if found else None

    incident = await eventually(opened)
    assert incident.state is IncidentState.TRIGGERED
    assert incident.title == "p99 over 2s"
    assert incident.severity.name == "CRITICAL"
    assert incident.incident_type == "HighLatency"

    resolved = [{**firing[0], "endsAt": rfc3339(datetime.now(UTC))}]
    status, _, _ = await send("POST", f"{alertmanager.url}/api/v2/alerts", resolved)
    assert status == 200

    async def resolved_incident() -> Incident | None:
        current = await keyed_incidents.manager.service.get_incident(
            tenant=TEAM_TENANT, incident_id=incident.incident_id
        )
        return current if current.state is IncidentState.RESOLVED else None

    assert (await eventually(resolved_incident)).resolve_time is not None
    assert "status=200" in alertmanager.log.read_text() or "Notify success" in alertmanager.log.read_text()


async def test_webhook_refuses_other_versions_missing_keys_and_bad_fields(
    keyed_incidents: HttpIncidents,
) -> None:
    url = f"{keyed_incidents.url}/api/v1/alertmanager"
    auth = {"Authorization": f"Bearer {TEAM_KEY}"}
    good_alert = {"status": "firing", "labels": {"alertname": "X"}, "startsAt": rfc3339(datetime.now(UTC))}

    status, body, _ = await send("POST", url, {"version": "4", "alerts": [good_alert]})
    assert status == 401 and "API key" in body["error"]
    status, body, _ = await send(
        "POST", url, {"version": "4", "alerts": [good_alert]}, headers={"Authorization": "Bearer nope"}
    )
    assert status == 401 and body["error"] == "unknown API key"

    status, body, _ = await send("POST", url, {"version": "3", "alerts": [good_alert]}, headers=auth)
    assert status == 400 and body["field"] == "version"
    status, body, _ = await send(
        "POST", url, {"version": "4", "alerts": [{**good_alert, "labels": None}]}, headers=auth
    )
    assert status == 400 and body["field"] == "alerts[0].labels" and "required" in body["error"]
    status, body, _ = await send(
        "POST", url, {"version": "4", "alerts": [{**good_alert, "startsAt": "yesterday"}]}, headers=auth
    )
    assert status == 400 and body["field"] == "alerts[0].startsAt"
    status, body, _ = await send("POST", url, raw=b"{not json", headers=auth)
    assert status == 400 and body["field"] == "body"

    # One bad alert does not sink the group: the good one is recorded, the bad one is named.
    status, body, _ = await send(
        "POST",
        url,
        {"version": "4", "alerts": [good_alert, {"status": "pending", "labels": {"a": "b"}}]},
        headers=auth,
    )
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == ["new_incident"]
    assert body["errors"] == [
        {"index": 1, "field": "alerts[1].status", "error": "'pending' is not 'firing' or 'resolved'"}
    ]


async def test_oversize_body_is_413(keyed_incidents: HttpIncidents) -> None:
    huge = b'{"version": "4", "alerts": [' + b" " * (2 * 1024 * 1024) + b"]}"
    status, body, _ = await send(
        "POST",
        f"{keyed_incidents.url}/api/v1/alertmanager",
        raw=huge,
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
    )
    assert status == 413 and "limit" in body["error"]


# ---------------------------------------------------------------- API v2 with amtool


async def test_amtool_adds_and_lists_alerts_and_silences(
    alertmanager_binaries: tuple[str, str], http_incidents: HttpIncidents
) -> None:
    _, amtool = alertmanager_binaries
    url = http_incidents.url
    amt = lambda *args: asyncio.to_thread(run_amtool, amtool, url, *args)  # noqa: E731

    await amt(
        "alert",
        "add",
        "alertname=DiskFull",
        "service=db",
        "severity=warning",
        "--annotation=summary=disk 95%",
    )
    listed = json.loads(await amt("-o", "json", "alert", "query"))
    assert [a["labels"]["alertname"] for a in listed] == ["DiskFull"]
    assert listed[0]["annotations"] == {"summary": "disk 95%"}
    ends = datetime.fromisoformat(listed[0]["endsAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=4) < ends - datetime.now(UTC) <= timedelta(minutes=5, seconds=5)
    [incident] = await incidents_of(http_incidents, "default", service="db")
    assert incident.state is IncidentState.TRIGGERED and incident.severity.name == "MEDIUM"

    silence_id = (
        await amt(
            "silence",
            "add",
            'service=~"db|cache"',
            "alertname!=Other",
            "-c",
            "db maintenance",
            "-a",
            "alice",
            "-d",
            "1h",
        )
    ).strip()
    assert silence_id.startswith("sil_")
    silences = json.loads(await amt("-o", "json", "silence", "query"))
    [silence] = [s for s in silences if s["id"] == silence_id]
    assert silence["status"]["state"] == "active"
    assert silence["createdBy"] == "alice" and silence["comment"] == "db maintenance"
    assert sorted((m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]) == [
        ("alertname", "Other", False, False),
        ("service", "db|cache", True, True),
    ]
    assert json.loads(await amt("-o", "json", "silence", "query", "service=db|cache")) != []

    # A new alert the regex silence matches is recorded, but suppressed by that silence.
    await amt("alert", "add", "alertname=CacheEvictions", "service=cache")
    silenced = json.loads(await amt("-o", "json", "alert", "query", "--silenced", "alertname=CacheEvictions"))
    assert [a["status"]["silencedBy"] for a in silenced] == [[silence_id]]
    assert silenced[0]["status"]["state"] == "suppressed"
    unsilenced = json.loads(await amt("-o", "json", "alert", "query", "alertname=CacheEvictions"))
    assert unsilenced == []

    await amt("silence", "expire", silence_id)
    assert all(s["id"] != silence_id for s in json.loads(await amt("-o", "json", "silence", "query")))
    expired = json.loads(await amt("-o", "json", "silence", "query", "--expired"))
    assert [s["status"]["state"] for s in expired if s["id"] == silence_id] == ["expired"]


async def test_api_v2_resend_refreshes_ends_at_and_past_ends_at_resolves(
    http_incidents: HttpIncidents,
) -> None:
    url = f"{http_incidents.url}/api/v2/alerts"
    alert = {"labels": {"alertname": "QueueDepth", "service": "worker"}}
    assert (await send("POST", url, [alert]))[0] == 200
    [first] = (await send("GET", url))[1]
    await asyncio.sleep(1.1)
    assert (await send("POST", url, [alert]))[0] == 200
    [second] = (await send("GET", url))[1]
    assert second["fingerprint"] == first["fingerprint"]
    assert second["endsAt"] > first["endsAt"]
    [incident] = await incidents_of(http_incidents, "default", service="worker")
    assert incident.alert_count == 1

    ended = {**alert, "endsAt": rfc3339(datetime.now(UTC) - timedelta(seconds=1))}
    assert (await send("POST", url, [ended]))[0] == 200
    assert (await send("GET", url))[1] == []
    current = await http_incidents.manager.service.get_incident(
        tenant="default", incident_id=incident.incident_id
    )
    assert current.state is IncidentState.RESOLVED

    status, body, _ = await send("POST", url, [{"labels": {}}])
    assert status == 400 and body["field"] == "alerts[0].labels"
    status, body, _ = await send("POST", url, {"labels": {"a": "b"}})
    assert status == 400 and body["field"] == "body" and "array" in body["error"]
    status, body, _ = await send(
        "POST",
        f"{http_incidents.url}/api/v2/silences",
        {
            "matchers": [{"name": "a", "value": "(", "isRegex": True}],
            "endsAt": rfc3339(datetime.now(UTC) + timedelta(hours=1)),
            "createdBy": "me",
            "comment": "x",
        },
    )
    assert (
        status == 400
        and body["field"] == "silence.matchers[0].value"
        and "regular expression" in body["error"]
    )
    status, body, _ = await send("DELETE", f"{http_incidents.url}/api/v2/silence/sil_missing")
    assert status == 404


async def test_tenant_header_separates_tenants(http_incidents: HttpIncidents) -> None:
    url = f"{http_incidents.url}/api/v2/alerts"
    alert = {"labels": {"alertname": "Tenanted", "service": "billing"}}
    assert (await send("POST", url, [alert], headers={"X-Sentinel-Tenant": "acme"}))[0] == 200
    assert len((await send("GET", url, headers={"X-Sentinel-Tenant": "acme"}))[1]) == 1
    assert (await send("GET", url))[1] == []


# ---------------------------------------------------------------- PagerDuty Events v2


async def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(keyed_incidents: HttpIncidents) -> None:
    url = f"{keyed_incidents.url}/v2/enqueue"
    # PagerDuty senders carry only the routing_key: it authenticates like a bearer key.
    trigger = {
        "routing_key": TEAM_KEY,
        "event_action": "trigger",
        "dedup_key": "disk-full-db-1",
        "payload": {
            "summary": "Disk full on db-1",
            "source": "db-1",
            "severity": "error",
            "component": "postgres",
            "custom_details": {"free_bytes": 0},
        },
    }
    status, body, _ = await send("POST", url, trigger)
    assert (status, body["status"], body["dedup_key"]) == (202, "success", "disk-full-db-1")
    [incident] = await incidents_of(keyed_incidents, TEAM_TENANT, service="postgres")
    assert incident.state is IncidentState.TRIGGERED and incident.title == "Disk full on db-1"
    assert incident.severity.name == "HIGH"

    status, body, _ = await send("POST", url, trigger)
    assert status == 202
    [again] = await incidents_of(keyed_incidents, TEAM_TENANT, service="postgres")
    assert again.incident_id == incident.incident_id

    ack = {"routing_key": TEAM_KEY, "event_action": "acknowledge", "dedup_key": "disk-full-db-1"}
    status, body, _ = await send("POST", url, ack)
    assert (status, body["dedup_key"]) == (202, "disk-full-db-1")
    get = keyed_incidents.manager.service.get_incident
    assert (
        await get(tenant=TEAM_TENANT, incident_id=incident.incident_id)
    ).state is IncidentState.ACKNOWLEDGED

    status, body, _ = await send("POST", url, {**ack, "event_action": "resolve"})
    assert (status, body["dedup_key"]) == (202, "disk-full-db-1")
    assert (await get(tenant=TEAM_TENANT, incident_id=incident.incident_id)).state is IncidentState.RESOLVED

    # A trigger without dedup_key gets one, and it resolves the incident it opened.
    status, body, _ = await send(
        "POST", url, {**trigger, "dedup_key": None, "payload": {**trigger["payload"], "component": "redis"}}
    )
    assert status == 202 and body["dedup_key"]
    status, _, _ = await send("POST", url, {**ack, "event_action": "resolve", "dedup_key": body["dedup_key"]})
    assert status == 202


async def test_pagerduty_bad_events_name_the_field(keyed_incidents: HttpIncidents) -> None:
    url = f"{keyed_incidents.url}/v2/enqueue"
    base = {
        "routing_key": TEAM_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "h", "severity": "error"},
    }
    cases = [
        ({**base, "routing_key": "wrong"}, 401, None),
        ({k: v for k, v in base.items() if k != "routing_key"}, 400, "routing_key"),
        ({**base, "event_action": "snooze"}, 400, "event_action"),
        ({**base, "payload": {**base["payload"], "severity": "disaster"}}, 400, "payload.severity"),
        ({**base, "payload": {"source": "h", "severity": "info"}}, 400, "payload.summary"),
        ({**base, "payload": "text"}, 400, "payload"),
        ({**base, "event_action": "acknowledge"}, 400, "dedup_key"),
        ({**base, "event_action": "acknowledge", "dedup_key": "never-triggered"}, 404, None),
    ]
    for event, expected, field in cases:
        status, body, _ = await send("POST", url, event)
        assert status == expected, (event, body)
        if field is not None:
            assert body["field"] == field, body
        assert body["message"]


# ---------------------------------------------------------------- overload


async def test_overload_answers_503_with_retry_after_and_drops_nothing_it_accepted(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> None:
    # The real service, admitting one request at a time: a burst of posts overloads it for real.
    running = await start_incidents(postgres_dsn, redis_url, redis_namespace, http_max_in_flight=1)
    url = f"{running.url}/api/v2/alerts"
    try:
        posts = [
            [{"labels": {"alertname": "Burst", "service": f"svc-{n}-{i}"}} for i in range(40)]
            for n in range(10)
        ]
        answers = await asyncio.gather(*(send("POST", url, alerts) for alerts in posts))

        refused = [(status, body, headers) for status, body, headers in answers if status == 503]
        assert refused, "a burst over the admission limit must be refused"
        for _, body, headers in refused:
            assert headers["Retry-After"] == "1" and "overloaded" in body["error"]
        health, _, _ = await send("GET", url.replace("/api/v2/alerts", "/-/healthy"))
        assert health == 200
        # Every accepted post was recorded in full; every refused one not at all.
        accepted = {n for n, (status, _, _) in enumerate(answers) if status == 200}
        assert accepted and len(accepted) + len(refused) == len(posts)
        services = {i.service for i in await incidents_of(running, "default", page_size=500)}
        assert services == {f"svc-{n}-{i}" for n in accepted for i in range(40)}
    finally:
        await stop_incidents(running)
