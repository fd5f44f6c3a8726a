"""Validation and normalisation of incoming alerts: `AlertInput` → a candidate `Alert`.

Every problem raises `InvalidArgumentError` naming the field inside the alert (e.g. "severity",
"labels.env"), so a batch can report it per alert and a single alert can fail with it.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import TypeVar, cast

from sentinel.incident_manager.domain.fingerprint import alert_id_for, fingerprint, group_key
from sentinel.incident_manager.domain.model import (
    Alert,
    AlertInput,
    AlertSource,
    AlertStatus,
    Labels,
    Priority,
    Severity,
    alert_matcher_labels,
)
from sentinel.incident_manager.domain.policy import IncidentPolicy, Limits
from sentinel.incident_manager.domain.severity import DEFAULT_SEVERITY, priority_for
from sentinel.runtime.errors import InvalidArgumentError

E = TypeVar("E", Severity, Priority, AlertSource, AlertStatus)


def _enum_value(kind: type[E], raw: int, field: str) -> E | None:
    if raw == 0:
        return None
    # The value map, not kind(raw): Enum's call machinery costs a microsecond, four times per alert.
    member = kind._value2member_map_.get(raw)
    if member is not None:
        return cast(E, member)
    names = ", ".join(m.name for m in kind)
    raise InvalidArgumentError(field, f"unknown value {raw} (expected one of {names})")


def _text(value: str, field: str, *, max_len: int, required: bool = False) -> str:
    if required and not value.strip():
        raise InvalidArgumentError(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidArgumentError(field, f"{len(value)} characters exceed the limit of {max_len}")
    return value


def _labels(labels: Labels, field: str, *, max_entries: int, max_key: int, max_value: int) -> dict[str, str]:
    if len(labels) > max_entries:
        raise InvalidArgumentError(field, f"{len(labels)} entries exceed the limit of {max_entries}")
    for key, value in labels.items():
        if not key or len(key) > max_key:
            raise InvalidArgumentError(f"{field}.{key[:50]}", f"key must be 1..{max_key} characters")
        if len(value) > max_value:
            raise InvalidArgumentError(f"{field}.{key}", f"value exceeds {max_value} characters")
    return dict(labels)


def _time(
    value: datetime | None, field: str, *, now: datetime, ahead: timedelta, limits: Limits
) -> datetime | None:
    if value is None:
        return None
    if value > now + ahead:
        raise InvalidArgumentError(field, f"{value.isoformat()} lies more than {ahead} ahead")
    if value < now - limits.max_past:
        raise InvalidArgumentError(field, f"{value.isoformat()} lies more than {limits.max_past} back")
    return value


def validate_alert(raw: AlertInput, *, now: datetime, policy: IncidentPolicy, limits: Limits) -> Alert:
    """Check `raw` and build the candidate alert (fingerprint, group key, defaults filled in).

    Raises:
        InvalidArgumentError: naming the offending field.
    """
    source = _enum_value(AlertSource, raw.source, "source") or AlertSource.API
    severity = _enum_value(Severity, raw.severity, "severity") or DEFAULT_SEVERITY
    priority = priority_for(severity, _enum_value(Priority, raw.priority, "priority"))
    status = _enum_value(AlertStatus, raw.status, "status") or AlertStatus.FIRING
    dedup_key = _text(raw.dedup_key, "dedup_key", max_len=limits.max_dedup_key_len)
    alert_type = _text(raw.alert_type.strip(), "alert_type", max_len=limits.max_name_len)
    service = _text(raw.service.strip(), "service", max_len=limits.max_name_len)
    model = _text(raw.model.strip(), "model", max_len=limits.max_name_len)
    labels = _labels(
        raw.labels,
        "labels",
        max_entries=limits.max_labels,
        max_key=limits.max_label_key_len,
        max_value=limits.max_label_value_len,
    )
    annotations = _labels(
        raw.annotations,
        "annotations",
        max_entries=limits.max_annotations,
        max_key=limits.max_label_key_len,
        max_value=limits.max_annotation_value_len,
    )
    if not alert_type:
        alert_type = labels.get("alertname", "").strip()
    if not (dedup_key or alert_type or service or model or any(labels.values())):
        raise InvalidArgumentError(
            "labels", "an alert needs identifying labels (or alert_type, service, model or dedup_key)"
        )
    title = _text(raw.title.strip(), "title", max_len=limits.max_title_len)
    if not title:
        title = _default_title(alert_type, service, model, labels, dedup_key)
    description = _text(raw.description, "description", max_len=limits.max_description_len)
    generator_url = _text(raw.generator_url, "generator_url", max_len=limits.max_url_len)
    start = _time(raw.start_time, "start_time", now=now, ahead=limits.max_future, limits=limits) or now
    # A firing alert's end_time is when it expires unless re-sent (Alertmanager endsAt): it may
    # lie ahead, as far as the past window reaches back.
    end = _time(raw.end_time, "end_time", now=now, ahead=limits.max_past, limits=limits)
    if end is not None and end < start:
        raise InvalidArgumentError("end_time", "must not be before start_time")
    if status is AlertStatus.RESOLVED and end is None:
        end = now
    fp, gk, alert_id = _identities(
        source,
        alert_type,
        service,
        model,
        severity,
        dedup_key,
        frozenset(labels.items()),
        policy.fingerprint_labels,
        policy.group_by,
    )
    return Alert(
        alert_id=alert_id,
        fingerprint=fp,
        source=source,
        title=title,
        severity=severity,
        priority=priority,
        status=status,
        start_time=start,
        first_seen_time=now,
        last_seen_time=now,
        group_key=gk,
        dedup_key=dedup_key,
        description=description,
        alert_type=alert_type,
        service=service,
        model=model,
        labels=labels,
        annotations=annotations,
        end_time=end,
        generator_url=generator_url,
        anomaly_id=raw.anomaly_id,
    )


@functools.lru_cache(maxsize=16_384)
def _identities(
    source: AlertSource,
    alert_type: str,
    service: str,
    model: str,
    severity: Severity,
    dedup_key: str,
    labels: frozenset[tuple[str, str]],
    fingerprint_labels: tuple[str, ...] | None,
    group_by: tuple[str, ...],
) -> tuple[str, str, str]:
    """Fingerprint, group key and alert id: pure functions of these fields, remembered because
    most reports repeat an alert seen moments ago and three sha256 over normalised text cost
    more than the rest of validation together."""
    label_map = dict(labels)
    fp = fingerprint(
        source=source,
        alert_type=alert_type,
        service=service,
        model=model,
        labels=label_map,
        dedup_key=dedup_key,
        fingerprint_labels=fingerprint_labels,
    )
    gk = group_key(
        source=source,
        alert_type=alert_type,
        matcher_labels=alert_matcher_labels(
            labels=label_map,
            service=service,
            model=model,
            alert_type=alert_type,
            severity=severity,
            source=source,
        ),
        group_by=group_by,
    )
    return fp, gk, alert_id_for(fp)


def _default_title(alert_type: str, service: str, model: str, labels: Labels, dedup_key: str) -> str:
    what = alert_type or labels.get("alertname", "") or dedup_key or "alert"
    where = "/".join(part for part in (service, model) if part)
    return (f"{what} on {where}" if where else what)[:300]
