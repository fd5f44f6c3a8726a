"""`sentinel dev up`: all four services on one machine, on embedded or external stores.

Starts embedded PostgreSQL and Redis under `./var/` unless `SENTINEL_POSTGRES_DSN` /
`SENTINEL_REDIS_URL` point at servers, then one process per service, waits until each reports
SERVING, prints where they listen and how to call them, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sentinel.runtime.channels import create_channel
from sentinel.runtime.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    start_embedded_postgres,
    start_embedded_redis,
)
from sentinel.runtime.peers import wait_until_serving


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack: its name, module, port and the gRPC service it serves."""

    name: str
    module: str
    port: int
    grpc_service: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def stack(base_port: int) -> list[ServiceSpec]:
    """The four services, storage first (the others wait for it)."""
    api = "sentinel.api"
    return [
        ServiceSpec("storage", "sentinel.storage", base_port + 2, f"{api}.storage.v1.StorageService"),
        ServiceSpec("detection", "sentinel.detection", base_port + 1, f"{api}.detection.v1.DetectionService"),
        ServiceSpec(
            "incident-manager",
            "sentinel.incident_manager",
            base_port + 3,
            f"{api}.incident.v1.IncidentService",
        ),
        ServiceSpec("ingestion", "sentinel.ingestion", base_port, f"{api}.ingestion.v1.IngestionService"),
    ]


def _environment(specs: list[ServiceSpec], postgres_dsn: str, redis_url: str) -> dict[str, str]:
    by_name = {spec.name: spec for spec in specs}
    env = dict(os.environ)
    env.update(
        {
            "SENTINEL_POSTGRES_DSN": postgres_dsn,
            "SENTINEL_REDIS_URL": redis_url,
            "SENTINEL_STORAGE_ADDR": by_name["storage"].address,
            "SENTINEL_DETECTION_ADDR": by_name["detection"].address,
            "SENTINEL_INCIDENT_MANAGER_ADDR": by_name["incident-manager"].address,
            "OPENBLAS_NUM_THREADS": "1",
        }
    )
    return env


async def _wait_all_serving(specs: list[ServiceSpec], timeout_s: float) -> None:
    async def one(spec: ServiceSpec) -> None:
        channel = create_channel(spec.address, traced=False)
        try:
            await wait_until_serving(channel, peer=spec.name, timeout_s=timeout_s)
        finally:
            await channel.close()

    await asyncio.gather(*(one(spec) for spec in specs))


def _banner(
    specs: list[ServiceSpec], postgres_dsn: str, redis_url: str, log_dir: Path, seconds: float
) -> str:
    lines = [
        "",
        f"Sentinel is up ({seconds:.1f}s). Logs: {log_dir}/<service>.log",
        f"  postgresql  {postgres_dsn}",
        f"  redis       {redis_url}",
        "",
        f"  {'service':<18} {'listens on':<18} gRPC service",
    ]
    lines += [f"  {s.name:<18} {s.address:<18} {s.grpc_service}" for s in specs]
    lines += ["", "Try (grpcurl is in .venv/bin):"]
    for spec in specs:
        lines.append(f"  .venv/bin/grpcurl -plaintext {spec.address} describe {spec.grpc_service}")
    lines.append(
        f'  .venv/bin/grpcurl -plaintext -d \'{{"service":"{specs[0].grpc_service}"}}\' '
        f"{specs[0].address} grpc.health.v1.Health/Check"
    )
    lines += [
        "",
        "Read the demo's series back:",
        f"  .venv/bin/sentinel query 'llm.latency_ms{{service=\"chat\"}}' --from -5m --step 1m --agg p95 "
        f"--target {specs[0].address}",
    ]
    return "\n".join(lines)


def run(
    *,
    base_port: int = 50051,
    var_dir: Path = Path("var"),
    timeout_s: float = 90.0,
    demo_rate: float = 0.0,
    http_port: int = 9093,
) -> int:
    """Run the stack in the foreground until Ctrl-C / SIGTERM; returns the exit status."""
    started = time.monotonic()
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir = var_dir / "log"
    log_dir.mkdir(exist_ok=True)
    specs = stack(base_port)
    embedded: list[EmbeddedPostgres | EmbeddedRedis] = []
    postgres_dsn = os.environ.get("SENTINEL_POSTGRES_DSN")
    if not postgres_dsn:
        print("starting embedded PostgreSQL under", var_dir / "postgres", flush=True)
        embedded_pg = start_embedded_postgres(var_dir / "postgres")
        embedded.append(embedded_pg)
        postgres_dsn = embedded_pg.dsn
    redis_url = os.environ.get("SENTINEL_REDIS_URL")
    if not redis_url:
        print("starting embedded Redis under", var_dir / "redis", flush=True)
        embedded_redis = start_embedded_redis(var_dir / "redis")
        embedded.append(embedded_redis)
        redis_url = embedded_redis.url

    env = _environment(specs, postgres_dsn, redis_url)
    env["SENTINEL_HTTP_PORT"] = str(http_port)  # incident-manager's Alertmanager / PagerDuty receivers
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    status = 0
    try:
        for spec in specs:
            service_env = {**env, "SENTINEL_PORT": str(spec.port), "OTEL_SERVICE_NAME": spec.name}
            log = (log_dir / f"{spec.name}.log").open("ab")
            # Own session: Ctrl-C reaches only this launcher, which stops the services in order.
            processes[spec.name] = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env=service_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            print(
                f"started {spec.name} (pid {processes[spec.name].pid}) on {spec.address}",
                flush=True,
            )
        asyncio.run(_wait_all_serving(specs, timeout_s))
        if demo_rate > 0:
            ingestion = next(spec for spec in specs if spec.name == "ingestion")
            processes["demo"] = subprocess.Popen(
                [sys.executable, "-m", "sentinel.sdk.cli", "demo", "--rate", str(demo_rate),
                 "--target", ingestion.address],
                env=env, stdout=(log_dir / "demo.log").open("ab"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        print(_banner(specs, postgres_dsn, redis_url, log_dir, time.monotonic() - started), flush=True)
        print(
            f"Alertmanager webhook / API v2 and PagerDuty Events v2 (HTTP): http://127.0.0.1:{http_port}"
            " (/api/v1/alertmanager, /api/v2/alerts, /api/v2/silences, /v2/enqueue)",
            flush=True,
        )
        if demo_rate > 0:
            print(f"A demo workload sends {demo_rate:.0f} LLM calls/s through ingestion, with an injected "
                  f"incident every few minutes: {log_dir}/demo.log", flush=True)  # fmt: skip
        print("Ctrl-C stops everything.", flush=True)
        while not stop_requested:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(
                        f"{name} exited with {process.returncode}; see {log_dir}/{name}.log",
                        flush=True,
                    )
                    stop_requested = True
                    status = 1
            time.sleep(0.2)
    except TimeoutError as exc:
        print(f"not all services came up: {exc}; see {log_dir}/", file=sys.stderr, flush=True)
        status = 1
    finally:
        print("stopping...", flush=True)
        # Reverse start order: the demo and ingestion first, storage (which the others use) last.
        for name, process in reversed(list(processes.items())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            print(f"  {name} stopped (exit {code})", flush=True)
        for server in reversed(embedded):
            server.stop()
        print("stopped.", flush=True)
    return status
