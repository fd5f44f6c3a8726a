from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from sentinel.ingestion.domain.model import Limits, LlmEvent, RawLlmEvent, RowError, RowRejected, field_path
from sentinel.ingestion.domain.validate import normalise_event, status_is_ok

NOW_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
LIMITS = Limits()


def _ids() -> str:
    return "generated-id"


def normalise(raw: RawLlmEvent, limits: Limits = LIMITS) -> LlmEvent:
    return normalise_event(raw, now_ns=NOW_NS, limits=limits, id_factory=_ids)


def test_nested_event_normalises_to_canonical_event() -> None:
    raw = RawLlmEvent(
        event_id="ev-1",
        time_ns=NOW_NS - 5 * 10**9,
        service="chat-api",
        model="gpt-4o",
        provider="openai",
        trace_id="0AF7651916CD43DD8448EB211C80319C",
        span_id="b7ad6b7169203331",
        prompt_tokens=120,
        completion_tokens=30,
        latency_ms=812.5,
        ttft_ms=140.0,
        cost_usd=0.0021,
        finish_reason="stop",
        metadata={"environment": "prod"},
        source="nested",
    )

    event = normalise(raw)

    assert event == LlmEvent(
        event_id="ev-1",
        time_ns=NOW_NS - 5 * 10**9,
        service="chat-api",
        model="gpt-4o",
        provider="openai",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        prompt_tokens=120,
        completion_tokens=30,
        total_tokens=150,
        latency_ms=812.5,
        ttft_ms=140.0,
        cost_usd=0.0021,
        is_error=False,
        finish_reason="stop",
        metadata={"environment": "prod"},
        source="nested",
    )


def test_flat_event_uses_request_id_as_event_id_and_status_for_errors() -> None:
    raw = RawLlmEvent(
        model="claude-3-5-sonnet",
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=16,
        latency_ms=100,
        status="429",
        user_id="u1",
        session_id="s1",
        request_id="req-9",
        source="flat",
    )

    event = normalise(raw)

    assert event.event_id == "req-9"
    assert event.request_id == "req-9"
    assert event.total_tokens == 16  # given totals are kept, not recomputed
    assert event.is_error is True
    assert (event.user_id, event.session_id, event.status) == ("u1", "s1", "429")


def test_minimal_event_gets_defaults() -> None:
    event = normalise(RawLlmEvent(model="gpt-4o"))

    assert event.event_id == "generated-id"
    assert event.time_ns == NOW_NS
    assert event.service == "unknown"
    assert event.provider == ""
    assert event.prompt_tokens is None
    assert event.total_tokens is None
    assert event.latency_ms is None
    assert event.is_error is False


def test_total_is_not_invented_from_one_side_only() -> None:
    assert normalise(RawLlmEvent(model="m", prompt_tokens=3)).total_tokens is None


@pytest.mark.parametrize(
    ("changes", "is_error"),
    [
        ({}, False),
        ({"status": "OK"}, False),
        ({"status": "success"}, False),
        ({"status": "201"}, False),
        ({"status": "error"}, True),
        ({"status": "timeout"}, True),
        ({"status": "500"}, True),
        ({"error_message": "boom"}, True),
        ({"status": "ok", "error_message": "boom"}, True),  # the error wins over the status
        ({"error_type": "RateLimitError"}, True),
        ({"is_error": False, "status": "error"}, False),  # an explicit flag wins
        ({"is_error": True}, True),
    ],
)
def test_error_flag_follows_status_error_and_explicit_flag(changes: dict[str, Any], is_error: bool) -> None:
    assert normalise(RawLlmEvent(model="m", **changes)).is_error is is_error


def test_status_is_ok_accepts_only_success_spellings() -> None:
    assert [status_is_ok(s) for s in ["", " ok ", "Success", "200", "299", "300", "fail"]] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_error_message_is_truncated_not_rejected() -> None:
    event = normalise(RawLlmEvent(model="m", error_message="x" * 5000))

    assert len(event.error_message) == LIMITS.max_error_message_len
    assert event.is_error


def test_boundary_values_are_accepted() -> None:
    event = normalise(
        RawLlmEvent(
            model="m" * 200,
            latency_ms=600_000.0,
            ttft_ms=0.0,
            prompt_tokens=10_000_000,
            completion_tokens=0,
            cost_usd=10_000.0,
            time_ns=NOW_NS + 600 * 10**9,
            metadata={f"k{i}": "v" * 1000 for i in range(64)},
        )
    )
    assert event.latency_ms == 600_000.0
    old = normalise(RawLlmEvent(model="m", time_ns=NOW_NS - 7 * 86400 * 10**9))
    assert old.time_ns == NOW_NS - 7 * 86400 * 10**9


