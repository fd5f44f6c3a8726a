"""Query planning: selectors, label matchers, aggregation, time ranges and the bounds on them."""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.paging import Cursor, decode_token
from sentinel.storage.domain.series import MAX_LABEL_KEY, SeriesKey, validate_series_key

MAX_BUCKETS = 10_000
MAX_MATCHERS = 32
MAX_REGEX_LENGTH = 1_000


class Aggregation(enum.Enum):
    """Reduction of the points of a series within each step."""

    NONE = "none"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    LAST = "last"


class MatchOperator(enum.Enum):
    """How a matcher compares a label value (regexes match the whole value)."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class LabelMatcher:
    """One label matcher; `name` "__name__" matches the series name."""

    name: str
    operator: MatchOperator
    value: str

    def matches_empty(self) -> bool:
        """Whether an absent (empty) label value satisfies this matcher."""
        if self.operator is MatchOperator.EQUAL:
            return self.value == ""
        if self.operator is MatchOperator.NOT_EQUAL:
            return self.value != ""
        full = re.fullmatch(self.value, "") is not None
        return full if self.operator is MatchOperator.REGEX else not full


def anchored(regex: str) -> str:
    """A regex that must match the whole value (Prometheus semantics)."""
    return f"^(?:{regex})$"


def validate_matchers(matchers: tuple[LabelMatcher, ...], field: str, *, selective: bool) -> None:
    """Check matchers; with `selective`, require one that cannot match every series.

    Raises:
        InvalidArgumentError: naming `field[i].name` / `.value`, or `field` itself.
    """
    if len(matchers) > MAX_MATCHERS:
        raise InvalidArgumentError(field, f"has {len(matchers)} matchers; at most {MAX_MATCHERS}")
    for i, matcher in enumerate(matchers):
        if not 0 < len(matcher.name) <= MAX_LABEL_KEY:
            raise InvalidArgumentError(f"{field}[{i}].name", f"must be 1..{MAX_LABEL_KEY} characters")
        if matcher.operator in (MatchOperator.REGEX, MatchOperator.NOT_REGEX):
            if len(matcher.value) > MAX_REGEX_LENGTH:
                raise InvalidArgumentError(f"{field}[{i}].value", f"regex over {MAX_REGEX_LENGTH} characters")
            try:
                re.compile(matcher.value)
            except re.error as exc:
                raise InvalidArgumentError(
                    f"{field}[{i}].value", f"invalid regular expression: {exc}"
                ) from None
    if selective and not any(
        m.operator in (MatchOperator.EQUAL, MatchOperator.REGEX) and m.value and not m.matches_empty()
        for m in matchers
    ):
        raise InvalidArgumentError(
            field, "must not match every series: give an EQUAL or REGEX matcher with a non-empty value"
        )


@dataclass(frozen=True)
class ByKey:
    """Exactly one series, by its key."""

    key: SeriesKey


@dataclass(frozen=True)
class ById:
    """Exactly one series, by storage id."""

    series_id: int


@dataclass(frozen=True)
class ByMatchers:
    """Every series matching all matchers."""

    matchers: tuple[LabelMatcher, ...]


Selector = ByKey | ById | ByMatchers


@dataclass(frozen=True)
class Limits:
    """Default and maximum of one request bound (0 from the client means the default)."""

    default: int
    maximum: int

    def resolve(self, requested: int, field: str) -> int:
        if requested < 0:
            raise InvalidArgumentError(field, "must not be negative")
        if requested > self.maximum:
            raise InvalidArgumentError(field, f"{requested} is over the maximum of {self.maximum}")
        return requested or self.default


MAX_SERIES = Limits(1_000, 10_000)
MAX_POINTS = Limits(100_000, 1_000_000)
QUERY_PAGE_SIZE = Limits(100, 1_000)
LIST_PAGE_SIZE = Limits(100, 10_000)


@dataclass(frozen=True)
class SampleQuery:
    """A QuerySamples request as the domain sees it (times in nanoseconds since the Unix epoch)."""

    selector: Selector | None
    start_unix_nano: int | None
    end_unix_nano: int | None
    step_nano: int | None = None
    aggregation: Aggregation = Aggregation.NONE
    max_series: int = 0
    max_points: int = 0
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class QueryPlan:
    """A validated, bounded query in PostgreSQL's resolution (microseconds).

    Attributes:
        start_unix_micro: inclusive start.
        end_unix_micro: exclusive end.
        step_micro: bucket width aligned to the Unix epoch; with an aggregation and no step, the
            whole range is one bucket starting at start_unix_micro. None for raw points.
    """

    selector: Selector
    start_unix_micro: int
    end_unix_micro: int
    step_micro: int | None
    aggregation: Aggregation
    max_series: int
    max_points: int
    page_size: int
    cursor: Cursor | None
    fingerprint: str

    @property
    def bucket_origin_micro(self) -> int:
        """Where buckets are aligned: the Unix epoch with a step, else the range start."""
        return 0 if self.step_micro is not None else self.start_unix_micro

    @property
    def bucket_width_micro(self) -> int:
        if self.step_micro is not None:
            return self.step_micro
        return self.end_unix_micro - self.start_unix_micro


def plan_query(query: SampleQuery, *, now_unix_nano: int) -> QueryPlan:
    """Validate and bound a query.

    Raises:
        InvalidArgumentError: naming the field (selector, time_range, step, aggregation, limits,
            page_token).
    """
    selector = query.selector
    if selector is None:
        raise InvalidArgumentError("selector", "set exactly one of series, matchers, series_id")
    if isinstance(selector, ByKey):
        validate_series_key(selector.key, "series")
    elif isinstance(selector, ById):
        if selector.series_id <= 0:
            raise InvalidArgumentError("series_id", "must be a positive integer")
    else:
        if not selector.matchers:
            raise InvalidArgumentError("matchers.matchers", "must not be empty")
        validate_matchers(selector.matchers, "matchers.matchers", selective=True)
    start, end = _range(query.start_unix_nano, query.end_unix_nano, now_unix_nano)
    step = None
    if query.step_nano is not None:
        if query.aggregation is Aggregation.NONE:
            raise InvalidArgumentError("step", "requires an aggregation")
        if query.step_nano <= 0:
            raise InvalidArgumentError("step", "must be positive")
        if query.step_nano % 1_000:
            raise InvalidArgumentError("step", "must be a whole number of microseconds")
        step = query.step_nano // 1_000
        buckets = (end - 1) // step - start // step + 1
        if buckets > MAX_BUCKETS:
            raise InvalidArgumentError(
                "step", f"makes {buckets} buckets over the range; at most {MAX_BUCKETS}: widen the step"
            )
    max_series = MAX_SERIES.resolve(query.max_series, "max_series")
    max_points = MAX_POINTS.resolve(query.max_points, "max_points")
    page_size = QUERY_PAGE_SIZE.resolve(query.page_size, "page_size")
    fingerprint = _fingerprint(
        selector, start, end, step, query.aggregation, max_series, max_points, page_size
    )
    return QueryPlan(
        selector=selector,
        start_unix_micro=start,
        end_unix_micro=end,
        step_micro=step,
        aggregation=query.aggregation,
        max_series=max_series,
        max_points=max_points,
        page_size=page_size,
        cursor=decode_token(query.page_token, query=fingerprint),
        fingerprint=fingerprint,
    )


def _range(start_nano: int | None, end_nano: int | None, now_nano: int) -> tuple[int, int]:
    # Stored times are floored to the microsecond: floor the start, round the end up.
    if start_nano is None:
        raise InvalidArgumentError("time_range.start_time", "is required")
    end_nano = now_nano if end_nano is None else end_nano
    if start_nano >= end_nano:
        raise InvalidArgumentError("time_range", "start_time must be before end_time")
    return start_nano // 1_000, -(-end_nano // 1_000)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SeriesListing:
    """A ListSeries request: matchers (empty lists all), optional sample-time range, paging."""

    matchers: tuple[LabelMatcher, ...] = ()
    start_unix_nano: int | None = None
    end_unix_nano: int | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class ListPlan:
    """A validated ListSeries request (times in microseconds, None = unbounded)."""

    matchers: tuple[LabelMatcher, ...]
    start_unix_micro: int | None
    end_unix_micro: int | None
    page_size: int
    after_series_id: int
    fingerprint: str


def plan_listing(listing: SeriesListing) -> ListPlan:
    """Validate and bound a ListSeries request.

    Raises:
        InvalidArgumentError: naming `matchers[i]...`, `time_range`, `page_size` or `page_token`.
    """
    validate_matchers(listing.matchers, "matchers", selective=False)
    start = None if listing.start_unix_nano is None else listing.start_unix_nano // 1_000
    end = None if listing.end_unix_nano is None else -(-listing.end_unix_nano // 1_000)
    if start is not None and end is not None and start >= end:
        raise InvalidArgumentError("time_range", "start_time must be before end_time")
    page_size = LIST_PAGE_SIZE.resolve(listing.page_size, "page_size")
    fingerprint = _fingerprint(listing.matchers, start, end, page_size)
    cursor = decode_token(listing.page_token, query=fingerprint)
    return ListPlan(
        matchers=listing.matchers,
        start_unix_micro=start,
        end_unix_micro=end,
        page_size=page_size,
        after_series_id=0 if cursor is None else cursor.series_id - 1,
        fingerprint=fingerprint,
    )
