"""Waiting for the services a service depends on."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentinel.runtime.clock import Clock, SystemClock

logger = logging.getLogger(__name__)


async def wait_until_serving(
    channel: grpc.aio.Channel,
    *,
    service: str = "",
    peer: str,
    timeout_s: float,
    clock: Clock | None = None,
) -> None:
    """Poll `grpc.health.v1.Health/Check` on `channel` until it answers SERVING.

    Raises:
        TimeoutError: the peer did not become SERVING within `timeout_s`.
    """
    clock = clock or SystemClock()
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = clock.monotonic() + timeout_s
    delay = 0.05
    last_problem = "no answer"
    while True:
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                logger.info("peer %s is serving", peer)
                return
            last_problem = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as exc:
            last_problem = f"{exc.code().name}: {exc.details()}"
        if clock.monotonic() + delay > deadline:
            raise TimeoutError(f"{peer} not serving after {timeout_s:.0f}s ({last_problem})")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
