"""ScoreSamples, StreamScoreSamples, ScoreSeries and the introspection RPCs over a real server."""

from __future__ import annotations

import asyncio
import math

import grpc
import numpy as np
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.detection.v1 import detection_pb2
from sentinel.api.detection.v1 import detection_service_pb2 as pb
from sentinel.detection.engine import DETECTOR_NAMES

from .conftest import MINUTE_NS, T0_NS, detection, error_info, key, noisy, offline_scores, request, settings


async def test_scores_are_columnar_aligned_with_the_input_and_equal_the_engine() -> None:
    a, b = noisy(300, seed=1, spikes=[250]), noisy(300, seed=2)
    index = np.tile([0, 1], 300)
    times = np.column_stack([a[0], b[0]]).ravel()
    values = np.column_stack([a[1], b[1]]).ravel()
    async with detection(settings()) as det:
        response = await det.stub.ScoreSamples(
            request([key(), key(service="search")], index, times, values, include_detector_scores=True)
        )
    scores = np.array(response.scores.score)
    expected_a, expected_b = offline_scores([a, b])
    np.testing.assert_array_equal(scores[0::2], expected_a)
    np.testing.assert_array_equal(scores[1::2], expected_b)
    assert len(response.scores.baseline) == len(response.scores.is_anomaly) == 600
    assert [c.detector for c in response.scores.detectors] == list(DETECTOR_NAMES)
    spike = 2 * 250
    assert response.scores.is_anomaly[spike]
    assert response.scores.anomaly_type[spike] == common_pb2.ANOMALY_TYPE_LATENCY_SPIKE
    assert response.scores.severity[spike] != common_pb2.SEVERITY_UNSPECIFIED
    calm = [i for i, flag in enumerate(response.scores.is_anomaly) if not flag]
    assert all(response.scores.severity[i] == common_pb2.SEVERITY_UNSPECIFIED for i in calm)


