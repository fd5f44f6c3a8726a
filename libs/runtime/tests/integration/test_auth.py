"""Every call is authenticated and carries its tenant into the servicer."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentinel.runtime.auth import current_tenant
from sentinel.runtime.keys import hash_key
from sentinel.runtime.server import Server
from sentinel.runtime.settings import ServiceSettings
from sentinel.testing.servers import channel_to, generic_service, running


async def whoami(request: bytes, context: Any) -> bytes:
    return current_tenant().encode()


def server_with_keys() -> Server:
    keys = f"acme:{hash_key('acme-key')},globex:{hash_key('globex-key')},*:{hash_key('svc-key')}"
    return Server(
        name="auth-test",
        settings=ServiceSettings(port=0, api_keys=keys),
        services=[generic_service("test.Who", {"Ami": grpc.unary_unary_rpc_method_handler(whoami)})],
    )


async def test_the_key_decides_the_tenant_the_servicer_sees() -> None:
    async with running(server_with_keys()) as address, channel_to(address) as channel:
        call = channel.unary_unary("/test.Who/Ami")
        assert await call(b"", metadata=[("authorization", "Bearer acme-key")]) == b"acme"
        assert await call(b"", metadata=[("authorization", "Bearer globex-key")]) == b"globex"
        # A tenant key cannot borrow another tenant's identity.
        spoofed = [("authorization", "Bearer acme-key"), ("x-sentinel-tenant", "globex")]
        assert await call(b"", metadata=spoofed) == b"acme"
        on_behalf = [("authorization", "Bearer svc-key"), ("x-sentinel-tenant", "globex")]
        assert await call(b"", metadata=on_behalf) == b"globex"


@pytest.mark.parametrize(
    "metadata", [[], [("authorization", "Bearer wrong")], [("authorization", "acme-key")]]
)
async def test_missing_or_wrong_key_is_unauthenticated(metadata: list[tuple[str, str]]) -> None:
    async with running(server_with_keys()) as address, channel_to(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary("/test.Who/Ami")(b"", metadata=metadata)
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_health_needs_no_key() -> None:
    async with running(server_with_keys()) as address, channel_to(address) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING
