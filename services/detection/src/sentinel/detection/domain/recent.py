"""The latest scored points of every slot, in NumPy rings (for ExplainScore), updated per batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
I8Array = npt.NDArray[np.int8]


def rank_within_slot(slots: IntArray) -> IntArray:
    """For each point, how many earlier points (in input order) share its slot."""
    n = len(slots)
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    start = np.ones(n, dtype=bool)
    start[1:] = s[1:] != s[:-1]
    group_start = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start
    return rank


@dataclass(frozen=True)
class RecentPoint:
    """One retained scored point."""

    time_unix_nano: int
    value: float
    baseline: float
    score: float
    severity: int
    detector: int
    direction: int
    contributions: tuple[float, ...]


class RecentRing:
    """For each of `capacity` slots, the last `size` scored points (time order kept by a cursor).

    Memory: capacity x size x (7 + n_detectors) x 8 bytes.
    """

    def __init__(self, capacity: int, size: int, n_detectors: int) -> None:
        if size < 1:
            raise ValueError("size must be positive")
        self.size = size
        self.time = np.zeros((capacity, size), dtype=np.int64)
        self.value = np.full((capacity, size), np.nan)
        self.baseline = np.full((capacity, size), np.nan)
        self.score = np.full((capacity, size), np.nan)
        self.severity = np.zeros((capacity, size), dtype=np.int8)
        self.detector = np.zeros((capacity, size), dtype=np.int8)
        self.direction = np.zeros((capacity, size), dtype=np.int8)
        self.contributions = np.zeros((capacity, size, n_detectors))
        self.count = np.zeros(capacity, dtype=np.int64)  # points ever written (cursor = count % size)

    def clear(self, slot: int) -> None:
        """Forget a slot's points (a new series takes it)."""
        self.count[slot] = 0

    def record(
        self,
        slots: IntArray,
        *,
        time: IntArray,
        value: FloatArray,
        baseline: FloatArray,
        score: FloatArray,
        severity: I8Array,
        detector: I8Array,
        direction: I8Array,
        contributions: FloatArray,
    ) -> None:
        """Append scored points (several per slot allowed, in order); vectorised, no per-point Python."""
        n = len(slots)
        if n == 0:
            return
        # rank of each point among its slot's points in this batch, and how many each slot has
        rank = rank_within_slot(slots)
        per_slot = np.bincount(slots, minlength=len(self.count))[slots]
        keep = rank >= per_slot - self.size  # no two kept points share a ring cell
        s = slots[keep]
        pos = (self.count[s] + rank[keep]) % self.size
        self.time[s, pos] = time[keep]
        self.value[s, pos] = value[keep]
        self.baseline[s, pos] = baseline[keep]
        self.score[s, pos] = score[keep]
        self.severity[s, pos] = severity[keep]
        self.detector[s, pos] = detector[keep]
        self.direction[s, pos] = direction[keep]
        self.contributions[s, pos] = contributions[keep]
        np.add.at(self.count, slots, 1)

    def points(self, slot: int) -> list[RecentPoint]:
        """The retained points of a slot, oldest first."""
        count = int(self.count[slot])
        held = min(count, self.size)
        out = []
        for k in range(count - held, count):
            p = k % self.size
            out.append(
                RecentPoint(
                    time_unix_nano=int(self.time[slot, p]),
                    value=float(self.value[slot, p]),
                    baseline=float(self.baseline[slot, p]),
                    score=float(self.score[slot, p]),
                    severity=int(self.severity[slot, p]),
                    detector=int(self.detector[slot, p]),
                    direction=int(self.direction[slot, p]),
                    contributions=tuple(float(c) for c in self.contributions[slot, p]),
                )
            )
        return out
