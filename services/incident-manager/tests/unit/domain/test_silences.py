from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel.incident_manager.domain import silences
from sentinel.incident_manager.domain.model import LabelMatcher, MatchOperator, Silence, SilenceState
from sentinel.incident_manager.domain.policy import Limits
from sentinel.runtime.errors import InvalidArgumentError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
EQ, NE, RE, NRE = MatchOperator.EQUAL, MatchOperator.NOT_EQUAL, MatchOperator.REGEX, MatchOperator.NOT_REGEX
LABELS = {"service": "chat-api", "env": "prod", "alert_type": "latency_spike"}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (LabelMatcher("env", EQ, "prod"), True),
        (LabelMatcher("env", EQ, "pro"), False),
        (LabelMatcher("env", NE, "staging"), True),
        (LabelMatcher("env", NE, "prod"), False),
        (LabelMatcher("service", RE, "chat-.*"), True),
        (LabelMatcher("service", RE, "chat"), False),  # full match, not search
        (LabelMatcher("service", RE, "api"), False),
        (LabelMatcher("service", RE, "(chat|billing)-api"), True),
        (LabelMatcher("service", NRE, "billing-.*"), True),
        (LabelMatcher("service", NRE, "chat-.*"), False),
        (LabelMatcher("missing", EQ, ""), True),  # a missing label matches as ""
        (LabelMatcher("missing", RE, ".+"), False),
        (LabelMatcher("missing", NE, "x"), True),
    ],
)
def test_matchers_have_alertmanager_semantics(matcher: LabelMatcher, expected: bool) -> None:
    assert silences.matcher_matches(matcher, LABELS) is expected


def silence(
    silence_id: str, *matchers: LabelMatcher, start: int = -10, end: int = 60, maintenance: bool = False
) -> Silence:
    return Silence(
        silence_id=silence_id,
        matchers=matchers,
        start_time=NOW + timedelta(minutes=start),
        end_time=NOW + timedelta(minutes=end),
        created_by="alice",
        comment="deploy",
        maintenance=maintenance,
    )


def test_silence_state_follows_its_interval() -> None:
    s = silence("s", LabelMatcher("env", EQ, "prod"), start=5, end=10)
    assert s.state(NOW) is SilenceState.PENDING
    assert s.state(NOW + timedelta(minutes=5)) is SilenceState.ACTIVE
    assert s.state(NOW + timedelta(minutes=10)) is SilenceState.EXPIRED


def test_only_active_silences_whose_matchers_all_match_suppress_and_are_named() -> None:
    active = silence("s-active", LabelMatcher("service", RE, "chat-.*"), LabelMatcher("env", EQ, "prod"))
    partial = silence("s-partial", LabelMatcher("service", RE, "chat-.*"), LabelMatcher("env", EQ, "dev"))
    pending = silence("s-pending", LabelMatcher("env", EQ, "prod"), start=5)
    expired = silence("s-expired", LabelMatcher("env", EQ, "prod"), start=-20, end=-1)
    window = silence("m-window", LabelMatcher("alert_type", RE, "latency_.*"), maintenance=True)

    hits = silences.silences_for([active, partial, pending, expired, window], LABELS, now=NOW)

    assert [s.silence_id for s in hits] == ["m-window", "s-active"]


def test_new_silence_validation_names_the_field() -> None:
    good = LabelMatcher("env", EQ, "prod")
    base = {
        "silence_id": "s",
        "matchers": [good],
        "start_time": None,
        "end_time": NOW + timedelta(hours=1),
        "created_by": "alice",
        "comment": "deploy",
        "maintenance": False,
        "now": NOW,
        "limits": Limits(),
    }
    created = silences.new_silence(**base)  # type: ignore[arg-type]
    assert created.start_time == NOW
    for overrides, field in [
        ({"matchers": []}, "silence.matchers"),
        ({"matchers": [LabelMatcher("env", RE, "(unclosed")]}, "silence.matchers[0].value"),
        ({"matchers": [LabelMatcher("", EQ, "x")]}, "silence.matchers[0].name"),
        ({"end_time": None}, "silence.end_time"),
        (
            {"end_time": NOW - timedelta(minutes=1), "start_time": NOW - timedelta(hours=1)},
            "silence.end_time",
        ),
        ({"start_time": NOW + timedelta(hours=2)}, "silence.end_time"),
        ({"comment": " "}, "silence.comment"),
    ]:
        with pytest.raises(InvalidArgumentError) as raised:
            silences.new_silence(**{**base, **overrides})  # type: ignore[arg-type]
        assert raised.value.field == field, overrides


def test_expire_ends_a_silence_now_and_is_a_no_op_when_expired() -> None:
    active = silence("s", LabelMatcher("env", EQ, "prod"))
    ended = silences.expire(active, now=NOW)
    assert ended is not None and ended.end_time == NOW and ended.state(NOW) is SilenceState.EXPIRED
    assert silences.expire(ended, now=NOW) is None
    pending = silence("p", LabelMatcher("env", EQ, "prod"), start=30)
    never = silences.expire(pending, now=NOW)
    assert (
        never is not None and never.state(NOW) is SilenceState.EXPIRED and never.start_time < never.end_time
    )
