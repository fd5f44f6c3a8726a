"""Fixtures of the HTTP receiver tests: incident-manager with its HTTP port, a real Alertmanager.

Imported by tests/e2e/incidents/test_http_receivers.py (kept apart from that folder's conftest).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from sentinel.incident_manager.app import IncidentManager
from sentinel.incident_manager.app import build as build_incident_manager
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.runtime.keys import hash_key
from sentinel.runtime.server import Server
from sentinel.storage.app import build_server as build_storage
from sentinel.storage.settings import StorageSettings

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
TEAM_KEY = "team-a-secret-key"
TEAM_TENANT = "team-a"


@pytest.fixture(scope="session")
def alertmanager_binaries() -> tuple[str, str]:
    """The Debian package `prometheus-alertmanager` (installed with apt if absent)."""
    if not (Path(ALERTMANAGER).exists() and Path(AMTOOL).exists()):
        if shutil.which("apt-get") is None:
            pytest.fail(f"{ALERTMANAGER} is absent and apt-get is not available to install it")
        for command in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "prometheus-alertmanager"],
        ):
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                pytest.fail(
                    f"could not install the Debian package prometheus-alertmanager: `{' '.join(command)}`"
                    f" exited {done.returncode}:\n{done.stderr[-2000:]}"
                )
    return ALERTMANAGER, AMTOOL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpIncidents:
    """Storage + incident-manager (gRPC and HTTP) on real PostgreSQL and Redis."""

    manager: IncidentManager
    storage: Server

    @property
    def url(self) -> str:
        return self.manager.http.url


async def start_incidents(
    postgres_dsn: str, redis_url: str, redis_namespace: str, **settings: object
) -> HttpIncidents:
    storage = build_storage(
        StorageSettings(
            port=0, postgres_dsn=postgres_dsn, redis_url=redis_url, redis_namespace=redis_namespace
        )
    )
    await storage.start()
    manager = build_incident_manager(
        IncidentManagerSettings(
            port=0,
            http_port=0,
            storage_addr=storage.address,
            redis_url=redis_url,
            redis_namespace=f"{redis_namespace}:im",
            dependency_timeout_s=30,
            **settings,  # type: ignore[arg-type]
        )
    )
    try:
        await manager.server.start()
    except BaseException:
        await storage.stop(grace=0)
        raise
    return HttpIncidents(manager, storage)


async def stop_incidents(running: HttpIncidents) -> None:
    await running.manager.server.stop(grace=1)
    await running.storage.stop(grace=1)


@pytest.fixture
async def http_incidents(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> AsyncIterator[HttpIncidents]:
    """Authentication off: the tenant is `X-Sentinel-Tenant`, else `default`."""
    running = await start_incidents(postgres_dsn, redis_url, redis_namespace)
    try:
        yield running
    finally:
        await stop_incidents(running)


@pytest.fixture
async def keyed_incidents(
    postgres_dsn: str, redis_url: str, redis_namespace: str
) -> AsyncIterator[HttpIncidents]:
    """API keys configured: TEAM_KEY is tenant `team-a`."""
    running = await start_incidents(
        postgres_dsn, redis_url, redis_namespace, api_keys=f"{TEAM_TENANT}:{hash_key(TEAM_KEY)}"
    )
    try:
        yield running
    finally:
        await stop_incidents(running)


@dataclass
class Alertmanager:
    """A running prometheus-alertmanager process."""

    url: str
    process: asyncio.subprocess.Process
    log: Path


ALERTMANAGER_CONFIG = """
route:
  receiver: sentinel
  group_by: ["alertname"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sentinel
    webhook_configs:
      - url: "{webhook}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{key}"
"""


@pytest.fixture
async def alertmanager(
    alertmanager_binaries: tuple[str, str], keyed_incidents: HttpIncidents, tmp_path: Path
) -> AsyncIterator[Alertmanager]:
    """A real Alertmanager whose webhook receiver is Sentinel's (with team-a's bearer key)."""
    binary, _ = alertmanager_binaries
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        ALERTMANAGER_CONFIG.format(webhook=f"{keyed_incidents.url}/api/v1/alertmanager", key=TEAM_KEY)
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=debug",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                if process.returncode is not None:
                    pytest.fail(f"alertmanager exited {process.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    async with session.get(f"{url}/-/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"alertmanager never became ready:\n{log.read_text()[-3000:]}")
        yield Alertmanager(url, process, log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def run_amtool(amtool: str, url: str, *args: str) -> str:
    """Run the real amtool against `url`; its stdout (fails the test with stderr on error)."""
    done = subprocess.run(
        [amtool, f"--alertmanager.url={url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        pytest.fail(f"amtool {' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done.stdout
