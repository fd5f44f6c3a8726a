"""Real gRPC command-line clients (grpcurl, buf curl) against all four services, via reflection."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

from e2e_stack import Stack

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make install`"
    return found


async def run(*command: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, list(command), capture_output=True, text=True, timeout=60, check=False
    )


async def test_grpcurl_lists_every_service_and_checks_health(stack: Stack) -> None:
    grpcurl = tool("grpcurl")
    for name, address, service in stack.items():
        listed = await run(grpcurl, "-plaintext", address, "list")
        assert listed.returncode == 0, listed.stderr
        assert set(listed.stdout.split()) >= {service, "grpc.health.v1.Health"}, name

        methods = await run(grpcurl, "-plaintext", address, "list", service)
        assert methods.returncode == 0, methods.stderr
        assert len(methods.stdout.split()) >= 4, f"{name} lists its methods"

        health = await run(
            grpcurl,
            "-plaintext",
            "-d",
            json.dumps({"service": service}),
            address,
            "grpc.health.v1.Health/Check",
        )
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout) == {"status": "SERVING"}, name


async def test_grpcurl_describes_request_messages_through_reflection(stack: Stack) -> None:
    described = await run(
        tool("grpcurl"), "-plaintext", stack.ingestion, "describe", "sentinel.api.common.v1.SampleBatch"
    )
    assert described.returncode == 0, described.stderr
    assert "repeated sfixed64 time_unix_nano" in described.stdout


async def test_grpcurl_sees_a_clear_unimplemented_for_work_not_built_yet(stack: Stack) -> None:
    called = await run(
        tool("grpcurl"), "-plaintext", "-d", "{}", stack.incident_manager,
        "sentinel.api.incident.v1.IncidentService/GetOnCall",
    )  # fmt: skip
    assert called.returncode != 0
    assert "Unimplemented" in called.stderr
    assert "IncidentService/GetOnCall is not implemented yet" in called.stderr


async def test_buf_curl_lists_and_calls_health_through_reflection(stack: Stack) -> None:
    buf = tool("buf")
    base = f"http://{stack.storage}"
    listed = await run(buf, "curl", "--http2-prior-knowledge", "--protocol", "grpc", "--list-services", base)
    assert listed.returncode == 0, listed.stderr
    assert "sentinel.api.storage.v1.StorageService" in listed.stdout.split()

    checked = await run(
        buf, "curl", "--http2-prior-knowledge", "--protocol", "grpc", "-d", "{}",
        f"{base}/grpc.health.v1.Health/Check",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"status": "SERVING"}


async def test_grpcurl_ingests_the_readme_event(stack: Stack) -> None:
    event = {"events": [{"flat": {"model_name": "gpt-4o", "service_name": "chat", "latency_ms": 850}}]}
    called = await run(
        tool("grpcurl"), "-plaintext", "-d", json.dumps(event), stack.ingestion,
        "sentinel.api.ingestion.v1.IngestionService/IngestEvents",
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer.get("accepted_count") == 1, answer
    assert answer["derived_sample_count"] >= 3


async def test_grpcurl_lists_the_detectors_as_the_readme_shows(stack: Stack) -> None:
    called = await run(
        tool("grpcurl"),
        "-plaintext",
        stack.detection,
        "sentinel.api.detection.v1.DetectionService/ListDetectors",
    )
    assert called.returncode == 0, called.stderr
    names = {detector["name"] for detector in json.loads(called.stdout)["detectors"]}
    assert len(names) >= 5
