"""Label matchers and silences (Alertmanager semantics: a missing label matches as "").

Regexes are anchored (full match). Suppression always names the silence that did it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sentinel.incident_manager.domain.model import (
    Incident,
    LabelMatcher,
    MatchOperator,
    Silence,
    SilenceState,
)
from sentinel.incident_manager.domain.policy import Limits
from sentinel.runtime.errors import InvalidArgumentError


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate_matchers(
    matchers: Sequence[LabelMatcher], field: str, *, required: bool, limits: Limits
) -> None:
    """Check operators, names and regexes.

    Raises:
        InvalidArgumentError: e.g. field "silence.matchers[1].value" for a bad regex.
    """
    if required and not matchers:
        raise InvalidArgumentError(field, "at least one matcher is required")
    if len(matchers) > limits.max_matchers:
        raise InvalidArgumentError(
            field, f"{len(matchers)} matchers exceed the limit of {limits.max_matchers}"
        )
    for index, matcher in enumerate(matchers):
        where = f"{field}[{index}]"
        if not matcher.name:
            raise InvalidArgumentError(f"{where}.name", "must not be empty")
        if matcher.operator in (MatchOperator.REGEX, MatchOperator.NOT_REGEX):
            try:
                _compiled(matcher.value)
            except re.error as exc:
                raise InvalidArgumentError(f"{where}.value", f"bad regular expression: {exc}") from None


def matcher_matches(matcher: LabelMatcher, labels: Mapping[str, str]) -> bool:
    """Whether one matcher accepts `labels`."""
    value = labels.get(matcher.name, "")
    if matcher.operator is MatchOperator.EQUAL:
        return value == matcher.value
    if matcher.operator is MatchOperator.NOT_EQUAL:
        return value != matcher.value
    full = _compiled(matcher.value).fullmatch(value) is not None
    return full if matcher.operator is MatchOperator.REGEX else not full


def matches_all(matchers: Iterable[LabelMatcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher accepts `labels` (an empty list accepts everything)."""
    return all(matcher_matches(matcher, labels) for matcher in matchers)


def silences_for(silences: Iterable[Silence], labels: Mapping[str, str], *, now: datetime) -> list[Silence]:
    """The ACTIVE silences that mute an alert with `labels`, maintenance windows first, then by id."""
    hits = [
        s
        for s in silences
        if s.state(now) is SilenceState.ACTIVE and s.matchers and matches_all(s.matchers, labels)
    ]
    return sorted(hits, key=lambda s: (not s.maintenance, s.silence_id))


def new_silence(
    *,
    silence_id: str,
    matchers: Sequence[LabelMatcher],
    start_time: datetime | None,
    end_time: datetime | None,
    created_by: str,
    comment: str,
    maintenance: bool,
    now: datetime,
    limits: Limits,
) -> Silence:
    """Validate and build a silence; an unset start means now.

    Raises:
        InvalidArgumentError: no matchers, bad regex, end_time missing or not after start_time,
            comment empty or too long.
    """
    validate_matchers(matchers, "silence.matchers", required=True, limits=limits)
    start = start_time or now
    if end_time is None:
        raise InvalidArgumentError("silence.end_time", "is required")
    if end_time <= start:
        raise InvalidArgumentError("silence.end_time", "must be after start_time")
    if end_time <= now:
        raise InvalidArgumentError("silence.end_time", "lies in the past")
    if not comment.strip():
        raise InvalidArgumentError("silence.comment", "must not be empty")
    if len(comment) > limits.max_comment_len:
        raise InvalidArgumentError("silence.comment", f"exceeds {limits.max_comment_len} characters")
    return Silence(
        silence_id=silence_id,
        matchers=tuple(matchers),
        start_time=start,
        end_time=end_time,
        created_by=created_by,
        comment=comment,
        maintenance=maintenance,
        create_time=now,
        update_time=now,
    )


def expire(silence: Silence, *, now: datetime) -> Silence | None:
    """End `silence` now; a pending one never starts. None if it is already expired (no-op)."""
    if silence.state(now) is SilenceState.EXPIRED:
        return None
    # Storage keeps end_time after start_time: a pending silence gets an empty past interval.
    start = min(silence.start_time, now - timedelta(microseconds=1))
    return replace(silence, start_time=start, end_time=now, update_time=now)


def incident_labels(incident: Incident) -> dict[str, str]:
    """What a silence sees of an open incident: its common labels as an alert of it would show them."""
    seen = dict(incident.labels)
    for name, value in (
        ("service", incident.service),
        ("model", incident.model),
        ("alert_type", incident.incident_type),
        ("severity", incident.severity.label),
    ):
        if value:
            seen[name] = value
    return seen
