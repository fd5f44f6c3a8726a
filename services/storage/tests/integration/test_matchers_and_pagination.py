"""Label matchers select exactly the right series; pages cover every series exactly once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2

from .conftest import DAY0_NS, SECOND_NS, Storage, batch, error_info, matcher, time_range

FLEET = [
    ("llm.latency_ms", {"service": "chat", "model": "gpt-4o"}),
    ("llm.latency_ms", {"service": "chat", "model": "gpt-4o-mini"}),
    ("llm.latency_ms", {"service": "search", "model": "claude"}),
    ("llm.latency_ms", {"service": "search"}),  # no model label: compares as ""
    ("llm.cost_usd", {"service": "chat", "model": "gpt-4o"}),
]
RANGE = time_range(DAY0_NS, DAY0_NS + 60 * SECOND_NS)


async def write_fleet(storage: Storage) -> None:
    n = len(FLEET)
    await storage.write(batch(FLEET, range(n), [DAY0_NS + i * SECOND_NS for i in range(n)], range(n)))


def selected(results: list[resources_pb2.SeriesResult]) -> set[int]:
    return {FLEET.index((r.series.name, dict(r.series.labels))) for r in results}


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([("service", "=", "chat")], {0, 1, 4}),
        ([("service", "=", "chat"), ("model", "!=", "gpt-4o")], {1}),
        ([("service", "=", "search"), ("model", "=", "")], {3}),
        ([("model", "=~", "gpt-4o")], {0, 4}),  # full match: not gpt-4o-mini
        ([("model", "=~", "gpt.*")], {0, 1, 4}),
        ([("model", "=~", "4o")], set()),  # a substring is not a match
        ([("service", "=~", "chat|search"), ("model", "!~", "gpt-4o.*")], {2, 3}),
        ([("__name__", "=", "llm.cost_usd")], {4}),
        ([("__name__", "=~", "llm\\.lat.*"), ("service", "!=", "chat")], {2, 3}),
        ([("__name__", "!~", "llm\\.latency_ms"), ("model", "=~", ".+")], {4}),
    ],
)
async def test_each_matcher_operator_selects_exactly_the_expected_series(
    storage: Storage, matchers: list[tuple[str, str, str]], expected: set[int]
) -> None:
    await write_fleet(storage)
    results = await storage.query_all(
        matchers=resources_pb2.SeriesMatchers(matchers=[matcher(*m) for m in matchers]), time_range=RANGE
    )
    assert selected(results) == expected
    listed = await storage.list_series(matchers=[matcher(*m) for m in matchers])
    assert {FLEET.index((s.series.name, dict(s.series.labels))) for s in listed.series} == expected


async def test_a_selector_matching_every_series_is_refused(storage: Storage) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.query(
            matchers=resources_pb2.SeriesMatchers(matchers=[matcher("model", "=~", ".*")]), time_range=RANGE
        )
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).metadata["field"] == "matchers.matchers"


async def test_more_series_than_max_series_is_resource_exhausted(storage: Storage) -> None:
    await write_fleet(storage)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.query(
            matchers=resources_pb2.SeriesMatchers(matchers=[matcher("service", "=~", ".+")]),
            time_range=RANGE,
            max_series=4,
        )
    assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(raised.value).reason == "TOO_MANY_SERIES"


async def test_query_pages_cover_every_series_exactly_once(storage: Storage) -> None:
    series = [("m", {"host": f"h{i:02d}"}) for i in range(23)]
    await storage.write(batch(series, range(23), [DAY0_NS] * 23, range(23)))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await storage.query(
            matchers=resources_pb2.SeriesMatchers(matchers=[matcher("__name__", "=", "m")]),
            time_range=RANGE,
            page_size=5,
            page_token=token,
        )
        pages += 1
        seen += [r.series.labels["host"] for r in page.results]
        assert len(page.results) <= 5
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == [f"h{i:02d}" for i in range(23)] and len(seen) == len(set(seen))
    assert pages == 5


async def test_list_series_pages_cover_every_series_exactly_once(storage: Storage) -> None:
    series = [("m", {"host": f"h{i:02d}"}) for i in range(23)]
    await storage.write(batch(series, range(23), [DAY0_NS] * 23, range(23)))
    ids: list[str] = []
    token = ""
    while True:
        page = await storage.list_series(page_size=4, page_token=token)
        ids += [s.series_id for s in page.series]
        token = page.next_page_token
        if not token:
            break
    assert len(ids) == 23 and len(set(ids)) == 23
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)


async def test_a_page_token_of_another_query_is_refused(storage: Storage) -> None:
    series = [("m", {"host": f"h{i}"}) for i in range(3)]
    await storage.write(batch(series, range(3), [DAY0_NS] * 3, range(3)))
    first = await storage.list_series(page_size=1)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await storage.list_series(page_size=2, page_token=first.next_page_token)
    assert error_info(raised.value).metadata["field"] == "page_token"


async def test_list_series_filters_by_sample_time_range(storage: Storage) -> None:
    old, new = ("m", {"age": "old"}), ("m", {"age": "new"})
    await storage.write(
        batch([old], [0, 0], [DAY0_NS - 5 * 86_400 * SECOND_NS, DAY0_NS - 4 * 86_400 * SECOND_NS], [1, 2])
    )
    await storage.write(batch([new], [0], [DAY0_NS], [1]))

    async def ages(start_ns: int, end_ns: int) -> set[str]:
        page = await storage.list_series(time_range=time_range(start_ns, end_ns))
        return {s.series.labels["age"] for s in page.series}

    for _ in range(100):  # extents are flushed by the maintenance loop (every 0.1 s here)
        if await ages(0, 2 * DAY0_NS) == {"old", "new"}:
            break
        await asyncio.sleep(0.05)
    assert await ages(DAY0_NS - 3 * 86_400 * SECOND_NS, DAY0_NS + SECOND_NS) == {"new"}
    assert await ages(DAY0_NS - 4 * 86_400 * SECOND_NS, DAY0_NS - 3 * 86_400 * SECOND_NS) == {"old"}
    listed = await storage.list_series(matchers=[matcher("age", "=", "old")])
    [info] = listed.series
    assert info.first_sample_time.ToNanoseconds() == DAY0_NS - 5 * 86_400 * SECOND_NS
    assert info.last_sample_time.ToNanoseconds() == DAY0_NS - 4 * 86_400 * SECOND_NS


async def test_name_matcher_with_label_exactness(storage: Storage) -> None:
    await write_fleet(storage)
    by_key = await storage.query(
        series=common_pb2.SeriesKey(name="llm.latency_ms", labels={"service": "search"}), time_range=RANGE
    )
    assert selected(list(by_key.results)) == {3}
