"""What the ingestion use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sentinel.ingestion.domain.derive import ColumnarSamples


@dataclass(frozen=True)
class StoredBatch:
    """Storage's answer to a committed (or already committed) batch."""

    points_written: int
    duplicate: bool


class SampleStore(Protocol):
    """Durable sample storage (the storage service)."""

    async def write(
        self, *, tenant: str, batch_id: str, samples: ColumnarSamples, deadline_s: float
    ) -> StoredBatch:
        """Write `samples` once per (tenant, batch_id); return after the commit."""
        ...


class SampleForwarder(Protocol):
    """Hands accepted samples to detection without holding up the caller."""

    def forward(self, *, tenant: str, batch_id: str, samples: ColumnarSamples) -> None:
        """Queue `samples` for scoring; never blocks."""
        ...
