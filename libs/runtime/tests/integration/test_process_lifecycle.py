"""A service process under SIGTERM: in-flight calls finish, health flips, the exit is clean."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigterm_lets_in_flight_call_finish_flips_health_and_exits_zero() -> None:
    port = free_port()
    env = {**os.environ, "SENTINEL_PORT": str(port), "SENTINEL_SHUTDOWN_GRACE_S": "10"}
    process = subprocess.Popen([sys.executable, "-m", "sentinel.testing.slow_service"], env=env)
    channel = create_channel(f"127.0.0.1:{port}")
    try:
        await wait_until_serving(channel, peer="slow", timeout_s=30)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        in_flight = asyncio.ensure_future(channel.unary_unary("/test.Slow/Sleep")(b"1500"))
        await asyncio.sleep(0.3)  # the call has reached the server
        process.send_signal(signal.SIGTERM)

        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await in_flight == b"done"
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        await channel.close()
        if process.poll() is None:
            process.kill()


async def test_new_calls_after_shutdown_are_refused_not_dropped() -> None:
    port = free_port()
    env = {**os.environ, "SENTINEL_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "sentinel.testing.slow_service"], env=env)
    channel = create_channel(f"127.0.0.1:{port}")
    try:
        await wait_until_serving(channel, peer="slow", timeout_s=30)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/test.Slow/Sleep")(b"0", timeout=2, wait_for_ready=False)
        assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        await channel.close()
        if process.poll() is None:
            process.kill()


def test_invalid_configuration_exits_2_naming_the_variable() -> None:
    env = {**os.environ, "SENTINEL_SHUTDOWN_GRACE_S": "forever"}
    result = subprocess.run(
        [sys.executable, "-m", "sentinel.testing.slow_service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SENTINEL_SHUTDOWN_GRACE_S='forever'" in result.stderr
