"""Series -> engine slot table: bounded, least-recently-used eviction, pins for in-flight work."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from sentinel.detection.domain.series import SeriesRef

NO_TIME = -(2**63)


@dataclass(eq=False)
class SeriesEntry:
    """What the service keeps about a series whose state occupies an engine slot.

    Attributes:
        slot: row of the engine state arrays.
        last_time: latest point time accepted for scoring (checked for out-of-order points).
        pins: scoring jobs in flight that use the slot; a pinned entry is never evicted.
        prep: state to load into the slot before it is first scored: checkpoint bytes, or
            ``b""`` to empty the slot; None once applied.
        dirty: scored since the last checkpoint.
        checkpoint_unix_nano: when the state was last checkpointed (0 if never).
    """

    ref: SeriesRef
    slot: int
    last_time: int = NO_TIME
    pins: int = 0
    prep: bytes | None = b""
    dirty: bool = False
    checkpoint_unix_nano: int = 0


class SlotsExhaustedError(Exception):
    """Every slot is pinned by in-flight work; nothing can be evicted."""


class SlotTable:
    """At most `capacity` series hold a slot; the least recently used unpinned one is evicted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._entries: OrderedDict[SeriesRef, SeriesEntry] = OrderedDict()
        self._free = list(range(capacity - 1, -1, -1))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ref: SeriesRef) -> bool:
        return ref in self._entries

    def peek(self, ref: SeriesRef) -> SeriesEntry | None:
        """The entry of `ref` without marking it used."""
        return self._entries.get(ref)

    def get(self, ref: SeriesRef) -> SeriesEntry | None:
        """The entry of `ref`, marked most recently used."""
        entry = self._entries.get(ref)
        if entry is not None:
            self._entries.move_to_end(ref)
        return entry

    def entries(self) -> list[SeriesEntry]:
        """Every entry, least recently used first."""
        return list(self._entries.values())

    def add(self, ref: SeriesRef) -> tuple[SeriesEntry, SeriesEntry | None]:
        """Give `ref` a slot, evicting the least recently used unpinned series if all are taken.

        Returns:
            The new entry (most recently used, ``prep`` = empty the slot) and the evicted entry.

        Raises:
            SlotsExhaustedError: every slot is pinned.
        """
        if ref in self._entries:
            raise ValueError(f"{ref} already has a slot")
        evicted = None
        if not self._free:
            victim = next((e for e in self._entries.values() if e.pins == 0), None)
            if victim is None:
                raise SlotsExhaustedError(f"all {self.capacity} series slots are in use by in-flight work")
            del self._entries[victim.ref]
            self._free.append(victim.slot)
            evicted = victim
        entry = SeriesEntry(ref=ref, slot=self._free.pop())
        self._entries[ref] = entry
        return entry, evicted
