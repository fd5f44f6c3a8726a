"""`python -m sentinel.testing.slow_service`: a process serving one slow RPC through the runtime.

For tests of process lifecycle (SIGTERM while a call is in flight). `test.Slow/Sleep` takes the
number of milliseconds to sleep as ASCII digits and answers b"done".
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from sentinel.runtime.server import Server, run_service
from sentinel.runtime.settings import ServiceSettings
from sentinel.testing.servers import generic_service


async def sleep(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(int(request or b"0") / 1000)
    return b"done"


def build(settings: ServiceSettings) -> Server:
    service = generic_service("test.Slow", {"Sleep": grpc.unary_unary_rpc_method_handler(sleep)})
    return Server(name="slow", settings=settings, services=[service])


if __name__ == "__main__":
    run_service("slow", ServiceSettings, build)
