"""Client channels: OpenTelemetry client interceptors, retry of UNAVAILABLE, round-robin balancing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

T = TypeVar("T")

# gRPC's own transparent retry for calls that fail with UNAVAILABLE before or while connecting.
# Every Sentinel write is idempotent (batch ids, dedup keys), so a retried call never duplicates.
_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


def create_channel(
    target: str,
    *,
    max_message_mb: int = 64,
    options: Sequence[tuple[str, Any]] = (),
    traced: bool = True,
) -> grpc.aio.Channel:
    """An insecure aio channel to `target` (`host:port`, or `dns:///name:port` for round robin)."""
    size = max_message_mb * 1024 * 1024
    channel_options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", size),
        ("grpc.max_receive_message_length", size),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        *options,
    ]
    interceptors = aio_client_interceptors() if traced else None  # type: ignore[no-untyped-call]
    return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors)


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in RETRYABLE_CODES


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    max_attempts: int = 50,
    retry_codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
) -> T:
    """Run `call` and retry it on `retry_codes` with exponential backoff and full jitter.

    Stops retrying when `deadline_s` has passed since the first attempt, re-raising the last error,
    so a caller's own deadline bounds the whole exchange.
    """

    def retryable(error: BaseException) -> bool:
        return isinstance(error, grpc.aio.AioRpcError) and error.code() in retry_codes

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        wait=wait_random_exponential(multiplier=0.02, max=1.0),
        stop=stop_after_delay(deadline_s) | stop_after_attempt(max_attempts),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
