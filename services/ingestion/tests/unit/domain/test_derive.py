from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ingestion.domain.derive import ColumnarSamples, derive_samples, merge
from sentinel.ingestion.domain.model import LlmEvent, SampleRow

NOW_NS = 1_767_225_600 * 10**9


def naive_derive(events: Sequence[LlmEvent]) -> list[SampleRow]:
    """The derivation rules, one event and one metric at a time."""
    rows: list[SampleRow] = []
    for e in events:
        labels_map = {"service": e.service, "model": e.model}
        if e.provider:
            labels_map["provider"] = e.provider
        labels = tuple(sorted(labels_map.items()))

        def point(
            name: str, value: float | None, labels: tuple[tuple[str, str], ...] = labels, t: int = e.time_ns
        ) -> None:
            if value is not None:
                rows.append((name, labels, t, float(value)))

        point("llm.latency_ms", e.latency_ms)
        point("llm.ttft_ms", e.ttft_ms)
        point("llm.tokens.prompt", e.prompt_tokens)
        point("llm.tokens.completion", e.completion_tokens)
        point("llm.tokens.total", e.total_tokens)
        point("llm.cost_usd", e.cost_usd)
        point("llm.requests", 1)
        point("llm.errors", 1.0 if e.is_error else 0.0)
        if e.latency_ms is not None and e.completion_tokens is not None:
            if e.ttft_ms is not None and e.ttft_ms > 0:
                generation_ms = e.latency_ms - e.ttft_ms
            else:
                generation_ms = e.latency_ms
            if generation_ms > 0 and generation_ms / 1000.0 > 0:
                tokens_per_s = e.completion_tokens / (generation_ms / 1000.0)
                if math.isfinite(tokens_per_s):
                    point("llm.tokens_per_s", tokens_per_s)
    return rows


def assert_well_formed(samples: ColumnarSamples) -> None:
    assert samples.series_index.dtype == np.uint32
    assert samples.time_ns.dtype == np.int64
    assert samples.value.dtype == np.float64
    assert len(samples.series_index) == len(samples.time_ns) == len(samples.value) == len(samples)
    # Every series in the table is used, and only once.
    assert sorted(set(samples.series_index.tolist())) == list(range(len(samples.series)))
    assert len(set(samples.series)) == len(samples.series)


maybe_ms = st.none() | st.floats(0, 600_000) | st.sampled_from([0.0, 1.0, 5e-324, 1e-310])
maybe_tokens = st.none() | st.integers(0, 10_000_000)
events = st.builds(
    LlmEvent,
    event_id=st.just("e"),
    time_ns=st.integers(NOW_NS - 10**12, NOW_NS),
    service=st.sampled_from(["chat", "search"]),
    model=st.sampled_from(["gpt-4o", "claude"]),
    provider=st.sampled_from(["", "openai"]),
    prompt_tokens=maybe_tokens,
    completion_tokens=maybe_tokens,
    total_tokens=maybe_tokens,
    latency_ms=maybe_ms,
    ttft_ms=maybe_ms,
    cost_usd=st.none() | st.floats(0, 10_000),
    is_error=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=30))
def test_derive_samples_matches_a_naive_reference(batch: list[LlmEvent]) -> None:
    samples = derive_samples(batch)

    assert_well_formed(samples)
    assert list(samples.rows()) == naive_derive(batch)


def test_derived_points_of_one_event() -> None:
    event = LlmEvent(
        event_id="e",
        time_ns=NOW_NS,
        service="chat",
        model="gpt-4o",
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        latency_ms=1100.0,
        ttft_ms=100.0,
        cost_usd=0.25,
        is_error=True,
    )
    labels = (("model", "gpt-4o"), ("service", "chat"))

    assert list(derive_samples([event]).rows()) == [
        ("llm.latency_ms", labels, NOW_NS, 1100.0),
        ("llm.ttft_ms", labels, NOW_NS, 100.0),
        ("llm.tokens.prompt", labels, NOW_NS, 100.0),
        ("llm.tokens.completion", labels, NOW_NS, 50.0),
        ("llm.tokens.total", labels, NOW_NS, 150.0),
        ("llm.cost_usd", labels, NOW_NS, 0.25),
        ("llm.requests", labels, NOW_NS, 1.0),
        ("llm.errors", labels, NOW_NS, 1.0),
        ("llm.tokens_per_s", labels, NOW_NS, 50.0),  # 50 tokens over 1000 ms of generation
    ]


def test_minimal_event_yields_request_and_error_points_only() -> None:
    samples = derive_samples([LlmEvent(event_id="e", time_ns=NOW_NS, service="s", model="m", provider="p")])

    assert [(name, value) for name, _, _, value in samples.rows()] == [
        ("llm.requests", 1.0),
        ("llm.errors", 0.0),
    ]
    assert samples.series[0][1] == (("model", "m"), ("provider", "p"), ("service", "s"))


def test_no_events_derive_an_empty_batch() -> None:
    samples = derive_samples([])
    assert len(samples) == 0
    assert samples.series == []


def test_merge_appends_generic_rows_and_shares_equal_series() -> None:
    derived = derive_samples([LlmEvent(event_id="e", time_ns=NOW_NS, service="s", model="m")])
    requests_key = derived.series[0]
    generic: list[SampleRow] = [
        ("queue.depth", (), NOW_NS, 4.0),
        (requests_key[0], requests_key[1], NOW_NS + 1, 1.0),
    ]

    merged = merge(derived, generic, ColumnarSamples.empty())

    assert_well_formed(merged)
    assert list(merged.rows()) == [*derived.rows(), *generic]
    assert len(merged.series) == 3  # requests, errors, queue.depth


def test_select_keeps_points_in_order_and_drops_unused_series() -> None:
    samples = ColumnarSamples.from_columns(
        [("a", {"z": "1", "b": "2"}), ("bad name", {}), ("c", {})],
        np.array([0, 1, 2, 0], np.uint32),
        np.arange(4, dtype=np.int64),
        np.arange(4, dtype=np.float64),
        keep=np.array([True, False, True, True]),
    )

    assert_well_formed(samples)
    assert samples.series == [("a", (("b", "2"), ("z", "1"))), ("c", ())]
    assert list(samples.rows()) == [
        ("a", (("b", "2"), ("z", "1")), 0, 0.0),
        ("c", (), 2, 2.0),
        ("a", (("b", "2"), ("z", "1")), 3, 3.0),
    ]
