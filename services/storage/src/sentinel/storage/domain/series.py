"""Series identity: (tenant, name, sorted labels) and its sha256."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sentinel.runtime.errors import InvalidArgumentError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
NAME_LABEL = "__name__"  # in matchers, the series name; reserved as a label key
MAX_LABELS = 32
MAX_LABEL_KEY = 100
MAX_LABEL_VALUE = 500


@dataclass(frozen=True)
class SeriesKey:
    """A metric name and its labels, sorted by key (so equal series compare and hash equal)."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
        """A key from a name and a label mapping (in any order)."""
        return cls(name, tuple(sorted((labels or {}).items())))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def validate_series_key(key: SeriesKey, field: str) -> None:
    """Check name and labels against the documented limits.

    Raises:
        InvalidArgumentError: naming `field.name` or `field.labels[...]`.
    """
    if not NAME_PATTERN.fullmatch(key.name):
        problem = "must not be empty" if not key.name else "must be 1..200 characters of [A-Za-z0-9_.:-]"
        raise InvalidArgumentError(f"{field}.name", problem)
    if len(key.labels) > MAX_LABELS:
        raise InvalidArgumentError(f"{field}.labels", f"has {len(key.labels)} labels; at most {MAX_LABELS}")
    for label, value in key.labels:
        if not 0 < len(label) <= MAX_LABEL_KEY:
            raise InvalidArgumentError(
                f"{field}.labels", f"key {label[:20]!r} must be 1..{MAX_LABEL_KEY} characters"
            )
        if label == NAME_LABEL:
            raise InvalidArgumentError(
                f"{field}.labels", f"key {NAME_LABEL!r} is reserved for the series name"
            )
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidArgumentError(
                f"{field}.labels[{label}]", f"value must be at most {MAX_LABEL_VALUE} characters"
            )


def canonical_key(tenant: str, key: SeriesKey) -> bytes:
    """The unambiguous byte encoding that identity hashes are taken over (versioned)."""
    return json.dumps(
        ["series/v1", tenant, key.name, [list(pair) for pair in key.labels]],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def series_hash(tenant: str, key: SeriesKey) -> bytes:
    """sha256 of the canonical key: 32 bytes, unique per (tenant, name, labels)."""
    return hashlib.sha256(canonical_key(tenant, key)).digest()
