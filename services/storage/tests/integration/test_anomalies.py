"""WriteAnomalies / ListAnomalies on real PostgreSQL: idempotent episodes, filters, pages, tenancy."""

from __future__ import annotations

import math

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import storage_service_pb2 as pb

from .conftest import DAY0_NS, SECOND_NS, Storage, error_info, matcher, metadata, time_range, timestamp


def anomaly(
    anomaly_id: str,
    start_s: int,
    *,
    name: str = "llm.latency_ms",
    labels: dict[str, str] | None = None,
    score: float = 0.8,
    severity: int = common_pb2.SEVERITY_LOW,
    anomaly_type: int = common_pb2.ANOMALY_TYPE_LATENCY_SPIKE,
    end_s: int | None = None,
    point_count: int = 1,
) -> common_pb2.Anomaly:
    message = common_pb2.Anomaly(
        anomaly_id=anomaly_id,
        series=common_pb2.SeriesKey(name=name, labels=labels or {"service": "chat"}),
        start_time=timestamp(DAY0_NS + start_s * SECOND_NS),
        peak_time=timestamp(DAY0_NS + start_s * SECOND_NS),
        value=2400.0,
        baseline=float("nan"),
        score=score,
        severity=severity,  # type: ignore[arg-type]
        anomaly_type=anomaly_type,  # type: ignore[arg-type]
        contributions=[
            common_pb2.DetectorContribution(detector="spike", score=0.9, weight=0.5, statistic=7.5)
        ],
        explanation="latency_ms 2400 is far above 380",
        point_count=point_count,
    )
    if end_s is not None:
        message.end_time.CopyFrom(timestamp(DAY0_NS + end_s * SECOND_NS))
    return message


async def write(
    storage: Storage, *anomalies: common_pb2.Anomaly, tenant: str = "acme"
) -> pb.WriteAnomaliesResponse:
    return await storage.stub.WriteAnomalies(
        pb.WriteAnomaliesRequest(anomalies=list(anomalies)), metadata=metadata(tenant)
    )


async def listing(storage: Storage, tenant: str = "acme", **fields: object) -> pb.ListAnomaliesResponse:
    return await storage.stub.ListAnomalies(pb.ListAnomaliesRequest(**fields), metadata=metadata(tenant))  # type: ignore[arg-type]


async def test_a_rewritten_episode_is_updated_not_duplicated(storage: Storage) -> None:
    first = await write(storage, anomaly("a1", 0))
    assert (first.inserted, first.updated) == (1, 0)
    grown = anomaly("a1", 0, score=0.95, severity=common_pb2.SEVERITY_CRITICAL, end_s=120, point_count=3)
    second = await write(storage, grown)
    assert (second.inserted, second.updated) == (0, 1)

    page = await listing(storage)
    assert len(page.anomalies) == 1
    stored = page.anomalies[0]
    assert stored.anomaly_id == "a1"
    assert stored.score == pytest.approx(0.95)
    assert stored.severity == common_pb2.SEVERITY_CRITICAL
    assert stored.point_count == 3
    assert stored.end_time.seconds == (DAY0_NS // SECOND_NS) + 120
    assert math.isnan(stored.baseline)
    assert stored.contributions[0].detector == "spike"
    assert stored.contributions[0].statistic == pytest.approx(7.5)
    assert dict(stored.series.labels) == {"service": "chat"}


async def test_list_filters_combine_and_pages_run_newest_first(storage: Storage) -> None:
    await write(
        storage,
        *[anomaly(f"lat-{i}", i * 60, score=0.7 + i * 0.01) for i in range(7)],
        anomaly("tok", 30, name="llm.total_tokens", anomaly_type=common_pb2.ANOMALY_TYPE_TOKEN_USAGE_SPIKE),
        anomaly("other-model", 45, labels={"service": "search"}, severity=common_pb2.SEVERITY_HIGH),
    )
    ids: list[str] = []
    token = ""
    while True:
        page = await listing(storage, page_size=3, page_token=token)
        ids += [a.anomaly_id for a in page.anomalies]
        token = page.next_page_token
        if not token:
            break
    newest_first = ["lat-6", "lat-5", "lat-4", "lat-3", "lat-2", "lat-1", "other-model", "tok", "lat-0"]
    assert ids == newest_first

    by_name = await listing(storage, matchers=[matcher("__name__", "=", "llm.total_tokens")])
    assert [a.anomaly_id for a in by_name.anomalies] == ["tok"]
    by_label = await listing(storage, matchers=[matcher("service", "=", "search")])
    assert [a.anomaly_id for a in by_label.anomalies] == ["other-model"]
    severe = await listing(storage, severities=[common_pb2.SEVERITY_HIGH])
    assert [a.anomaly_id for a in severe.anomalies] == ["other-model"]
    typed = await listing(storage, anomaly_types=[common_pb2.ANOMALY_TYPE_TOKEN_USAGE_SPIKE])
    assert [a.anomaly_id for a in typed.anomalies] == ["tok"]
    high_score = await listing(storage, min_score=0.755)
    assert {a.anomaly_id for a in high_score.anomalies} == {"lat-6", "tok", "other-model"}
    window = await listing(
        storage, time_range=time_range(DAY0_NS + 100 * SECOND_NS, DAY0_NS + 200 * SECOND_NS)
    )
    # Open episodes (no end) overlap every later range; lat-0 (start 0) ... all start before 200 s.
    assert {a.anomaly_id for a in window.anomalies} == {
        "lat-0",
        "lat-1",
        "lat-2",
        "lat-3",
        "tok",
        "other-model",
    }


async def test_anomalies_are_isolated_per_tenant(storage: Storage) -> None:
    await write(storage, anomaly("shared-id", 0), tenant="acme")
    await write(storage, anomaly("shared-id", 0, score=0.99), tenant="globex")
    acme = await listing(storage, tenant="acme")
    globex = await listing(storage, tenant="globex")
    assert [a.score for a in acme.anomalies] == [pytest.approx(0.8)]
    assert [a.score for a in globex.anomalies] == [pytest.approx(0.99)]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (anomaly("", 0), "anomalies[0].anomaly_id"),
        (anomaly("x", 0, score=1.5), "anomalies[0].score"),
        (
            common_pb2.Anomaly(anomaly_id="x", series=common_pb2.SeriesKey(name="m")),
            "anomalies[0].start_time",
        ),
        (anomaly("x", 0, name=""), "anomalies[0].series.name"),
    ],
)
async def test_bad_anomalies_are_invalid_argument_naming_the_field(
    storage: Storage, bad: common_pb2.Anomaly, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await write(storage, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == field


async def test_a_page_token_of_another_listing_is_refused(storage: Storage) -> None:
    await write(storage, *[anomaly(f"a{i}", i) for i in range(3)])
    page = await listing(storage, page_size=1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await listing(storage, page_size=2, page_token=page.next_page_token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
