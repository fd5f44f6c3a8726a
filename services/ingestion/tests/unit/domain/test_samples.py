from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ingestion.domain.model import Limits, RawSample, RowError, RowRejected
from sentinel.ingestion.domain.validate import normalise_sample, validate_columnar
from sentinel.runtime.errors import InvalidArgumentError

NOW_NS = 1_767_225_600 * 10**9
LIMITS = Limits()
FUTURE_NS = 600 * 10**9
PAST_NS = 7 * 86400 * 10**9


def test_sample_normalises_with_sorted_labels_and_default_time() -> None:
    raw = RawSample(name="gpu.util", labels={"zone": "b", "host": "h1"}, value=7)

    assert normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS) == (
        "gpu.util",
        (("host", "h1"), ("zone", "b")),
        NOW_NS,
        7.0,
    )


BAD_SAMPLES: list[tuple[str, dict[str, Any], str, str]] = [
    ("empty name", {"name": ""}, "name", "must not be empty"),
    ("long name", {"name": "n" * 201}, "name", "longer than 200 characters"),
    ("bad characters", {"name": "cpu usage"}, "name", "must contain only [A-Za-z0-9_.:-]"),
    ("too many labels", {"labels": {f"l{i}": "v" for i in range(33)}}, "labels", "more than 32 labels"),
    ("empty label key", {"labels": {"": "v"}}, "labels", "label keys must not be empty"),
    ("long label key", {"labels": {"k" * 101: "v"}}, "labels", "label key longer than 100 characters"),
    (
        "long label value",
        {"labels": {"k": "v" * 501}},
        "labels",
        "value of label 'k' longer than 500 characters",
    ),
    ("nan", {"value": math.nan}, "value", "must be finite"),
    ("inf", {"value": -math.inf}, "value", "must be finite"),
    ("huge int", {"value": 10**400}, "value", "must be finite"),
    ("bool", {"value": True}, "value", "must be a number, not a boolean"),
    ("string", {"value": "1"}, "value", "must be a number"),
    ("future", {"time_ns": NOW_NS + FUTURE_NS + 1}, "sample_time", "too far in the future (> 600 s ahead)"),
    ("old", {"time_ns": NOW_NS - PAST_NS - 1}, "sample_time", "too old (> 604800 s)"),
]


