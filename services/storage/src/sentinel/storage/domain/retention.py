"""Retention requests: what may be dropped, and the guard against dropping recent data."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sentinel.runtime.errors import FailedPreconditionError, InvalidArgumentError

NANOS_PER_HOUR = 3_600 * 1_000_000_000
MIN_CUTOFF_AGE_NANO = 24 * NANOS_PER_HOUR


class RetentionData(enum.Enum):
    """Kinds of time-partitioned data."""

    SAMPLES = "samples"
    ROLLUPS = "rollups"
    ANOMALIES = "anomalies"


@dataclass(frozen=True)
class RetentionRequest:
    """Drop partitions of `data` ending at or before `cutoff_unix_nano` (or only list them)."""

    data: RetentionData | None
    cutoff_unix_nano: int | None
    dry_run: bool = False


def plan_retention(request: RetentionRequest, *, now_unix_nano: int) -> int:
    """Validate a retention request; returns the cutoff in microseconds.

    Raises:
        InvalidArgumentError: data unspecified, cutoff unset or less than 24 hours ago.
        FailedPreconditionError: a kind of data this storage does not keep yet.
    """
    if request.data is None:
        raise InvalidArgumentError("data", "must be set (RETENTION_DATA_SAMPLES)")
    if request.cutoff_unix_nano is None:
        raise InvalidArgumentError("cutoff_time", "is required")
    if request.cutoff_unix_nano > now_unix_nano - MIN_CUTOFF_AGE_NANO:
        raise InvalidArgumentError("cutoff_time", "must be at least 24 hours ago")
    if request.data is not RetentionData.SAMPLES:
        raise FailedPreconditionError(
            f"no such data stored yet: {request.data.value} are not kept by this storage version",
            reason="NO_SUCH_DATA",
        )
    return request.cutoff_unix_nano // 1_000
