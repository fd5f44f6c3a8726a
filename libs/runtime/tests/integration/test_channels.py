"""Client channels retry UNAVAILABLE within the caller's deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sentinel.runtime import errors
from sentinel.runtime.channels import call_with_retry
from sentinel.testing.servers import channel_to, generic_service, make_server, running


async def test_call_with_retry_rides_out_unavailable_until_it_succeeds() -> None:
    attempts = 0

    async def flaky(request: bytes, context: Any) -> bytes:
        nonlocal attempts
        attempts += 1
        if attempts < 4:
            raise errors.UnavailableError("storage restarting")
        return b"ok"

    service = generic_service("test.Flaky", {"Call": grpc.unary_unary_rpc_method_handler(flaky)})
    async with running(make_server(service)) as address, channel_to(address) as channel:
        result = await call_with_retry(lambda: channel.unary_unary("/test.Flaky/Call")(b""), deadline_s=10)

    assert result == b"ok"
    # Application-level UNAVAILABLE is retried by tenacity (gRPC's own policy may retry too).
    assert attempts >= 4


async def test_call_with_retry_gives_up_at_the_deadline_with_the_last_error() -> None:
    async def down(request: bytes, context: Any) -> bytes:
        raise errors.UnavailableError("still down")

    service = generic_service("test.Down", {"Call": grpc.unary_unary_rpc_method_handler(down)})
    async with running(make_server(service)) as address, channel_to(address) as channel:
        started = asyncio.get_running_loop().time()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call_with_retry(lambda: channel.unary_unary("/test.Down/Call")(b""), deadline_s=0.5)
        elapsed = asyncio.get_running_loop().time() - started

    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert elapsed < 5


async def test_other_codes_are_not_retried() -> None:
    attempts = 0

    async def invalid(request: bytes, context: Any) -> bytes:
        nonlocal attempts
        attempts += 1
        raise errors.InvalidArgumentError("value", "must be finite")

    service = generic_service("test.Invalid", {"Call": grpc.unary_unary_rpc_method_handler(invalid)})
    async with running(make_server(service)) as address, channel_to(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call_with_retry(lambda: channel.unary_unary("/test.Invalid/Call")(b""), deadline_s=5)

    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert attempts == 1
