"""What the detection use cases need from the outside world (implemented in `adapters`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from sentinel.detection.domain.episodes import EpisodeChange
from sentinel.detection.domain.multivariate import MultivariateAnomaly


class StateStore(Protocol):
    """Checkpoints of per-series engine state, by key. One command batch per call, never per key."""

    durable: bool
    """False for the in-memory-only store (nothing survives a restart)."""

    async def load(self, keys: Sequence[str]) -> list[bytes | None]:
        """The checkpoint of each key (None where there is none), in one round trip.

        Raises:
            UnavailableError: the store cannot be reached.
        """
        ...

    async def save(self, states: Mapping[str, bytes]) -> None:
        """Write checkpoints, in one pipelined round trip.

        Raises:
            UnavailableError: the store cannot be reached.
        """
        ...

    async def open(self) -> None:
        """Connect (and check the store answers)."""
        ...

    async def close(self) -> None: ...


class AnomalySink(Protocol):
    """Where anomalous episodes go: storage (every change) and incident-manager (new episodes).

    `publish` never blocks scoring: it queues, and a background task delivers.
    """

    def publish(self, tenant: str, changes: Sequence[EpisodeChange], *, threshold: float) -> int:
        """Queue the changes of one scoring call; returns how many were accepted."""
        ...

    def publish_multivariate(self, changes: Sequence[MultivariateAnomaly], *, threshold: float) -> int:
        """Queue changes of multivariate (`llm.multivariate`) episodes; returns how many were accepted."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Deliver what is queued (within a bounded time), then stop."""
        ...
