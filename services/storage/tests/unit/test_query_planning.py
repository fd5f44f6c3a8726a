"""Query planning: bounds, steps, matchers and page tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.paging import Cursor, decode_token, encode_token
from sentinel.storage.domain.query import (
    Aggregation,
    ByMatchers,
    LabelMatcher,
    MatchOperator,
    SampleQuery,
    SeriesListing,
    plan_listing,
    plan_query,
)

NOW = 1_800_000_000 * 10**9
CHAT = ByMatchers((LabelMatcher("service", MatchOperator.EQUAL, "chat"),))


def query(**fields: object) -> SampleQuery:
    values: dict[str, object] = {
        "selector": CHAT,
        "start_unix_nano": NOW - 3600 * 10**9,
        "end_unix_nano": NOW,
    }
    values.update(fields)
    return SampleQuery(**values)  # type: ignore[arg-type]


def test_defaults_and_an_open_end_mean_now() -> None:
    plan = plan_query(query(end_unix_nano=None), now_unix_nano=NOW)
    assert (plan.max_series, plan.max_points, plan.page_size) == (1_000, 100_000, 100)
    assert plan.end_unix_micro == NOW // 1000 and plan.cursor is None and plan.step_micro is None


def test_times_are_widened_to_whole_microseconds() -> None:
    plan = plan_query(query(start_unix_nano=1_999, end_unix_nano=5_001), now_unix_nano=NOW)
    assert (plan.start_unix_micro, plan.end_unix_micro) == (1, 6)


def test_without_step_an_aggregation_is_one_bucket_over_the_range() -> None:
    plan = plan_query(query(aggregation=Aggregation.SUM), now_unix_nano=NOW)
    assert plan.bucket_origin_micro == plan.start_unix_micro
    assert plan.bucket_width_micro == plan.end_unix_micro - plan.start_unix_micro


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"selector": None}, "selector"),
        ({"start_unix_nano": None}, "time_range.start_time"),
        ({"start_unix_nano": NOW}, "time_range"),
        ({"step_nano": 0, "aggregation": Aggregation.AVG}, "step"),
        ({"step_nano": -5, "aggregation": Aggregation.AVG}, "step"),
        ({"step_nano": 10**9}, "step"),
        ({"step_nano": 1_500, "aggregation": Aggregation.AVG}, "step"),
        ({"step_nano": 10**5, "aggregation": Aggregation.AVG}, "step"),  # 36M buckets
        ({"page_size": 1_001}, "page_size"),
        ({"max_points": 1_000_001}, "max_points"),
        ({"max_series": 10_001}, "max_series"),
        ({"max_series": -1}, "max_series"),
        ({"page_token": "garbage"}, "page_token"),
        ({"selector": ByMatchers(())}, "matchers.matchers"),
        ({"selector": ByMatchers((LabelMatcher("a", MatchOperator.REGEX, ".*"),))}, "matchers.matchers"),
        ({"selector": ByMatchers((LabelMatcher("a", MatchOperator.NOT_EQUAL, "x"),))}, "matchers.matchers"),
        (
            {"selector": ByMatchers((LabelMatcher("a", MatchOperator.REGEX, "(x"),))},
            "matchers.matchers[0].value",
        ),
    ],
)
def test_bad_queries_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        plan_query(query(**fields), now_unix_nano=NOW)
    assert raised.value.field == field


def test_ten_thousand_buckets_are_allowed_and_one_more_is_not() -> None:
    hour = 3600 * 10**9
    plan_query(query(step_nano=hour // 10_000, aggregation=Aggregation.AVG), now_unix_nano=NOW)
    with pytest.raises(InvalidArgumentError):
        plan_query(query(step_nano=hour // 10_000 - 1_000, aggregation=Aggregation.AVG), now_unix_nano=NOW)


@pytest.mark.parametrize(
    ("operator", "value", "matches_empty"),
    [
        (MatchOperator.EQUAL, "", True),
        (MatchOperator.EQUAL, "x", False),
        (MatchOperator.NOT_EQUAL, "", False),
        (MatchOperator.NOT_EQUAL, "x", True),
        (MatchOperator.REGEX, "x*", True),
        (MatchOperator.REGEX, "x+", False),
        (MatchOperator.NOT_REGEX, "x+", True),
        (MatchOperator.NOT_REGEX, ".*", False),
    ],
)
def test_matchers_know_whether_an_absent_label_matches(
    operator: MatchOperator, value: str, matches_empty: bool
) -> None:
    assert LabelMatcher("k", operator, value).matches_empty() is matches_empty


@given(
    st.integers(1, 2**62),
    st.one_of(st.none(), st.integers(0, 2**62)),
    st.integers(0, 10**6),
    st.text(max_size=20),
)
def test_page_tokens_round_trip(series_id: int, time_micro: int | None, skip: int, fingerprint: str) -> None:
    cursor = Cursor(series_id, time_micro, skip, fingerprint)
    assert decode_token(encode_token(cursor), query=fingerprint) == cursor


def test_a_token_is_bound_to_its_query() -> None:
    token = encode_token(Cursor(5, query="q1"))
    with pytest.raises(InvalidArgumentError, match="different query"):
        decode_token(token, query="q2")


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "WzEsInEiLC0xLG51bGwsMF0"])
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        decode_token(token, query="q")
    assert raised.value.field == "page_token"


def test_a_listing_token_resumes_after_the_last_series() -> None:
    first = plan_listing(SeriesListing(page_size=2))
    token = encode_token(Cursor(17, query=first.fingerprint))
    assert plan_listing(SeriesListing(page_size=2, page_token=token)).after_series_id == 16
    with pytest.raises(InvalidArgumentError):
        plan_listing(SeriesListing(page_size=3, page_token=token))
