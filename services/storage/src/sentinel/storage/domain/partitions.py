"""Daily partitions of samples: naming and day arithmetic (UTC days since the Unix epoch)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

NANOS_PER_DAY = 86_400 * 1_000_000_000
MICROS_PER_DAY = 86_400 * 1_000_000
_EPOCH = date(1970, 1, 1)
_NAME = re.compile(r"^samples_p(\d{8})$")


@dataclass(frozen=True)
class Partition:
    """One daily partition: [start, end) in microseconds since the Unix epoch, and its size."""

    name: str
    start_unix_micro: int
    end_unix_micro: int
    approximate_rows: int = 0
    size_bytes: int = 0


def partition_name(day: int) -> str:
    """`samples_pYYYYMMDD` for a day number (days since 1970-01-01 UTC)."""
    return f"samples_p{(_EPOCH + timedelta(days=day)):%Y%m%d}"


def day_of_name(name: str) -> int | None:
    """The day number of a `samples_pYYYYMMDD` name; None for any other name."""
    match = _NAME.match(name)
    if match is None:
        return None
    return (datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date() - _EPOCH).days


def day_bounds_micro(day: int) -> tuple[int, int]:
    """[start, end) of a day in microseconds since the Unix epoch."""
    return day * MICROS_PER_DAY, (day + 1) * MICROS_PER_DAY
