"""Server interceptors: the one error-mapping table, and access logging with metrics.

Order in `sentinel.runtime.server` (outermost first): OpenTelemetry, access log, error mapping.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, Protocol, TypeAlias, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from sentinel.runtime import errors
from sentinel.runtime.logging import current_trace_id

logger = logging.getLogger("sentinel.rpc")

# The one table from domain errors to gRPC codes. Subclasses map through their nearest base.
STATUS_BY_ERROR: dict[type[errors.SentinelError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ConflictError: grpc.StatusCode.ABORTED,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotImplementedYetError: grpc.StatusCode.UNIMPLEMENTED,
    errors.DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.SentinelError: grpc.StatusCode.UNKNOWN,
}

RPC_TOTAL = Counter("sentinel_rpc_requests_total", "Finished RPCs", ["method", "code"])
RPC_SECONDS = Histogram(
    "sentinel_rpc_duration_seconds",
    "RPC handling time",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

Behavior = Callable[..., Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # the runtime class is not subscriptable
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
Context = grpc.aio.ServicerContext[Any, Any]


class _AroundCall(Protocol):
    """What an interceptor does around one call: unary responses and streamed responses."""

    async def unary(self, call: Callable[[], Awaitable[Any]], method: str, context: Context) -> Any: ...

    def stream(self, items: AsyncIterator[Any], method: str, context: Context) -> AsyncIterator[Any]: ...


def status_code_for(error: errors.SentinelError) -> grpc.StatusCode:
    """The gRPC code of a domain error, through the nearest mapped base class."""
    for cls in type(error).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.UNKNOWN


def rich_status(error: errors.SentinelError) -> grpc.Status:
    """A gRPC status carrying `google.rpc.ErrorInfo` (reason, domain, metadata) in its details."""
    code = status_code_for(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=errors.ERROR_DOMAIN, metadata=error.metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=error.message, details=[detail])
    return cast(grpc.Status, rpc_status.to_status(status))


async def _as_stream(result: Any) -> AsyncIterator[Any]:
    """A streaming behaviour's result as an async iterator.

    Behaviours may be async generators or coroutines that write with `context.write`.
    """
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
    else:
        await result


def wrap_handler(handler: Handler, method: str, around: _AroundCall) -> Handler:
    """Return `handler` with every call of its behaviour run through `around`."""

    def unary_response(behavior: Behavior) -> Behavior:
        async def run(request: Any, context: Context) -> Any:
            return await around.unary(lambda: behavior(request, context), method, context)

        return run

    def stream_response(behavior: Behavior) -> Behavior:
        async def run(request: Any, context: Context) -> AsyncIterator[Any]:
            async for item in around.stream(_as_stream(behavior(request, context)), method, context):
                yield item

        return run

    kinds = (
        (handler.unary_unary, unary_response, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, stream_response, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, unary_response, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, stream_response, grpc.stream_stream_rpc_method_handler),
    )
    for behavior, wrap, make in kinds:
        if behavior is not None:
            return make(
                wrap(behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class _ErrorMapping:
    async def unary(self, call: Callable[[], Awaitable[Any]], method: str, context: Context) -> Any:
        try:
            return await call()
        except Exception as exc:
            await abort_for(exc, method, context)

    async def stream(self, items: AsyncIterator[Any], method: str, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in items:
                yield item
        except Exception as exc:
            await abort_for(exc, method, context)


async def abort_for(exc: Exception, method: str, context: Context) -> NoReturn:
    """Abort the call with the status that `exc` maps to (re-raising an abort untouched)."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the servicer already chose a status
    if isinstance(exc, errors.SentinelError):
        status = rich_status(exc)
        await context.abort(status.code, status.details, status.trailing_metadata)
    # Never leak exception text to the caller; give them an id to find the log line by.
    error_id = current_trace_id() or uuid.uuid4().hex
    logger.error(
        "unhandled error in %s",
        method,
        exc_info=exc,
        extra={"error_id": error_id, "method": method},
    )
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (trace_id={error_id})")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to statuses with ErrorInfo; unknown errors to a generic INTERNAL.

    `grpc.aio.AbortError` (the servicer called `context.abort`) and `asyncio.CancelledError`
    (a BaseException) pass through untouched.
    """

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(decode_inside(handler), handler_call_details.method, _ErrorMapping())


def decode_inside(handler: Handler) -> Handler:
    """Move request decoding from gRPC into the behaviour, so that undecodable bytes become
    INVALID_ARGUMENT naming the message type (gRPC itself would answer INTERNAL)."""
    decode = handler.request_deserializer
    if decode is None:
        return handler

    def decoded(raw: bytes) -> Any:
        try:
            return decode(raw)
        except Exception as exc:
            raise errors.InvalidArgumentError(
                "request", f"cannot be decoded as the method's request message ({type(exc).__name__})"
            ) from None

    async def decoded_stream(raw_items: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for raw in raw_items:
            yield decoded(raw)

    def unary_request(behavior: Behavior) -> Behavior:
        def run(raw: bytes, context: Context) -> Any:
            try:
                request = decoded(raw)
            except errors.InvalidArgumentError as exc:
                return _raise_later(exc, stream=handler.response_streaming)
            return behavior(request, context)

        return run

    def stream_request(behavior: Behavior) -> Behavior:
        def run(raw_items: AsyncIterator[bytes], context: Context) -> Any:
            return behavior(decoded_stream(raw_items), context)

        return run

    kinds = (
        (handler.unary_unary, unary_request, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, unary_request, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, stream_request, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, stream_request, grpc.stream_stream_rpc_method_handler),
    )
    for behavior, wrap, make in kinds:
        if behavior is not None:
            return make(
                wrap(behavior), request_deserializer=None, response_serializer=handler.response_serializer
            )
    return handler


def _raise_later(error: Exception, *, stream: bool) -> Any:
    """An awaitable (or async iterator) that raises `error` where the error mapping can see it."""
    if stream:

        async def failing_stream() -> AsyncIterator[Any]:
            raise error
            yield  # pragma: no cover - makes this an async generator

        return failing_stream()

    async def failing() -> Any:
        raise error

    return failing()


class _AccessLog:
    def __init__(self, slow_s: float) -> None:
        self._slow_s = slow_s

    async def unary(self, call: Callable[[], Awaitable[Any]], method: str, context: Context) -> Any:
        started = time.perf_counter()
        failed = False
        try:
            return await call()
        except BaseException:
            failed = True
            raise
        finally:
            _record(method, context, started, failed, self._slow_s)

    async def stream(self, items: AsyncIterator[Any], method: str, context: Context) -> AsyncIterator[Any]:
        started = time.perf_counter()
        failed = False
        try:
            async for item in items:
                yield item
        except BaseException:
            failed = True
            raise
        finally:
            _record(method, context, started, failed, self._slow_s)


def _record(method: str, context: Context, started: float, failed: bool, slow_s: float) -> None:
    elapsed = time.perf_counter() - started
    code = context.code()
    code_name = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
    RPC_TOTAL.labels(method, code_name).inc()
    RPC_SECONDS.labels(method).observe(elapsed)
    # Failed calls and slow ones always; a fast success only at DEBUG (a line per call is most of
    # a small call's cost, and the metrics above count every call anyway).
    if code_name != "OK":
        level = logging.WARNING
    elif elapsed >= slow_s:
        level = logging.INFO
    else:
        level = logging.DEBUG
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "rpc %s %s %.1fms",
            method,
            code_name,
            elapsed * 1000,
            extra={
                "method": method,
                "code": code_name,
                "duration_ms": round(elapsed * 1000, 3),
                "peer": context.peer(),
            },
        )


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """Records Prometheus metrics of every call and logs it (method, status code, duration, peer):
    failed calls at WARNING, successful ones at INFO when they took `slow_ms` or more, else at DEBUG.

    For server-streaming calls the time is to the first message.
    """

    def __init__(self, slow_ms: float) -> None:
        self._around = _AccessLog(slow_ms / 1000)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith("/grpc.health."):
            return handler
        return wrap_handler(handler, handler_call_details.method, self._around)
