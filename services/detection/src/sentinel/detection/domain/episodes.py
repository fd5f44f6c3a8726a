"""Anomaly episodes: consecutive anomalous points of one series folded into one record (pure)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sentinel.detection.domain.series import SeriesRef


@dataclass(frozen=True, slots=True)
class AnomalousPoint:
    """One point scored at or above the threshold, with what the engine said about it."""

    time_unix_nano: int
    value: float
    baseline: float
    score: float
    severity: int
    anomaly_type: int
    detector: int
    direction: int
    contributions: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Episode:
    """An anomalous episode of one series, as of its latest point.

    Attributes:
        anomaly_id: stable id (from tenant, series and start time); empty for stateless scoring.
        end_unix_nano: last anomalous point once the episode is closed; None while open.
        last_unix_nano: last anomalous point so far (open or closed).
        value, baseline, score, severity, anomaly_type, detector, direction, contributions: at
            the peak (the highest-scoring point).
    """

    ref: SeriesRef
    anomaly_id: str
    start_unix_nano: int
    peak_unix_nano: int
    last_unix_nano: int
    end_unix_nano: int | None
    value: float
    baseline: float
    score: float
    severity: int
    anomaly_type: int
    detector: int
    direction: int
    contributions: tuple[float, ...]
    point_count: int

    @property
    def closed(self) -> bool:
        return self.end_unix_nano is not None


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    """An episode opened, grown or closed by one batch (`opened`: first seen in this batch)."""

    episode: Episode
    opened: bool


def anomaly_id_for(ref: SeriesRef, start_unix_nano: int) -> str:
    """The deterministic id of the episode of `ref` starting at `start_unix_nano`."""
    digest = hashlib.sha256(f"anomaly/v1|{ref.digest}|{start_unix_nano}".encode()).hexdigest()
    return f"anm_{digest[:32]}"


def _open(ref: SeriesRef, point: AnomalousPoint, *, with_id: bool) -> Episode:
    return Episode(
        ref=ref,
        anomaly_id=anomaly_id_for(ref, point.time_unix_nano) if with_id else "",
        start_unix_nano=point.time_unix_nano,
        peak_unix_nano=point.time_unix_nano,
        last_unix_nano=point.time_unix_nano,
        end_unix_nano=None,
        value=point.value,
        baseline=point.baseline,
        score=point.score,
        severity=point.severity,
        anomaly_type=point.anomaly_type,
        detector=point.detector,
        direction=point.direction,
        contributions=point.contributions,
        point_count=1,
    )


def _grow(episode: Episode, point: AnomalousPoint) -> Episode:
    if point.score > episode.score:
        return dataclasses.replace(
            episode,
            peak_unix_nano=point.time_unix_nano,
            last_unix_nano=point.time_unix_nano,
            value=point.value,
            baseline=point.baseline,
            score=point.score,
            severity=point.severity,
            anomaly_type=point.anomaly_type,
            detector=point.detector,
            direction=point.direction,
            contributions=point.contributions,
            point_count=episode.point_count + 1,
        )
    return dataclasses.replace(
        episode, last_unix_nano=point.time_unix_nano, point_count=episode.point_count + 1
    )


class EpisodeTracker:
    """Open episodes per series. Anomalous points within `gap_ns` of the previous anomalous point
    of the same series join its episode; a later point (of any score) beyond the gap closes it.
    """

    def __init__(self, *, gap_ns: int, with_ids: bool = True) -> None:
        if gap_ns < 0:
            raise ValueError("gap_ns must not be negative")
        self.gap_ns = gap_ns
        self._with_ids = with_ids
        self._open: dict[SeriesRef, Episode] = {}

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, ref: SeriesRef) -> bool:
        return ref in self._open

    def open_among(self, refs: Sequence[SeriesRef]) -> set[int]:
        """Positions in `refs` of the series with an open episode.

        One set intersection (a C loop) instead of a method call per series: this runs for every
        series of every scored request, and open episodes are rare.
        """
        if not self._open:
            return set()
        found = self._open.keys() & set(refs)
        if not found:
            return set()
        return {i for i, r in enumerate(refs) if r in found}

    def observe(
        self, ref: SeriesRef, anomalous: Sequence[AnomalousPoint], latest_unix_nano: int
    ) -> list[EpisodeChange]:
        """Fold one batch of a series into its episodes.

        Args:
            ref: the series.
            anomalous: its anomalous points of the batch, in time order.
            latest_unix_nano: time of its latest point in the batch (anomalous or not).

        Returns:
            Every episode opened, grown or closed, in time order (at most one change per episode).
        """
        changes: dict[int, EpisodeChange] = {}
        order: list[int] = []

        def record(episode: Episode, opened: bool) -> None:
            key = episode.start_unix_nano
            if key not in changes:
                order.append(key)
            else:
                opened = opened or changes[key].opened
            changes[key] = EpisodeChange(episode, opened)

        current = self._open.get(ref)
        for point in anomalous:
            if current is not None and point.time_unix_nano - current.last_unix_nano <= self.gap_ns:
                current = _grow(current, point)
                record(current, False)
            else:
                if current is not None:
                    record(dataclasses.replace(current, end_unix_nano=current.last_unix_nano), False)
                current = _open(ref, point, with_id=self._with_ids)
                record(current, True)
        if current is not None and latest_unix_nano - current.last_unix_nano > self.gap_ns:
            current = dataclasses.replace(current, end_unix_nano=current.last_unix_nano)
            record(current, False)
        if current is None or current.closed:
            self._open.pop(ref, None)
        else:
            self._open[ref] = current
        return [changes[key] for key in order]

    def close(self, ref: SeriesRef) -> EpisodeChange | None:
        """Close the open episode of `ref` now (its series leaves memory); None if none is open."""
        current = self._open.pop(ref, None)
        if current is None:
            return None
        return EpisodeChange(dataclasses.replace(current, end_unix_nano=current.last_unix_nano), False)

    def open_episodes(self) -> list[Episode]:
        """The episodes still open, by series."""
        return list(self._open.values())
