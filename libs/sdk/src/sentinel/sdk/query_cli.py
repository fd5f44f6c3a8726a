"""`sentinel query SELECTOR --from --to --step --agg`: read samples back from storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TextIO

from google.protobuf import duration_pb2, timestamp_pb2

from sentinel.api.common.v1 import common_pb2
from sentinel.api.storage.v1 import resources_pb2, storage_service_pb2, storage_service_pb2_grpc
from sentinel.sdk.client import Endpoint, retrying
from sentinel.sdk.selectors import parse_duration, parse_selector, parse_time

_OPERATORS = {
    "=": common_pb2.MATCH_OPERATOR_EQUAL,
    "!=": common_pb2.MATCH_OPERATOR_NOT_EQUAL,
    "=~": common_pb2.MATCH_OPERATOR_REGEX,
    "!~": common_pb2.MATCH_OPERATOR_NOT_REGEX,
}
AGGREGATIONS = ["raw", "avg", "min", "max", "sum", "count", "p50", "p95", "p99", "last"]


def build_request(
    selector: str, *, start: str, end: str, step: str | None, agg: str, now: datetime, max_points: int
) -> storage_service_pb2.QuerySamplesRequest:
    """The QuerySamples request for a selector, a time range and an optional step/aggregation."""
    name, matchers = parse_selector(selector)
    request = storage_service_pb2.QuerySamplesRequest(max_points=max_points)
    proto_matchers = [
        common_pb2.LabelMatcher(name="__name__", operator=common_pb2.MATCH_OPERATOR_EQUAL, value=name)
    ]
    proto_matchers = proto_matchers if name else []
    proto_matchers += [
        common_pb2.LabelMatcher(name=m.label, operator=_OPERATORS[m.op], value=m.value) for m in matchers
    ]
    request.matchers.CopyFrom(resources_pb2.SeriesMatchers(matchers=proto_matchers))
    start_time, end_time = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    start_time.FromDatetime(parse_time(start, now=now))
    end_time.FromDatetime(parse_time(end, now=now))
    request.time_range.start_time.CopyFrom(start_time)
    request.time_range.end_time.CopyFrom(end_time)
    if agg != "raw":
        if not step:
            raise ValueError("--agg needs --step")
        request.aggregation = resources_pb2.Aggregation.Value(f"AGGREGATION_{agg.upper()}")
    if step:
        request.step.CopyFrom(duration_pb2.Duration())
        request.step.FromTimedelta(parse_duration(step))
    return request


def _label_text(key: common_pb2.SeriesKey) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(key.labels.items()))
    return f"{key.name}{{{labels}}}"


async def run_query(request: storage_service_pb2.QuerySamplesRequest, endpoint: Endpoint, *, as_json: bool,
                    out: TextIO) -> int:  # fmt: skip
    """Fetch every page and print a table per series (or JSON lines)."""
    channel = endpoint.channel()
    stub = storage_service_pb2_grpc.StorageServiceStub(channel)
    try:
        while True:
            response = await retrying(
                lambda: stub.QuerySamples(request, metadata=endpoint.metadata, timeout=60)
            )
            for result in response.results:
                times = [datetime.fromtimestamp(t / 1e9, UTC) for t in result.time_unix_nano]
                if as_json:
                    out.write(json.dumps({
                        "series": result.series.name, "labels": dict(result.series.labels),
                        "points": [[t.isoformat(), v] for t, v in zip(times, result.value, strict=True)],
                    }) + "\n")  # fmt: skip
                    continue
                out.write(f"{_label_text(result.series)}  ({len(times)} points)\n")
                for t, v in zip(times, result.value, strict=True):
                    out.write(f"  {t.isoformat(timespec='milliseconds')}  {v:.6g}\n")
            if not response.next_page_token:
                return 0
            request.page_token = response.next_page_token
    finally:
        await channel.close()
