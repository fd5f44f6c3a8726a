"""`sentinel demo`: a live, seeded LLM workload sent through ingestion, with injected incidents.

Three services calling two models each. Every tick sends one batch of telemetry events; latency,
time to first token, tokens and cost follow a daily load curve with noise, and every few minutes
one (service, model) pair misbehaves for a while: a latency spike, an error burst, a token blow-up
or a cost jump. What is injected is printed, so what detection and incidents show can be checked
against it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

import grpc

from sentinel.api.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc, telemetry_pb2
from sentinel.sdk.client import Endpoint, retrying

PAIRS = [
    ("chat", "gpt-4o", "openai"),
    ("chat", "claude-3-5-sonnet", "anthropic"),
    ("search", "gpt-4o-mini", "openai"),
    ("search", "llama-3-70b", "meta"),
    ("support", "gpt-4o", "openai"),
    ("support", "mistral-large", "mistral"),
]
INCIDENT_KINDS = ("latency_spike", "error_burst", "token_blowup", "cost_jump")


@dataclass
class Injection:
    """One misbehaving pair until `until` (monotonic seconds)."""

    pair: tuple[str, str, str]
    kind: str
    until: float


def _event(rng: random.Random, pair: tuple[str, str, str], now_s: float, injection: Injection | None
           ) -> telemetry_pb2.TelemetryEvent:  # fmt: skip
    service, model, provider = pair
    load = 1.0 + 0.3 * math.sin(2 * math.pi * (now_s % 86400) / 86400)
    base_latency = {"gpt-4o": 900, "claude-3-5-sonnet": 1100, "gpt-4o-mini": 400, "llama-3-70b": 700,
                    "mistral-large": 800}[model]  # fmt: skip
    latency = rng.lognormvariate(math.log(base_latency * load), 0.25)
    prompt_tokens = int(rng.gauss(600, 120))
    completion_tokens = max(1, int(rng.gauss(250, 60)))
    error = rng.random() < 0.01
    cost_per_token = 2e-6 if "mini" not in model else 3e-7
    if injection is not None and injection.pair == pair:
        if injection.kind == "latency_spike":
            latency *= 6
        elif injection.kind == "error_burst":
            error = rng.random() < 0.4
        elif injection.kind == "token_blowup":
            completion_tokens *= 8
        elif injection.kind == "cost_jump":
            cost_per_token *= 5
    event = telemetry_pb2.LlmCallEvent(
        event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        service_name=service, model=model, provider=provider,
        prompt=telemetry_pb2.LlmPrompt(tokens=max(1, prompt_tokens)),
        response=telemetry_pb2.LlmResponse(tokens=completion_tokens, finish_reason="stop"),
        latency_ms=latency, ttft_ms=latency * rng.uniform(0.15, 0.3),
        cost_usd=(prompt_tokens + completion_tokens) * cost_per_token,
    )  # fmt: skip
    event.event_time.FromNanoseconds(int(now_s * 1e9))
    if error:
        event.errors.append(
            telemetry_pb2.LlmError(type="rate_limit", message="429 Too Many Requests", code="429")
        )
    return telemetry_pb2.TelemetryEvent(nested=event)


async def run_demo(
    endpoint: Endpoint, *, events_per_s: float, seconds: float | None, seed: int, out: TextIO,
    incident_every_s: float = 180.0, incident_length_s: float = 60.0,
) -> int:  # fmt: skip
    """Send the workload until `seconds` have passed (forever if None) or the task is cancelled."""
    rng = random.Random(seed)
    channel = endpoint.channel()
    stub = ingestion_service_pb2_grpc.IngestionServiceStub(channel)
    tick = 1.0
    started = time.monotonic()
    next_incident = started + incident_every_s / 3
    injection: Injection | None = None
    sent = 0
    try:
        while seconds is None or time.monotonic() - started < seconds:
            loop_started = time.monotonic()
            if injection is not None and loop_started > injection.until:
                out.write(f"demo: {injection.kind} on {injection.pair[0]}/{injection.pair[1]} ended\n")
                injection = None
            if injection is None and loop_started > next_incident:
                injection = Injection(
                    rng.choice(PAIRS), rng.choice(INCIDENT_KINDS), loop_started + incident_length_s
                )
                next_incident = loop_started + incident_every_s
                out.write(f"demo: injecting {injection.kind} on {injection.pair[0]}/{injection.pair[1]} "
                          f"for {incident_length_s:.0f}s\n")  # fmt: skip
            now_s = time.time()
            count = max(1, int(events_per_s * tick))
            events = [_event(rng, PAIRS[i % len(PAIRS)], now_s - tick + i * tick / count, injection)
                      for i in range(count)]  # fmt: skip
            request = ingestion_service_pb2.IngestEventsRequest(batch_id=f"demo-{seed}-{uuid.uuid4().hex}",
                                                                events=events)  # fmt: skip

            def send(r: ingestion_service_pb2.IngestEventsRequest = request) -> Any:
                return stub.IngestEvents(r, metadata=endpoint.metadata, timeout=10)

            try:
                await retrying(send)
                sent += count
            except grpc.aio.AioRpcError as exc:
                out.write(f"demo: batch not accepted: {exc.code().name} {exc.details()}\n")
            out.flush()
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - loop_started)))
    finally:
        await channel.close()
    out.write(f"demo: sent {sent} events\n")
    return 0
