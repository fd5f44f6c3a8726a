"""A small Python client for Sentinel's gRPC API (channels, credentials, retries)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from sentinel.runtime.channels import call_with_retry, create_channel

T = TypeVar("T")

# Both are safe to retry: every Sentinel write is idempotent by its batch id.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class Endpoint:
    """Where to call and as whom."""

    address: str
    api_key: str | None = None
    tenant: str | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        metadata: list[tuple[str, str]] = []
        if self.api_key:
            metadata.append(("authorization", f"Bearer {self.api_key}"))
        if self.tenant:
            metadata.append(("x-sentinel-tenant", self.tenant))
        return tuple(metadata)

    def channel(self) -> grpc.aio.Channel:
        return create_channel(self.address, traced=False)


def endpoint_from_env(address: str | None, env_var: str, default: str, api_key: str | None = None,
                      tenant: str | None = None) -> Endpoint:  # fmt: skip
    """An endpoint from a flag, else `env_var`, else `default`; the key from SENTINEL_API_KEY."""
    return Endpoint(
        address=address or os.environ.get(env_var, default),
        api_key=api_key or os.environ.get("SENTINEL_API_KEY"),
        tenant=tenant or os.environ.get("SENTINEL_TENANT"),
    )


async def retrying(call: Callable[[], Awaitable[T]], *, deadline_s: float = 60.0) -> T:
    """Run an idempotent call, retrying overload and unavailability with backoff and jitter."""
    return await call_with_retry(call, deadline_s=deadline_s, retry_codes=RETRY_CODES)
