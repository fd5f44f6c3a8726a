"""Protobuf <-> domain conversion of the detection service."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2
from sentinel.api.detection.v1 import detection_service_pb2 as pb
from sentinel.detection.domain.batch import OutOfOrder, validate_request
from sentinel.detection.domain.episodes import Episode
from sentinel.detection.domain.results import ScoreOutcome
from sentinel.detection.domain.series import SeriesKey, SeriesRef
from sentinel.detection.engine import DETECTOR_NAMES
from sentinel.detection.grpc import convert
from sentinel.runtime.errors import InvalidArgumentError


def test_a_request_lands_in_numpy_columns_with_its_policy() -> None:
    request = pb.ScoreSamplesRequest(
        batch=common_pb2.SampleBatch(
            batch_id="b",
            series=[common_pb2.SeriesKey(name="m", labels={"z": "1", "a": "2"})],
            series_index=[0, 0],
            time_unix_nano=[1, 2],
            value=[0.5, 1.5],
        ),
        out_of_order_policy=detection_pb2.OUT_OF_ORDER_POLICY_SKIP,
        report_anomalies=True,
    )
    domain = convert.score_request(request)
    assert domain.series == (SeriesKey("m", (("a", "2"), ("z", "1"))),)
    assert domain.value.dtype == np.float64 and domain.time_unix_nano.dtype == np.int64
    assert domain.out_of_order is OutOfOrder.SKIP and domain.report_anomalies


def test_an_unknown_policy_is_invalid() -> None:
    request = pb.ScoreSamplesRequest(out_of_order_policy=99)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        convert.score_request(request)


def test_outcome_columns_keep_nan_and_detector_columns() -> None:
    outcome = ScoreOutcome(
        batch_id="b",
        score=np.array([0.1, np.nan]),
        is_anomaly=np.array([False, False]),
        severity=np.zeros(2, dtype=np.int8),
        anomaly_type=np.zeros(2, dtype=np.int8),
        baseline=np.array([1.0, np.nan]),
        contributions=np.zeros((2, len(DETECTOR_NAMES))),
        threshold=0.7,
        weights=tuple([1 / len(DETECTOR_NAMES)] * len(DETECTOR_NAMES)),
        skipped_index=np.array([1]),
    )
    response = convert.score_response(outcome)
    assert math.isnan(response.scores.score[1])
    assert list(response.skipped_index) == [1]
    assert [c.detector for c in response.scores.detectors] == list(DETECTOR_NAMES)


def test_an_open_episode_has_no_end_time_and_a_closed_one_has() -> None:
    episode = Episode(
        ref=SeriesRef("t", SeriesKey.of("llm.latency_ms", {"service": "chat"})),
        anomaly_id="anm_1",
        start_unix_nano=1_000_000_000,
        peak_unix_nano=2_000_000_000,
        last_unix_nano=3_000_000_000,
        end_unix_nano=None,
        value=2400.0,
        baseline=380.0,
        score=0.93,
        severity=4,
        anomaly_type=1,
        detector=0,
        direction=1,
        contributions=(0.93, 0.1, 0.0, 0.2, 0.0, 0.0),
        point_count=3,
    )
    weights = (1 / 6,) * 6
    open_message = convert.anomaly_message(episode, weights=weights, half_surprise=6.0, threshold=0.7)
    assert not open_message.HasField("end_time")
    assert open_message.anomaly_type == common_pb2.ANOMALY_TYPE_LATENCY_SPIKE
    assert open_message.severity == common_pb2.SEVERITY_HIGH
    assert open_message.peak_time.seconds == 2
    assert "above its expected 380" in open_message.explanation
    closed = convert.anomaly_message(
        dataclasses.replace(episode, end_unix_nano=3_000_000_000),
        weights=weights,
        half_surprise=6.0,
        threshold=0.7,
    )
    assert closed.end_time.seconds == 3


def _batch(batch_id: str, keys: list[common_pb2.SeriesKey], n: int) -> common_pb2.SampleBatch:
    return common_pb2.SampleBatch(
        batch_id=batch_id,
        series=keys,
        series_index=[i % max(len(keys), 1) for i in range(n)],
        time_unix_nano=list(range(n)),
        value=[float(i) for i in range(n)],
    )


@pytest.mark.parametrize("batch_id", ["", "b-1", "é" * 100])
@pytest.mark.parametrize("n_points", [0, 1, 300])
def test_cached_series_tables_equal_the_keys_built_one_by_one(batch_id: str, n_points: int) -> None:
    cache = convert.SeriesKeyCache(max_keys=5, max_tables=2)
    keys = [common_pb2.SeriesKey(name=f"m{i}", labels={"b": str(i), "a": "x" * 200}) for i in range(7)]
    for rnd in range(3):  # first sight, table hit, and again after the small caches evicted
        for table in (keys, keys[2:5], keys[::-1], [keys[0]]):
            series, valid = cache.table(_batch(batch_id, table, n_points))
            assert series == tuple(convert.series_key(k) for k in table), rnd
            assert valid


def test_an_invalid_key_stays_invalid_when_its_table_is_cached() -> None:
    cache = convert.SeriesKeyCache()
    batch = _batch("b", [common_pb2.SeriesKey(name="ok"), common_pb2.SeriesKey(name="bad name!")], 4)
    for _ in range(2):
        request = convert.score_request(pb.ScoreSamplesRequest(batch=batch), cache)
        assert not request.keys_valid
        with pytest.raises(InvalidArgumentError) as info:
            validate_request(request)
        assert info.value.field == "batch.series[1].name"


def test_a_batch_with_unknown_fields_takes_the_per_key_path() -> None:
    cache = convert.SeriesKeyCache()
    batch = _batch("b", [common_pb2.SeriesKey(name="m", labels={"a": "1"})], 3)
    wire = batch.SerializeToString() + b"\xa2\x06\x02hi"  # unknown field 100, length-delimited
    odd = common_pb2.SampleBatch.FromString(wire)
    assert cache.table(odd) == ((SeriesKey("m", (("a", "1"),)),), True)


def test_packed_score_columns_equal_the_element_wise_ones() -> None:
    rng = np.random.default_rng(3)
    n = 257
    outcome = ScoreOutcome(
        batch_id="b",
        score=np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        is_anomaly=rng.random(n) < 0.3,
        severity=rng.integers(0, 6, n).astype(np.int8),
        anomaly_type=rng.integers(0, 12, n).astype(np.int8),
        baseline=rng.normal(size=n),
        contributions=rng.random((n, len(DETECTOR_NAMES))),
        threshold=0.7,
        weights=tuple(rng.random(len(DETECTOR_NAMES)).tolist()),
    )
    fast = convert.score_columns(outcome)
    slow = convert._score_columns_slow(outcome)
    assert fast.SerializeToString(deterministic=True) == slow.SerializeToString(deterministic=True)
    empty = dataclasses.replace(
        outcome,
        score=np.zeros(0),
        is_anomaly=np.zeros(0, dtype=bool),
        severity=np.zeros(0, dtype=np.int8),
        anomaly_type=np.zeros(0, dtype=np.int8),
        baseline=np.zeros(0),
        contributions=None,
    )
    assert convert.score_columns(empty) == convert._score_columns_slow(empty)
