"""Each service boots as its console script (`sentinel-<name>`) and as `python -m sentinel.<pkg>`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.runtime.channels import create_channel
from sentinel.runtime.peers import wait_until_serving
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings
from sentinel.testing.servers import running

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ["sentinel-ingestion"],
        ["sentinel-detection"],
        ["sentinel-storage"],
        ["sentinel-incident-manager"],
        ["-m", "sentinel.ingestion"],
        ["-m", "sentinel.detection"],
        ["-m", "sentinel.storage"],
        ["-m", "sentinel.incident_manager"],
    ],
    ids=lambda command: " ".join(command),
)
async def test_service_process_boots_serves_health_and_exits_zero_on_sigterm(
    command: list[str], postgres_dsn: str, redis_url: str
) -> None:
    argv = [sys.executable, *command] if command[0] == "-m" else [str(BIN / command[0])]
    port = free_port()
    async with running(
        build_storage(StorageSettings(port=0, postgres_dsn=postgres_dsn, redis_url=redis_url))
    ) as storage:
        env = {
            **os.environ,
            "SENTINEL_PORT": str(port),
            "SENTINEL_STORAGE_ADDR": storage,
            "SENTINEL_POSTGRES_DSN": postgres_dsn,
            "SENTINEL_REDIS_URL": redis_url,
        }
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        channel = create_channel(f"127.0.0.1:{port}", traced=False)
        try:
            await wait_until_serving(channel, peer=" ".join(command), timeout_s=60)
        finally:
            await channel.close()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 30)
    assert process.stderr is not None
    logs = process.stderr.read().decode()
    assert code == 0, logs
    assert '"message": "' in logs, "logs are JSON lines"
