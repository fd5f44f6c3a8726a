"""Series identity: (tenant, name, sorted labels), its limits and a stable digest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sentinel.runtime.errors import InvalidArgumentError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
MAX_LABELS = 32
MAX_LABEL_KEY = 100
MAX_LABEL_VALUE = 500


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A metric name and its labels sorted by key, so that equal series compare and hash equal."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    # Hashed once: keys are looked up in dicts several times per point batch (slot table, caches),
    # and hashing the label tuples each time showed up in profiles.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.labels)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[SeriesKey], tuple[str, tuple[tuple[str, str], ...]]]:
        # String hashes differ between processes: an unpickled key hashes afresh.
        return (SeriesKey, (self.name, self.labels))

    @classmethod
    def of(cls, name: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
        """A key from a name and a label mapping in any order."""
        return cls(name, tuple(sorted((labels or {}).items())))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One series of one tenant: the identity that detection state is kept under."""

    tenant: str
    key: SeriesKey
    _hash: int = field(init=False, repr=False, compare=False)  # see SeriesKey

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.tenant, self.key._hash)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[SeriesRef], tuple[str, SeriesKey]]:
        return (SeriesRef, (self.tenant, self.key))

    @property
    def digest(self) -> str:
        """Hex sha256 of the canonical (tenant, name, labels) encoding; stable across processes."""
        canonical = json.dumps(
            ["series/v1", self.tenant, self.key.name, [list(pair) for pair in self.key.labels]],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def validate_series_key(key: SeriesKey, field: str) -> None:
    """Check a key against the SeriesKey limits of the contract.

    Raises:
        InvalidArgumentError: reason INVALID_SERIES_KEY, naming `field.name` or `field.labels`.
    """

    def bad(where: str, problem: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{field}{where}", problem, reason="INVALID_SERIES_KEY")

    if not NAME_PATTERN.fullmatch(key.name):
        raise bad(".name", "must be 1..200 characters of [A-Za-z0-9_.:-]")
    if len(key.labels) > MAX_LABELS:
        raise bad(".labels", f"has {len(key.labels)} labels; at most {MAX_LABELS}")
    for label, value in key.labels:
        if not 0 < len(label) <= MAX_LABEL_KEY:
            raise bad(".labels", f"key {label[:20]!r} must be 1..{MAX_LABEL_KEY} characters")
        if len(value) > MAX_LABEL_VALUE:
            raise bad(f".labels[{label}]", f"value must be at most {MAX_LABEL_VALUE} characters")
