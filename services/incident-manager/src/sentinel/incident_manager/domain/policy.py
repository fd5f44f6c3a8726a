"""Tunable rules of grouping, reopening, flapping and expiry, and the validation limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

DEFAULT_GROUP_BY = ("service", "model", "alert_type")


@dataclass(frozen=True)
class IncidentPolicy:
    """How alerts become incidents.

    Attributes:
        group_by: Label names (of `Alert.matcher_labels`) whose values, with source and alert_type,
            form the group key.
        fingerprint_labels: Labels that enter the fingerprint; None means all of the alert's labels.
        group_window: Alerts of one group key count towards `min_alerts` only if first seen within
            this window of each other.
        min_alerts: Distinct alerts of a group key needed before an incident opens (1 = the first).
        reopen_window: A new firing of a group whose incident resolved less than this long ago
            reopens it instead of opening a new one.
        flap_window: Window over which state changes are counted for flapping.
        flap_threshold: State changes within `flap_window` that make an incident flapping.
        alert_ttl: A firing alert without end_time that is not seen again for this long expires.
    """

    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    fingerprint_labels: tuple[str, ...] | None = None
    group_window: timedelta = timedelta(minutes=5)
    min_alerts: int = 1
    reopen_window: timedelta = timedelta(hours=1)
    flap_window: timedelta = timedelta(minutes=30)
    flap_threshold: int = 4
    alert_ttl: timedelta = timedelta(hours=4)

    def __post_init__(self) -> None:
        if self.min_alerts < 1:
            raise ValueError("min_alerts must be at least 1")
        if self.flap_threshold < 2:
            raise ValueError("flap_threshold must be at least 2")


@dataclass(frozen=True)
class Limits:
    """Validation limits of the published API (incident_service.proto)."""

    max_alerts_per_report: int = 1000
    max_title_len: int = 300
    max_description_len: int = 10_000
    max_dedup_key_len: int = 255
    max_labels: int = 64
    max_label_key_len: int = 100
    max_label_value_len: int = 500
    max_annotations: int = 64
    max_annotation_value_len: int = 10_000
    max_name_len: int = 200
    max_url_len: int = 2_000
    max_future: timedelta = timedelta(minutes=10)
    max_past: timedelta = timedelta(days=30)
    max_note_len: int = 10_000
    max_assignees: int = 20
    max_assignee_len: int = 200
    max_comment_len: int = 1_000
    max_matchers: int = 64
    max_stats_range: timedelta = timedelta(days=90)