async def test_a_non_finite_value_is_invalid_argument_naming_the_point() -> None:
    async with detection(settings()) as det:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await det.stub.ScoreSamples(request([key()], [0] * 4, [1, 2, 3, 4], [1.0, 2.0, 3.0, math.inf]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "NON_FINITE_VALUE"
    assert info.metadata["field"] == "batch.value[3]"
    assert info.metadata["index"] == "3"


async def test_an_out_of_order_point_is_rejected_by_default_and_changes_nothing() -> None:
    times, values = noisy(20)
    async with detection(settings()) as det:
        await det.stub.ScoreSamples(request([key()], [0] * 10, times[:10], values[:10]))
        late = [int(times[10]), int(times[11]), int(times[5]), int(times[12])]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await det.stub.ScoreSamples(request([key()], [0] * 4, late, values[10:14]))
        state = await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert (info.reason, info.metadata["index"]) == ("OUT_OF_ORDER", "2")
    assert state.sample_count == 10


async def test_the_skip_policy_skips_old_points_with_nan_scores() -> None:
    times, values = noisy(20)
    async with detection(settings()) as det:
        await det.stub.ScoreSamples(request([key()], [0] * 10, times[:10], values[:10]))
        late = [int(times[10]), int(times[3]), int(times[11])]
        response = await det.stub.ScoreSamples(
            request(
                [key()],
                [0] * 3,
                late,
                values[10:13],
                out_of_order_policy=detection_pb2.OUT_OF_ORDER_POLICY_SKIP,
            )
        )
        state = await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
    assert list(response.skipped_index) == [1]
    assert math.isnan(response.scores.score[1]) and math.isnan(response.scores.baseline[1])
    assert not math.isnan(response.scores.score[0])
    assert state.sample_count == 12


async def test_a_retried_batch_id_gets_the_recorded_result_without_advancing_state() -> None:
    times, values = noisy(150)
    async with detection(settings()) as det:
        first = await det.stub.ScoreSamples(request([key()], [0] * 150, times, values, batch_id="b-1"))
        again = await det.stub.ScoreSamples(request([key()], [0] * 150, times, values, batch_id="b-1"))
        state = await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
    assert again == first
    assert state.sample_count == 150


async def test_concurrent_calls_are_coalesced_and_each_series_stays_in_arrival_order() -> None:
    series = [noisy(240, seed=s, spikes=[200]) for s in range(4)]
    chunk = 20

    async def feed(stub: object, s: int) -> list[float]:
        times, values = series[s]
        out: list[float] = []
        for at in range(0, 240, chunk):
            response = await stub.ScoreSamples(  # type: ignore[attr-defined]
                request(
                    [key(service=f"svc-{s}")],
                    [0] * chunk,
                    times[at : at + chunk],
                    values[at : at + chunk],
                )
            )
            out += list(response.scores.score)
        return out

    async with detection(settings(batch_max_delay_ms=5)) as det:
        got = await asyncio.gather(*(feed(det.stub, s) for s in range(4)))
    for s, expected in enumerate(offline_scores(series)):
        np.testing.assert_array_equal(np.array(got[s]), expected)


async def test_the_stream_answers_each_request_in_order() -> None:
    times, values = noisy(200, spikes=[180])

    async def requests():  # type: ignore[no-untyped-def]
        for i, at in enumerate(range(0, 200, 50)):
            yield pb.StreamScoreSamplesRequest(
                batch=common_pb2.SampleBatch(
                    batch_id=f"s-{i}",
                    series=[key()],
                    series_index=[0] * 50,
                    time_unix_nano=times[at : at + 50].tolist(),
                    value=values[at : at + 50].tolist(),
                )
            )

    async with detection(settings()) as det:
        answers = [r async for r in det.stub.StreamScoreSamples(requests())]
    assert [a.batch_id for a in answers] == ["s-0", "s-1", "s-2", "s-3"]
    scores = np.concatenate([np.array(a.scores.score) for a in answers])
    np.testing.assert_array_equal(scores, offline_scores([(times, values)])[0])


async def test_score_series_is_stateless_and_returns_the_episodes() -> None:
    times, values = noisy(400, spikes=[200, 201, 350])
    async with detection(settings()) as det:
        response = await det.stub.ScoreSeries(
            pb.ScoreSeriesRequest(series=key(), time_unix_nano=times.tolist(), value=values.tolist())
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
    np.testing.assert_array_equal(np.array(response.scores.score), offline_scores([(times, values)])[0])
    starts = [(a.start_time.ToNanoseconds() - T0_NS) // MINUTE_NS for a in response.anomalies]
    assert 200 in starts and 350 in starts
    first = next(a for a in response.anomalies if a.start_time.ToNanoseconds() == int(times[200]))
    assert first.anomaly_id == ""
    assert first.anomaly_type == common_pb2.ANOMALY_TYPE_LATENCY_SPIKE
    assert first.point_count >= 1 and first.explanation.startswith("llm.latency_ms")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_score_series_rejects_unknown_detectors_and_decreasing_times() -> None:
    async with detection(settings()) as det:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await det.stub.ScoreSeries(
                pb.ScoreSeriesRequest(series=key(), time_unix_nano=[1], value=[1.0], detectors=["nope"])
            )
        with pytest.raises(grpc.aio.AioRpcError) as backwards:
            await det.stub.ScoreSeries(
                pb.ScoreSeriesRequest(series=key(), time_unix_nano=[2, 1], value=[1, 1])
            )
    assert error_info(unknown.value).reason == "UNKNOWN_DETECTOR"
    assert error_info(backwards.value).metadata["index"] == "1"


async def test_list_detectors_describes_the_configured_engine() -> None:
    async with detection(settings()) as det:
        response = await det.stub.ListDetectors(pb.ListDetectorsRequest())
        ensemble = await det.stub.ListDetectors(
            pb.ListDetectorsRequest(kind=detection_pb2.DETECTOR_KIND_ENSEMBLE)
        )
    assert [d.name for d in response.detectors] == [*DETECTOR_NAMES, "ensemble"]
    assert response.threshold == pytest.approx(0.7)
    assert response.warmup_points == 100
    assert sum(d.weight for d in response.detectors) == pytest.approx(1.0)
    assert [d.name for d in ensemble.detectors] == ["ensemble"]
    cusum = next(d for d in response.detectors if d.name == "cusum")
    assert {"cusum_k", "ewma_alpha"} <= {p.name for p in cusum.parameters}


async def test_state_and_explanations_of_a_scored_series() -> None:
    times, values = noisy(160, spikes=[150])
    async with detection(settings()) as det:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
        await det.stub.ScoreSamples(request([key()], [0] * 155, times[:155], values[:155]))
        state = await det.stub.GetSeriesState(pb.GetSeriesStateRequest(series=key()))
        at_spike = pb.ExplainScoreRequest(series=key())
        at_spike.sample_time.FromNanoseconds(int(times[150]))
        spike = await det.stub.ExplainScore(at_spike)
        last = await det.stub.ExplainScore(pb.ExplainScoreRequest(series=key()))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(unknown.value).reason == "SERIES_NOT_FOUND"
    assert state.sample_count == 155 and not state.warming_up
    assert state.last_sample_time.ToNanoseconds() == int(times[154])
    assert state.last_value == pytest.approx(values[154])
    assert [d.detector for d in state.detectors] == list(DETECTOR_NAMES)
    assert spike.sample_time.ToNanoseconds() == int(times[150])
    assert spike.is_anomaly and spike.anomaly_type == common_pb2.ANOMALY_TYPE_LATENCY_SPIKE
    assert "above its expected" in spike.explanation
    assert spike.contributions[0].score == max(c.score for c in spike.contributions)
    assert last.sample_time.ToNanoseconds() == int(times[154])
