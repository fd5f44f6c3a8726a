"""The access log through a real grpc.aio server: failed and slow calls logged, fast ones at DEBUG."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sentinel.runtime import errors
from sentinel.runtime.server import Server
from sentinel.runtime.settings import ServiceSettings
from sentinel.testing.servers import channel_to, generic_service, running


async def echo(request: bytes, context: Any) -> bytes:
    return request


async def slow(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(0.08)
    return request


async def fail(request: bytes, context: Any) -> bytes:
    raise errors.NotFoundError("no such thing")


SERVICE = generic_service(
    "test.Access",
    {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    },
)


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = Server(name="test", settings=ServiceSettings(port=0, access_log_slow_ms=50), services=[SERVICE])
    async with running(server) as address, channel_to(address) as channel:
        yield channel


def access_lines(caplog: pytest.LogCaptureFixture, method: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sentinel.rpc" and getattr(r, "method", "") == method]


async def logged(caplog: pytest.LogCaptureFixture, method: str) -> list[logging.LogRecord]:
    """The access lines of `method`, once written: an aborted call's status reaches the client
    before the server's handler unwinds to the access log, so the line may come a moment later."""
    for _ in range(200):
        if lines := access_lines(caplog, method):
            return lines
        await asyncio.sleep(0.01)
    return []


@pytest.mark.parametrize(
    ("method", "level"), [("/test.Access/Echo", logging.DEBUG), ("/test.Access/Slow", logging.INFO)]
)
async def test_successful_call_is_logged_at_info_only_when_slow(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture, method: str, level: int
) -> None:
    with caplog.at_level(logging.DEBUG, logger="sentinel.rpc"):
        await channel.unary_unary(method)(b"x")

    [line] = access_lines(caplog, method)
    assert (line.levelno, getattr(line, "code", "")) == (level, "OK")
    assert (getattr(line, "duration_ms", 0) >= 50) == (level == logging.INFO)


async def test_failed_call_is_logged_at_warning_however_fast(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sentinel.rpc"):
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary("/test.Access/Fail")(b"x")
        [line] = await logged(caplog, "/test.Access/Fail")

    assert (line.levelno, getattr(line, "code", "")) == (logging.WARNING, "NOT_FOUND")
