"""Tenancy: every call runs on behalf of one tenant, resolved from its API key (see `keys`)."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from sentinel.runtime.interceptors import Context, Handler, RequestT, ResponseT, abort_for, wrap_handler
from sentinel.runtime.keys import TENANT_HEADER, KeyRing

# Infrastructure every client may call without credentials.
_PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("sentinel_tenant", default=None)


def current_tenant() -> str:
    """The tenant of the call being served.

    Raises:
        RuntimeError: outside a call that went through `AuthInterceptor`.
    """
    tenant = _tenant.get()
    if tenant is None:
        raise RuntimeError("no tenant: this code runs outside an authenticated call")
    return tenant


class _Authenticate:
    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def _enter(self, context: Context) -> contextvars.Token[str | None]:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        return _tenant.set(self._keys.tenant_for(metadata))

    async def unary(self, call: Callable[[], Awaitable[Any]], method: str, context: Context) -> Any:
        try:
            token = self._enter(context)
        except Exception as exc:
            await abort_for(exc, method, context)
        try:
            return await call()
        finally:
            _tenant.reset(token)

    async def stream(self, items: AsyncIterator[Any], method: str, context: Context) -> AsyncIterator[Any]:
        try:
            token = self._enter(context)
        except Exception as exc:
            await abort_for(exc, method, context)
        try:
            async for item in items:
                yield item
        finally:
            _tenant.reset(token)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Resolves the tenant of every call (except health and reflection) before the servicer runs."""

    def __init__(self, keys: KeyRing) -> None:
        self._around = _Authenticate(keys)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[RequestT, ResponseT] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[RequestT, ResponseT] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_PUBLIC_PREFIXES):
            return handler
        wrapped: Handler = wrap_handler(handler, handler_call_details.method, self._around)
        return wrapped


def peer_metadata(tenant: str, service_key: str | None) -> tuple[tuple[str, str], ...]:
    """Metadata for a call to a peer service on behalf of `tenant`."""
    metadata: list[tuple[str, str]] = [(TENANT_HEADER, tenant)]
    if service_key:
        metadata.append(("authorization", f"Bearer {service_key}"))
    return tuple(metadata)
