"""A full micro-batcher queue answers RESOURCE_EXHAUSTED at once."""

from __future__ import annotations

import asyncio

import grpc

from .conftest import detection, error_info, key, noisy, request, settings


async def test_a_tiny_queue_refuses_what_does_not_fit_with_resource_exhausted() -> None:
    times, values = noisy(80)
    tiny = settings(queue_max_points=20, batch_max_points=1000, batch_max_delay_ms=300)
    async with detection(tiny) as det:
        calls = [
            det.stub.ScoreSamples(request([key(service=f"s{i}")], [0] * 16, times[:16], values[:16]))
            for i in range(4)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    scored = [r for r in results if not isinstance(r, BaseException)]
    assert len(scored) == 1
    assert len(refused) == 3
    assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    assert error_info(refused[0]).reason == "QUEUE_FULL"
