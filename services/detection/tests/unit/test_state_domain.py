"""Pure domain: slot LRU, out-of-order detection, episode folding, the recent-results ring."""

from __future__ import annotations

import numpy as np
import pytest

from sentinel.detection.domain.batch import ScoreRequest, out_of_order, validate_request
from sentinel.detection.domain.episodes import AnomalousPoint, EpisodeTracker, anomaly_id_for
from sentinel.detection.domain.recent import RecentRing
from sentinel.detection.domain.series import SeriesKey, SeriesRef
from sentinel.detection.domain.slots import SlotsExhaustedError, SlotTable
from sentinel.runtime.errors import InvalidArgumentError

NEVER = np.iinfo(np.int64).min


def ref(name: str, tenant: str = "t") -> SeriesRef:
    return SeriesRef(tenant, SeriesKey.of(name, {"service": "chat"}))


# -- slots ------------------------------------------------------------------------------------------


def test_the_least_recently_used_unpinned_series_is_evicted() -> None:
    table = SlotTable(2)
    table.add(ref("a"))
    b, _ = table.add(ref("b"))
    table.get(ref("a"))  # a is now the most recent
    c, evicted = table.add(ref("c"))
    assert evicted is b
    assert c.slot == b.slot
    assert ref("b") not in table and ref("a") in table


def test_pinned_series_are_never_evicted() -> None:
    table = SlotTable(2)
    a, _ = table.add(ref("a"))
    b, _ = table.add(ref("b"))
    a.pins = 1
    _, evicted = table.add(ref("c"))
    assert evicted is b
    table.peek(ref("c")).pins = 1  # type: ignore[union-attr]
    with pytest.raises(SlotsExhaustedError):
        table.add(ref("d"))


def test_series_keys_ignore_label_order_and_differ_by_tenant() -> None:
    one = SeriesRef("t", SeriesKey.of("m", {"a": "1", "b": "2"}))
    same = SeriesRef("t", SeriesKey.of("m", {"b": "2", "a": "1"}))
    other = SeriesRef("u", SeriesKey.of("m", {"a": "1", "b": "2"}))
    assert one == same and one.digest == same.digest
    assert one.digest != other.digest


# -- out of order -----------------------------------------------------------------------------------


def test_points_older_than_their_series_past_are_flagged() -> None:
    slots = np.array([0, 1, 0, 0, 1, 0])
    times = np.array([10, 5, 12, 11, 4, 12])
    last = np.array([9, 6, 9, 9, 6, 9])
    assert out_of_order(slots, times, last).tolist() == [False, True, False, True, True, False]


def test_equal_times_are_in_order() -> None:
    slots = np.array([0, 0, 0])
    assert not out_of_order(slots, np.array([5, 5, 5]), np.array([5, 5, 5])).any()


def test_validation_names_the_first_non_finite_value() -> None:
    request = ScoreRequest(
        batch_id="",
        series=(SeriesKey.of("m"),),
        series_index=np.zeros(3, dtype=np.int64),
        time_unix_nano=np.arange(3, dtype=np.int64),
        value=np.array([1.0, np.nan, np.inf]),
    )
    with pytest.raises(InvalidArgumentError) as caught:
        validate_request(request)
    assert caught.value.field == "batch.value[1]"
    assert caught.value.reason == "NON_FINITE_VALUE"
    assert caught.value.metadata["index"] == "1"


# -- episodes ---------------------------------------------------------------------------------------


def point(t: int, score: float = 0.8) -> AnomalousPoint:
    return AnomalousPoint(t, 10.0 + score, 1.0, score, 2, 1, 0, 1, (score, 0.0))


def test_anomalous_points_within_the_gap_fold_into_one_episode_with_its_peak() -> None:
    tracker = EpisodeTracker(gap_ns=10)
    changes = tracker.observe(ref("a"), [point(100), point(105, 0.95), point(112, 0.75)], 112)
    assert len(changes) == 1 and changes[0].opened
    episode = changes[0].episode
    assert (episode.start_unix_nano, episode.peak_unix_nano, episode.point_count) == (100, 105, 3)
    assert episode.score == 0.95 and episode.end_unix_nano is None
    assert episode.anomaly_id == anomaly_id_for(ref("a"), 100)


def test_a_calm_point_beyond_the_gap_closes_the_episode_and_a_later_spike_opens_another() -> None:
    tracker = EpisodeTracker(gap_ns=10)
    tracker.observe(ref("a"), [point(100)], 100)
    closed = tracker.observe(ref("a"), [], 130)
    assert [c.episode.end_unix_nano for c in closed] == [100]
    assert not tracker.is_open(ref("a"))
    changes = tracker.observe(ref("a"), [point(200), point(300)], 300)
    assert [(c.episode.start_unix_nano, c.opened, c.episode.end_unix_nano) for c in changes] == [
        (200, True, 200),
        (300, True, None),
    ]


def test_an_episode_grown_across_batches_is_updated_not_reopened() -> None:
    tracker = EpisodeTracker(gap_ns=10)
    first = tracker.observe(ref("a"), [point(100)], 100)
    second = tracker.observe(ref("a"), [point(108)], 108)
    assert first[0].opened and not second[0].opened
    assert second[0].episode.anomaly_id == first[0].episode.anomaly_id
    assert second[0].episode.point_count == 2


# -- recent ring ------------------------------------------------------------------------------------


def test_the_ring_keeps_the_last_points_of_each_slot_in_order() -> None:
    ring = RecentRing(capacity=3, size=4, n_detectors=2)
    slots = np.array([0, 1, 0, 0, 0, 0, 0])
    n = len(slots)
    t = np.arange(n, dtype=np.int64)

    def record(s: np.ndarray, times: np.ndarray) -> None:
        k = len(s)
        ring.record(
            s,
            time=times,
            value=times.astype(float),
            baseline=np.zeros(k),
            score=np.full(k, 0.5),
            severity=np.ones(k, dtype=np.int8),
            detector=np.zeros(k, dtype=np.int8),
            direction=np.ones(k, dtype=np.int8),
            contributions=np.zeros((k, 2)),
        )

    record(slots, t)
    assert [p.time_unix_nano for p in ring.points(0)] == [3, 4, 5, 6]
    assert [p.time_unix_nano for p in ring.points(1)] == [1]
    record(np.array([0]), np.array([7]))
    assert [p.time_unix_nano for p in ring.points(0)] == [4, 5, 6, 7]
    ring.clear(0)
    assert ring.points(0) == []


def test_open_among_finds_the_positions_of_series_with_an_open_episode() -> None:
    tracker = EpisodeTracker(gap_ns=10)
    refs = [ref(n) for n in "abcd"]
    assert tracker.open_among(refs) == set()
    tracker.observe(ref("c"), [point(100)], 100)
    tracker.observe(ref("z"), [point(100)], 100)
    assert tracker.open_among(refs) == {2}
    assert tracker.open_among([ref("z"), ref("a"), ref("c")]) == {0, 2}
