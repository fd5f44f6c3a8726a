from __future__ import annotations

import math
from typing import Any

import pytest

from sentinel.ingestion.domain.model import Limits, LlmEvent, RawLlmEvent, RawSample, RowRejected
from sentinel.ingestion.domain.validate import (
    normalise_event,
    normalise_sample,
    parse_json_event,
    parse_time_ns,
)

NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
LIMITS = Limits()


def event_of(obj: dict[str, Any]) -> LlmEvent:
    raw = parse_json_event(obj)
    assert isinstance(raw, RawLlmEvent)
    return normalise_event(raw, now_ns=NOW_NS, limits=LIMITS, id_factory=lambda: "generated")


def test_json_nested_form_normalises() -> None:
    event = event_of(
        {
            "event_id": "e1",
            "timestamp": "2025-12-31T23:59:00Z",
            "service_name": "chat",
            "model": "gpt-4o",
            "provider": "openai",
            "prompt": {"tokens": 100.0, "text": "hello"},
            "response": {"tokens": 20.0, "finish_reason": "length"},
            "latency_ms": 900.0,
            "ttft_ms": 100.0,
            "cost_usd": 0.5,
            "metadata": {"env": "prod", "replica": 3.0, "canary": True},
            "errors": [{"type": "Timeout", "message": "slow"}],
        }
    )

    assert event == LlmEvent(
        event_id="e1",
        time_ns=NOW_NS - 60 * 10**9,
        service="chat",
        model="gpt-4o",
        provider="openai",
        prompt_tokens=100,
        completion_tokens=20,
        total_tokens=120,
        latency_ms=900.0,
        ttft_ms=100.0,
        cost_usd=0.5,
        is_error=True,
        error_type="Timeout",
        error_message="slow",
        finish_reason="length",
        metadata={"env": "prod", "replica": "3", "canary": "true"},
        source="json",
    )


def test_json_flat_form_normalises() -> None:
    event = event_of(
        {
            "model_name": "llama-3",
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "latency_ms": 50,
            "cost_usd": 0,
            "user_id": "u",
            "session_id": "s",
            "request_id": "r",
            "status": 200.0,
            "error": "",
        }
    )

    assert (event.model, event.event_id, event.total_tokens, event.status) == ("llama-3", "r", 10, "200")
    assert event.is_error is False
    assert event.time_ns == NOW_NS


def test_json_accepts_camel_case_and_usage_object() -> None:
    event = event_of(
        {
            "modelName": "m",
            "serviceName": "svc",
            "latencyMs": 5,
            "usage": {"input_tokens": 4, "output_tokens": 6},
        }
    )

    assert (event.service, event.latency_ms, event.prompt_tokens, event.completion_tokens) == (
        "svc",
        5.0,
        4,
        6,
    )
    assert event.total_tokens == 10


def test_json_error_forms() -> None:
    assert event_of({"model": "m", "error": True}).is_error is True
    assert event_of({"model": "m", "error": "rate limited"}).error_message == "rate limited"
    assert event_of({"model": "m", "errors": ["boom"]}).is_error is True
    assert event_of({"model": "m", "errors": []}).is_error is False
    assert event_of({"model": "m", "errors": [{"code": "429"}]}).error_type == "429"


def test_json_sample_form_normalises() -> None:
    raw = parse_json_event(
        {"name": "queue.depth", "labels": {"queue": "q1", "shard": 2.0}, "value": 3.5, "time": 1767225500}
    )

    assert raw == RawSample(
        name="queue.depth",
        labels={"queue": "q1", "shard": "2"},
        time_ns=1767225500 * 10**9,
        value=3.5,
        source="json",
    )
    assert normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS) == (
        "queue.depth",
        (("queue", "q1"), ("shard", "2")),
        1767225500 * 10**9,
        3.5,
    )


