"""In-process gRPC servers on 127.0.0.1:0 for integration tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from sentinel.runtime.channels import create_channel
from sentinel.runtime.server import Server, ServiceRegistration
from sentinel.runtime.settings import ServiceSettings


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[str]:
    """Start `server` (startup hooks included), yield its address, stop it afterwards."""
    await server.start()
    try:
        yield server.address
    finally:
        await server.stop(grace=1)


@contextlib.asynccontextmanager
async def channel_to(address: str) -> AsyncIterator[grpc.aio.Channel]:
    """A traced client channel to `address`, closed afterwards."""
    channel = create_channel(address)
    try:
        yield channel
    finally:
        await channel.close()


def generic_service(name: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> ServiceRegistration:
    """A hand-written service (raw bytes in and out unless the handlers say otherwise).

    For testing the runtime itself: interceptors, shutdown, tracing, without any Sentinel service.
    """
    generic = grpc.method_handlers_generic_handler(name, handlers)
    return ServiceRegistration(name, lambda server: server.add_generic_rpc_handlers([generic]))


def make_server(*services: ServiceRegistration, name: str = "test", **hooks: Any) -> Server:
    """A runtime `Server` on 127.0.0.1:0 with the given services and hooks."""
    return Server(name=name, settings=ServiceSettings(port=0), services=services, **hooks)
