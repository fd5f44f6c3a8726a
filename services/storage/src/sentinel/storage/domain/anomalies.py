"""Anomalies as storage keeps them: validation of writes, planning of listings (pure)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass

from sentinel.runtime.errors import InvalidArgumentError
from sentinel.storage.domain.query import LabelMatcher, Limits, validate_matchers
from sentinel.storage.domain.series import SeriesKey, validate_series_key

MAX_ANOMALIES_PER_WRITE = 1000
MAX_ANOMALY_ID = 128
PAGE_SIZE = Limits(100, 1_000)
_TOKEN_VERSION = 1


@dataclass(frozen=True)
class Contribution:
    """One detector's share in an anomaly's score."""

    detector: str
    score: float
    weight: float
    statistic: float


@dataclass(frozen=True)
class AnomalyRecord:
    """One anomalous episode of one series (times in nanoseconds since the Unix epoch)."""

    anomaly_id: str
    series: SeriesKey
    start_unix_nano: int | None
    peak_unix_nano: int | None
    end_unix_nano: int | None
    value: float
    baseline: float
    score: float
    severity: int
    anomaly_type: int
    contributions: tuple[Contribution, ...] = ()
    explanation: str = ""
    point_count: int = 0


def validate_anomalies(records: tuple[AnomalyRecord, ...]) -> tuple[AnomalyRecord, ...]:
    """Check a write and fold repeated ids (the last one wins, as two writes in a row would).

    Raises:
        InvalidArgumentError: naming `anomalies[i].<field>`.
    """
    if not records:
        raise InvalidArgumentError("anomalies", "must not be empty")
    if len(records) > MAX_ANOMALIES_PER_WRITE:
        raise InvalidArgumentError(
            "anomalies", f"has {len(records)} anomalies; at most {MAX_ANOMALIES_PER_WRITE}"
        )
    for i, record in enumerate(records):
        field = f"anomalies[{i}]"
        if not 0 < len(record.anomaly_id) <= MAX_ANOMALY_ID:
            raise InvalidArgumentError(f"{field}.anomaly_id", f"must be 1..{MAX_ANOMALY_ID} characters")
        validate_series_key(record.series, f"{field}.series")
        if record.start_unix_nano is None:
            raise InvalidArgumentError(f"{field}.start_time", "is required")
        if not (math.isfinite(record.score) and 0.0 <= record.score <= 1.0):
            raise InvalidArgumentError(f"{field}.score", "must be in [0, 1]")
        if record.point_count < 0:
            raise InvalidArgumentError(f"{field}.point_count", "must not be negative")
    return tuple({record.anomaly_id: record for record in records}.values())


@dataclass(frozen=True)
class AnomalyListing:
    """A ListAnomalies request as the domain sees it."""

    matchers: tuple[LabelMatcher, ...] = ()
    series_id: str = ""
    start_unix_nano: int | None = None
    end_unix_nano: int | None = None
    severities: tuple[int, ...] = ()
    anomaly_types: tuple[int, ...] = ()
    min_score: float = 0.0
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class AnomalyCursor:
    """Where the next page starts: after (start_time, anomaly_id) in newest-first order."""

    start_unix_micro: int
    anomaly_id: str


@dataclass(frozen=True)
class AnomalyListPlan:
    """A validated listing (times in microseconds; None = unbounded)."""

    matchers: tuple[LabelMatcher, ...]
    series_id: int | None
    start_unix_micro: int | None
    end_unix_micro: int | None
    severities: tuple[int, ...]
    anomaly_types: tuple[int, ...]
    min_score: float
    page_size: int
    cursor: AnomalyCursor | None
    fingerprint: str


def plan_anomaly_listing(listing: AnomalyListing) -> AnomalyListPlan:
    """Validate and bound a listing.

    Raises:
        InvalidArgumentError: naming `matchers[i]...`, `series_id`, `time_range`, `min_score`,
            `page_size` or `page_token`.
    """
    validate_matchers(listing.matchers, "matchers", selective=False)
    series_id = None
    if listing.series_id:
        if not listing.series_id.isdigit() or len(listing.series_id) > 18:
            raise InvalidArgumentError("series_id", "must be a series id as returned by storage")
        series_id = int(listing.series_id)
    start = None if listing.start_unix_nano is None else listing.start_unix_nano // 1_000
    end = None if listing.end_unix_nano is None else -(-listing.end_unix_nano // 1_000)
    if start is not None and end is not None and start >= end:
        raise InvalidArgumentError("time_range", "start_time must be before end_time")
    if not (math.isfinite(listing.min_score) and 0.0 <= listing.min_score <= 1.0):
        raise InvalidArgumentError("min_score", "must be in [0, 1]")
    page_size = PAGE_SIZE.resolve(listing.page_size, "page_size")
    fingerprint = hashlib.sha256(
        repr(
            (
                listing.matchers,
                series_id,
                start,
                end,
                sorted(set(listing.severities)),
                sorted(set(listing.anomaly_types)),
                listing.min_score,
                page_size,
            )
        ).encode()
    ).hexdigest()[:16]
    return AnomalyListPlan(
        matchers=listing.matchers,
        series_id=series_id,
        start_unix_micro=start,
        end_unix_micro=end,
        severities=tuple(sorted(set(listing.severities))),
        anomaly_types=tuple(sorted(set(listing.anomaly_types))),
        min_score=listing.min_score,
        page_size=page_size,
        cursor=decode_anomaly_token(listing.page_token, fingerprint),
        fingerprint=fingerprint,
    )


def encode_anomaly_token(cursor: AnomalyCursor, fingerprint: str) -> str:
    """The opaque next_page_token of a listing."""
    raw = json.dumps(
        [_TOKEN_VERSION, fingerprint, cursor.start_unix_micro, cursor.anomaly_id], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_anomaly_token(token: str, fingerprint: str) -> AnomalyCursor | None:
    """The cursor of a page token (None for the first page).

    Raises:
        InvalidArgumentError: malformed, or made by another listing.
    """
    if not token:
        return None
    try:
        version, made_for, start, anomaly_id = json.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        )
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgumentError("page_token", "is not a token this service issued") from None
    if version != _TOKEN_VERSION or not isinstance(start, int) or not isinstance(anomaly_id, str):
        raise InvalidArgumentError("page_token", "is not a token this service issued")
    if made_for != fingerprint:
        raise InvalidArgumentError("page_token", "belongs to a different query; send the same parameters")
    return AnomalyCursor(start, anomaly_id)


@dataclass(frozen=True)
class AnomalyPage:
    """One page of ListAnomalies."""

    anomalies: tuple[AnomalyRecord, ...]
    next_page_token: str = ""


@dataclass(frozen=True)
class AnomalyWriteResult:
    """Outcome of WriteAnomalies."""

    inserted: int
    updated: int