def test_json_sample_accepts_a_series_object() -> None:
    raw = parse_json_event({"series": {"name": "x", "labels": {"a": "b"}}, "value": 1})

    assert isinstance(raw, RawSample)
    assert (raw.name, raw.labels, raw.time_ns) == ("x", {"a": "b"}, None)


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        (1_767_225_600, 1_767_225_600 * 10**9),  # seconds
        (1_767_225_600.25, 1_767_225_600_250_000_000),
        (1_767_225_600_123, 1_767_225_600_123_000_000),  # milliseconds
        (1_767_225_600_123_456, 1_767_225_600_123_456_000),  # microseconds
        (1_767_225_600_123_456_789, 1_767_225_600_123_456_789),  # nanoseconds
        ("1767225600", 1_767_225_600 * 10**9),
        ("2026-01-01T00:00:00Z", 1_767_225_600 * 10**9),
        ("2026-01-01T00:00:00.123456789Z", 1_767_225_600_123_456_789),
        ("2026-01-01T01:00:00.5+01:00", 1_767_225_600_500_000_000),
        ("2026-01-01 00:00:00", 1_767_225_600 * 10**9),  # naive means UTC
        ("2026-01-01", 1_767_225_600 * 10**9),
        (None, None),
    ],
)
def test_timestamps_in_every_accepted_spelling(value: Any, expected_ns: int | None) -> None:
    assert parse_time_ns("timestamp", value) == expected_ns


@pytest.mark.parametrize("value", ["yesterday", True, math.inf, "2026-13-01T00:00:00Z", {"seconds": 1}])
def test_unreadable_timestamp_is_rejected(value: Any) -> None:
    with pytest.raises(RowRejected) as caught:
        parse_json_event({"model": "m", "timestamp": value})

    assert caught.value.path == "json.timestamp"
    assert caught.value.reason.startswith("must be an ISO-8601 time")


BAD_JSON: list[tuple[str, dict[str, Any], str, str]] = [
    ("string latency", {"model": "m", "latency_ms": "fast"}, "json.latency_ms", "must be a number"),
    (
        "bool latency",
        {"model": "m", "latency_ms": True},
        "json.latency_ms",
        "must be a number, not a boolean",
    ),
    ("bool cost", {"model": "m", "cost_usd": False}, "json.cost_usd", "must be a number, not a boolean"),
    ("fractional tokens", {"model": "m", "prompt_tokens": 1.5}, "json.prompt_tokens", "must be an integer"),
    (
        "bool tokens",
        {"model": "m", "prompt": {"tokens": True}},
        "json.prompt.tokens",
        "must be an integer, not a boolean",
    ),
    (
        "string tokens",
        {"model": "m", "response": {"tokens": "3"}},
        "json.response.tokens",
        "must be an integer",
    ),
    ("numeric model", {"model": 4}, "json.model", "must be a string"),
    ("list prompt", {"model": "m", "prompt": [1]}, "json.prompt", "must be an object"),
    ("errors not a list", {"model": "m", "errors": "x"}, "json.errors", "must be a list"),
    (
        "metadata nested",
        {"model": "m", "metadata": {"a": {"b": 1}}},
        "json.metadata",
        "values must be strings, numbers or booleans",
    ),
    ("string is_error", {"model": "m", "is_error": "yes"}, "json.is_error", "must be a boolean"),
    ("labels not object", {"name": "x", "value": 1, "labels": ["a"]}, "json.labels", "must be an object"),
]


@pytest.mark.parametrize(("obj", "path", "reason"), [c[1:] for c in BAD_JSON], ids=[c[0] for c in BAD_JSON])
def test_wrong_json_types_are_rejected_naming_the_field(obj: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(RowRejected) as caught:
        parse_json_event(obj)

    assert (caught.value.path, caught.value.reason) == (path, reason)


def test_json_without_a_detectable_form_is_rejected_as_json() -> None:
    with pytest.raises(RowRejected) as caught:
        parse_json_event({"hello": "world"})

    assert caught.value.path == "json"
    assert caught.value.reason.startswith("cannot detect the form")


def test_json_event_without_model_is_rejected_on_model() -> None:
    raw = parse_json_event({"latency_ms": 3})

    with pytest.raises(RowRejected) as caught:
        normalise_event(raw, now_ns=NOW_NS, limits=LIMITS, id_factory=lambda: "x")  # type: ignore[arg-type]
    assert (caught.value.path, caught.value.reason) == ("json.model", "must not be empty")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "must be a number, not a boolean"),
        ("3", "must be a number"),
        (None, "must be a number"),
        (math.nan, "must be finite"),
    ],
)
def test_json_sample_value_must_be_a_finite_number(value: Any, reason: str) -> None:
    raw = parse_json_event({"name": "x", "value": value})
    assert isinstance(raw, RawSample)

    with pytest.raises(RowRejected) as caught:
        normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS)

    assert (caught.value.path, caught.value.reason) == ("json.value", reason)
