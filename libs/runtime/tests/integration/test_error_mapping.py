"""The error interceptor, through a real grpc.aio server and client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from sentinel.runtime import errors
from sentinel.testing.servers import channel_to, generic_service, make_server, running


async def raise_not_found(request: bytes, context: Any) -> bytes:
    raise errors.NotFoundError(
        "incident inc-42 does not exist",
        reason="INCIDENT_NOT_FOUND",
        metadata={"incident_id": "inc-42"},
    )


async def raise_bug(request: bytes, context: Any) -> bytes:
    raise KeyError("secret-internal-detail")


async def abort_directly(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "tenant b may not read this")
    raise AssertionError("abort returns no control")


async def stream_then_fail(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    raise errors.InvalidArgumentError("series[3].name", "must not be empty")


async def echo(request: bytes, context: Any) -> bytes:
    return request


SERVICE = generic_service(
    "test.Errors",
    {
        "NotFound": grpc.unary_unary_rpc_method_handler(raise_not_found),
        "Bug": grpc.unary_unary_rpc_method_handler(raise_bug),
        "Abort": grpc.unary_unary_rpc_method_handler(abort_directly),
        "StreamFail": grpc.unary_stream_rpc_method_handler(stream_then_fail),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
    },
)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    async with running(make_server(SERVICE)) as address, channel_to(address) as channel:
        yield channel


async def test_domain_not_found_becomes_not_found_with_error_info(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary("/test.Errors/NotFound")(b"")

    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "incident inc-42 does not exist"
    info = error_info(raised.value)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "INCIDENT_NOT_FOUND",
        "sentinel.dev",
        {"incident_id": "inc-42"},
    )


async def test_bug_becomes_internal_without_leaking_exception_text(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="sentinel.rpc"),
        pytest.raises(grpc.aio.AioRpcError) as raised,
    ):
        await channel.unary_unary("/test.Errors/Bug")(b"")

    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert "secret-internal-detail" not in raised.value.details()
    assert "KeyError" not in raised.value.details()
    assert raised.value.details().startswith("internal error (trace_id=")
    # The id the caller sees is the one in the log line that holds the traceback.
    error_id = raised.value.details().removeprefix("internal error (trace_id=").rstrip(")")
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged and logged[0].exc_info is not None


async def test_context_abort_passes_through_untouched(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary("/test.Errors/Abort")(b"")

    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == "tenant b may not read this"


async def test_streaming_error_after_first_message_keeps_the_message_and_maps_the_error(
    channel: grpc.aio.Channel,
) -> None:
    call = channel.unary_stream("/test.Errors/StreamFail")(b"")
    received = [await call.read()]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert received == [b"first"]
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).metadata["field"] == "series[3].name"


async def test_successful_calls_are_untouched(channel: grpc.aio.Channel) -> None:
    assert await channel.unary_unary("/test.Errors/Echo")(b"hello") == b"hello"


async def test_undecodable_request_bytes_are_invalid_argument_not_internal() -> None:
    from grpc_health.v1 import health_pb2

    async def typed(request: health_pb2.HealthCheckRequest, context: Any) -> bytes:
        return request.service.encode()

    service = generic_service(
        "test.Typed",
        {
            "Call": grpc.unary_unary_rpc_method_handler(
                typed, request_deserializer=health_pb2.HealthCheckRequest.FromString
            )
        },
    )
    async with running(make_server(service)) as address, channel_to(address) as channel:
        ok = await channel.unary_unary("/test.Typed/Call")(
            health_pb2.HealthCheckRequest(service="x").SerializeToString()
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary("/test.Typed/Call")(b"\xff\xff\xff not protobuf")

    assert ok == b"x"
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("request: cannot be decoded")