@pytest.mark.parametrize(
    ("changes", "field", "reason"), [c[1:] for c in BAD_SAMPLES], ids=[c[0] for c in BAD_SAMPLES]
)
def test_bad_sample_is_rejected_naming_field_and_reason(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    raw = RawSample(name="ok.name", labels={"a": "b"}, value=1.0)
    for key, value in changes.items():
        setattr(raw, key, value)

    with pytest.raises(RowRejected) as caught:
        normalise_sample(raw, now_ns=NOW_NS, limits=LIMITS)

    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_sample_rejection_path_follows_the_proto_field() -> None:
    with pytest.raises(RowRejected) as caught:
        normalise_sample(RawSample(name="", value=1.0), now_ns=NOW_NS, limits=LIMITS)
    assert caught.value.path == "sample.series.name"


# --------------------------------------------------------------------------------------------
# validate_columnar
# --------------------------------------------------------------------------------------------


def naive_validate(
    series: Sequence[tuple[str, Mapping[str, str]]], index: list[int], times: list[int], values: list[float]
) -> tuple[list[bool], list[RowError]]:
    """One point at a time, written for obviousness rather than speed."""
    keep: list[bool] = []
    errors: list[RowError] = []
    for i, (s, t, v) in enumerate(zip(index, times, values, strict=True)):
        error: RowError | None = None
        if s >= len(series):
            error = RowError(i, "series_index", f"must be < {len(series)} (the number of series)")
        else:
            try:
                normalise_sample(
                    RawSample(name=series[s][0], labels=dict(series[s][1]), value=0.0),
                    now_ns=NOW_NS,
                    limits=LIMITS,
                )
            except RowRejected as exc:
                error = RowError(i, f"series[{s}].{exc.field}", exc.reason)
        if error is None and t > NOW_NS + FUTURE_NS:
            error = RowError(i, "time_unix_nano", "too far in the future (> 600 s ahead)")
        if error is None and t < NOW_NS - PAST_NS:
            error = RowError(i, "time_unix_nano", "too old (> 604800 s)")
        if error is None and not math.isfinite(v):
            error = RowError(i, "value", "must be finite")
        keep.append(error is None)
        if error is not None:
            errors.append(error)
    return keep, errors


good_series = st.tuples(
    st.sampled_from(["llm.latency_ms", "queue.depth", "a:b-c_d"]),
    st.dictionaries(st.sampled_from(["service", "model"]), st.text(max_size=3), max_size=2),
)
bad_series: st.SearchStrategy[tuple[str, dict[str, str]]] = st.one_of(
    st.tuples(st.sampled_from(["", "has space", "x" * 201]), st.just({"k": "v"})),
    st.tuples(
        st.just("ok"),
        st.dictionaries(st.text(min_size=101, max_size=101), st.just("v"), min_size=1, max_size=1),
    ),
)
times = st.one_of(
    st.integers(NOW_NS - PAST_NS, NOW_NS + FUTURE_NS),
    st.sampled_from([NOW_NS - PAST_NS - 1, NOW_NS + FUTURE_NS + 1, 0, NOW_NS - PAST_NS, NOW_NS + FUTURE_NS]),
    st.integers(-(2**63), 2**63 - 1),
)
values = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def columnar_batches(
    draw: st.DrawFn,
) -> tuple[list[tuple[str, dict[str, str]]], list[int], list[int], list[float]]:
    series = draw(st.lists(st.one_of(good_series, good_series, bad_series), max_size=5))
    n = draw(st.integers(0, 40))
    index = draw(st.lists(st.integers(0, len(series) + 1), min_size=n, max_size=n))
    return (
        series,
        index,
        draw(st.lists(times, min_size=n, max_size=n)),
        draw(st.lists(values, min_size=n, max_size=n)),
    )


@settings(max_examples=300, deadline=None)
@given(columnar_batches())
def test_validate_columnar_matches_a_naive_per_point_reference(
    batch: tuple[list[tuple[str, dict[str, str]]], list[int], list[int], list[float]],
) -> None:
    series, index, times_, values_ = batch

    keep, errors = validate_columnar(
        series,
        np.asarray(index, dtype=np.uint32),
        np.asarray(times_, dtype=np.int64),
        np.asarray(values_, dtype=np.float64),
        now_ns=NOW_NS,
        limits=LIMITS,
    )

    expected_keep, expected_errors = naive_validate(series, index, times_, values_)
    assert keep.dtype == np.bool_
    assert keep.tolist() == expected_keep
    assert errors == expected_errors


def test_validate_columnar_reports_nan_inf_and_out_of_range_index() -> None:
    keep, errors = validate_columnar(
        [("ok", {})],
        np.array([0, 0, 1, 0], dtype=np.uint32),
        np.full(4, NOW_NS, dtype=np.int64),
        np.array([1.0, math.nan, 2.0, math.inf]),
        now_ns=NOW_NS,
        limits=LIMITS,
    )

    assert keep.tolist() == [True, False, False, False]
    assert errors == [
        RowError(1, "value", "must be finite"),
        RowError(2, "series_index", "must be < 1 (the number of series)"),
        RowError(3, "value", "must be finite"),
    ]


def test_validate_columnar_rejects_every_point_of_a_bad_series() -> None:
    keep, errors = validate_columnar(
        [("ok", {}), ("", {})],
        np.array([1, 0, 1], dtype=np.uint32),
        np.full(3, NOW_NS, dtype=np.int64),
        np.ones(3),
        now_ns=NOW_NS,
        limits=LIMITS,
    )

    assert keep.tolist() == [False, True, False]
    assert [e.field for e in errors] == ["series[1].name", "series[1].name"]


def test_validate_columnar_accepts_a_clean_batch_without_errors() -> None:
    keep, errors = validate_columnar(
        [("a", {"k": "v"})],
        np.zeros(3, np.uint32),
        np.full(3, NOW_NS, np.int64),
        np.ones(3),
        now_ns=NOW_NS,
        limits=LIMITS,
    )
    assert keep.all()
    assert errors == []


@pytest.mark.parametrize(
    ("n_index", "n_time", "n_value", "field"),
    [(3, 2, 3, "batch.time_unix_nano"), (3, 3, 4, "batch.value")],
)
def test_columns_of_different_lengths_fail_the_batch(
    n_index: int, n_time: int, n_value: int, field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_columnar(
            [("a", {})],
            np.zeros(n_index, np.uint32),
            np.zeros(n_time, np.int64),
            np.zeros(n_value),
            now_ns=NOW_NS,
            limits=LIMITS,
        )

    assert caught.value.field == field
    assert caught.value.reason == "COLUMN_LENGTH_MISMATCH"


def test_too_many_points_or_series_fail_the_batch() -> None:
    small = Limits(max_points_per_batch=2, max_series_per_batch=1)
    with pytest.raises(InvalidArgumentError) as points:
        validate_columnar(
            [("a", {})],
            np.zeros(3, np.uint32),
            np.zeros(3, np.int64),
            np.zeros(3),
            now_ns=NOW_NS,
            limits=small,
        )
    with pytest.raises(InvalidArgumentError) as series:
        validate_columnar(
            [("a", {}), ("b", {})],
            np.zeros(1, np.uint32),
            np.zeros(1, np.int64),
            np.zeros(1),
            now_ns=NOW_NS,
            limits=small,
        )

    assert (points.value.field, points.value.reason) == ("batch", "BATCH_TOO_LARGE")
    assert (series.value.field, series.value.reason) == ("batch.series", "BATCH_TOO_LARGE")


def test_signed_negative_index_is_rejected() -> None:
    keep, errors = validate_columnar(
        [("a", {})],
        np.array([-1, 0], np.int64),
        np.full(2, NOW_NS, np.int64),
        np.ones(2),
        now_ns=NOW_NS,
        limits=LIMITS,
    )
    assert keep.tolist() == [False, True]
    assert errors[0].field == "series_index"