BAD_EVENTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("nan latency", {"latency_ms": math.nan}, "latency_ms", "must be finite and >= 0"),
    ("inf latency", {"latency_ms": math.inf}, "latency_ms", "must be finite and >= 0"),
    ("negative latency", {"latency_ms": -1.0}, "latency_ms", "must be finite and >= 0"),
    ("latency over limit", {"latency_ms": 600_000.5}, "latency_ms", "must be <= 600000"),
    ("negative ttft", {"ttft_ms": -0.1}, "ttft_ms", "must be finite and >= 0"),
    ("ttft over limit", {"ttft_ms": 700_000.0}, "ttft_ms", "must be <= 600000"),
    ("nan cost", {"cost_usd": math.nan}, "cost_usd", "must be finite and >= 0"),
    ("negative cost", {"cost_usd": -0.01}, "cost_usd", "must be finite and >= 0"),
    ("cost over limit", {"cost_usd": 10_000.01}, "cost_usd", "must be <= 10000"),
    ("negative prompt tokens", {"prompt_tokens": -1}, "prompt_tokens", "must be >= 0"),
    ("prompt tokens over limit", {"prompt_tokens": 10_000_001}, "prompt_tokens", "must be <= 10000000"),
    ("completion over limit", {"completion_tokens": 10**8}, "completion_tokens", "must be <= 10000000"),
    ("total over limit", {"total_tokens": 10**8}, "total_tokens", "must be <= 10000000"),
    ("future time", {"time_ns": NOW_NS + 601 * 10**9}, "time", "too far in the future (> 600 s ahead)"),
    ("old time", {"time_ns": NOW_NS - 7 * 86400 * 10**9 - 1}, "time", "too old (> 604800 s)"),
    ("missing model", {"model": None}, "model", "must not be empty"),
    ("empty model", {"model": ""}, "model", "must not be empty"),
    ("blank model", {"model": "   "}, "model", "must not be empty"),
    ("long model", {"model": "m" * 201}, "model", "longer than 200 characters"),
    ("long service", {"service": "s" * 201}, "service", "longer than 200 characters"),
    ("long provider", {"provider": "p" * 101}, "provider", "longer than 100 characters"),
    ("long event id", {"event_id": "e" * 129}, "event_id", "longer than 128 characters"),
    ("long request id", {"request_id": "r" * 129}, "request_id", "longer than 128 characters"),
    ("long user id", {"user_id": "u" * 201}, "user_id", "longer than 200 characters"),
    ("bad trace id", {"trace_id": "xyz"}, "trace_id", "must be 32 hex characters"),
    ("short span id", {"span_id": "abc"}, "span_id", "must be 16 hex characters"),
    (
        "too many metadata entries",
        {"metadata": {f"k{i}": "v" for i in range(65)}},
        "metadata",
        "more than 64 entries",
    ),
    ("long metadata value", {"metadata": {"k": "v" * 1001}}, "metadata.k", "longer than 1000 characters"),
    ("long metadata key", {"metadata": {"k" * 101: "v"}}, "metadata", "key longer than 100 characters"),
    ("empty metadata key", {"metadata": {"": "v"}}, "metadata", "keys must not be empty"),
]


@pytest.mark.parametrize(
    ("changes", "field", "reason"), [case[1:] for case in BAD_EVENTS], ids=[case[0] for case in BAD_EVENTS]
)
def test_bad_event_is_rejected_naming_field_and_reason(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    raw = dataclasses.replace(RawLlmEvent(model="gpt-4o", source="nested"), **changes)

    with pytest.raises(RowRejected) as caught:
        normalise(raw)

    assert (caught.value.field, caught.value.reason) == (field, reason)


@pytest.mark.parametrize(
    ("source", "field", "path"),
    [
        ("nested", "prompt_tokens", "nested.prompt.tokens"),
        ("nested", "latency_ms", "nested.latency_ms"),
        ("nested", "time", "nested.event_time"),
        ("flat", "model", "flat.model_name"),
        ("flat", "prompt_tokens", "flat.prompt_tokens"),
        ("json", "time", "json.timestamp"),
        ("otlp", "latency_ms", "otlp.latency_ms"),
    ],
)
def test_rejection_path_names_the_field_as_the_form_spells_it(source: str, field: str, path: str) -> None:
    raw = RawLlmEvent(
        model="" if field == "model" else "m",
        prompt_tokens=-1 if field == "prompt_tokens" else None,
        latency_ms=-1.0 if field == "latency_ms" else None,
        time_ns=0 if field == "time" else None,
        source=source,  # type: ignore[arg-type]
    )

    with pytest.raises(RowRejected) as caught:
        normalise(raw)

    assert caught.value.path == path
    assert caught.value.to_row_error(7) == RowError(7, path, caught.value.reason)
    assert field_path(None, "x") == "x"


def test_limits_are_configurable() -> None:
    limits = Limits(max_latency_ms=1000.0, max_future_s=1.5)

    with pytest.raises(RowRejected, match="must be <= 1000"):
        normalise(RawLlmEvent(model="m", latency_ms=1000.5), limits)
    with pytest.raises(RowRejected, match=r"too far in the future \(> 1.5 s ahead\)"):
        normalise(RawLlmEvent(model="m", time_ns=NOW_NS + 2 * 10**9), limits)
