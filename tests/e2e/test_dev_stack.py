"""`sentinel dev up` (what `make run` runs): four processes up, callable, and stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port_block(size: int = 5) -> int:
    """A base port whose next `size` ports are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size > 65535:
            continue
        try:
            sockets = []
            for offset in range(size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free block of ports")


def start_stack(
    env: dict[str, str], var_dir: Path, base_port: int
) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [
            str(BIN / "sentinel"),
            "dev",
            "up",
            "--base-port",
            str(base_port),
            "--var-dir",
            str(var_dir),
            "--http-port",
            str(base_port + 4),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Ctrl-C stops everything"):
            return process, lines
    process.kill()
    raise AssertionError("the stack did not come up:\n" + "\n".join(lines))


def stop_stack(process: subprocess.Popen[str], lines: list[str]) -> int:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    remaining, _ = process.communicate(timeout=60)
    lines.extend(remaining.splitlines())
    return process.returncode


def grpcurl_health(address: str) -> dict[str, str]:
    result = subprocess.run(
        [str(BIN / "grpcurl"), "-plaintext", address, "grpc.health.v1.Health/Check"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("stores", ["embedded", "external"])
def test_dev_up_serves_all_four_then_stops_cleanly_on_ctrl_c(
    stores: str, tmp_path: Path, postgres_admin_dsn: str, redis_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SENTINEL_POSTGRES_DSN", "SENTINEL_REDIS_URL")}
    if stores == "external":
        env["SENTINEL_POSTGRES_DSN"] = postgres_admin_dsn
        env["SENTINEL_REDIS_URL"] = redis_url
    base_port = free_port_block()

    process, lines = start_stack(env, tmp_path / "var", base_port)
    try:
        output = "\n".join(lines)
        assert "Sentinel is up" in output
        for offset, service in enumerate(["ingestion", "detection", "storage", "incident-manager"]):
            address = f"127.0.0.1:{base_port + offset}"
            assert f"{service}" in output and address in output
            assert grpcurl_health(address) == {"status": "SERVING"}
        if stores == "embedded":
            assert (tmp_path / "var" / "postgres" / "PG_VERSION").exists()
            assert f"host={tmp_path / 'var' / 'postgres'}" in output
        else:
            assert postgres_admin_dsn in output
        # The demo workload flows through ingestion into storage.
        assert "demo workload" in output
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queried = subprocess.run(
                [str(BIN / "sentinel"), "query", "llm.requests", "--from", "-10m",
                 "--target", f"127.0.0.1:{base_port + 2}", "--json"],
                capture_output=True, text=True, timeout=30, env=env,
            )  # fmt: skip
            if queried.returncode == 0 and queried.stdout.strip():
                break
            time.sleep(1)
        assert queried.stdout.strip(), queried.stderr
    finally:
        code = stop_stack(process, lines)

    assert code == 0, "\n".join(lines)
    stripped = [line.strip() for line in lines]
    # Stopped in reverse dependency order: storage, which the others write through, last.
    stop_order = [stripped.index(f"{service} stopped (exit 0)") for service in
                  ["demo", "ingestion", "incident-manager", "detection", "storage"]]  # fmt: skip
    assert stop_order == sorted(stop_order)
    assert stripped[-1] == "stopped."
