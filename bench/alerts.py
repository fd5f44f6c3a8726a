"""`make bench-alerts`: alert deduplication through the real incident manager over loopback.

Starts storage and incident-manager as processes on a fresh PostgreSQL database
(SENTINEL_POSTGRES_DSN, else SENTINEL_TEST_POSTGRES_DSN, else an embedded server) and Redis
(SENTINEL_REDIS_URL, else SENTINEL_TEST_REDIS_URL, else embedded). A pool of distinct alerts is
reported once (so they are active), then separate client processes with concurrent callers send
ReportAlerts where each alert repeats one of the pool with probability --repeat (0.9) and is a new,
never-seen alert otherwise (its own service, hence its own group key and incident). Requests are
pre-encoded (pool alerts once, new alerts from a pre-encoded prefix plus their service), so the
clients, which share the machine's CPUs with the services, spend little on encoding.

A call carries --batch alerts, 20 by default: a group of alerts, as Alertmanager's webhook posts
one group per request. For each batch size (--batch, then 1 alert per call unless --no-single):

1. a 2 s warm-up;
2. peak: as fast as answers come back (alerts/s);
3. half: at half the measured peak call rate, for the latency of a loaded, not saturated, service.

Every answer comes after the alert was durably recorded (the service acknowledges only committed
writes). noise_reduction = 1 - incidents created (the server's GetStats) / alerts reported, over all
phases, set beside the true duplicate share (reports of an already-active alert / reports), counted
by the clients. Prints a table and, as its last line, one JSON object: alerts_per_s (peak) and
p99_ms (half rate) at --batch alerts per call, noise_reduction, incidents, then alerts_per_call,
true_duplicate_share and the 1-alert-per-call figures alerts_per_s_1_per_call, p99_ms_1_per_call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchstores import BenchStores, bench_stores
from ingest import RssSampler, free_port, start_service, wait_serving

from sentinel.api.common.v1 import common_pb2
from sentinel.api.incident.v1 import incident_service_pb2 as api
from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.api.incident.v1 import resources_pb2 as res
from sentinel.runtime.channels import create_channel
from sentinel.runtime.wire import varint

REPORT_PATH = "/sentinel.api.incident.v1.IncidentService/ReportAlerts"
# Alerts per ReportAlerts call by default: a group, as Alertmanager's webhook posts one.
BATCH = 20
SEVERITIES = [common_pb2.SEVERITY_CRITICAL, common_pb2.SEVERITY_HIGH, common_pb2.SEVERITY_MEDIUM,
              common_pb2.SEVERITY_LOW]  # fmt: skip


def _field_1(payload: bytes) -> bytes:
    """`alerts` (field 1) of ReportAlertsRequest: requests are concatenations of these."""
    return b"\x0a" + varint(len(payload)) + payload


def pool_alert(index: int) -> bytes:
    return _field_1(
        res.Alert(
            source=res.ALERT_SOURCE_API, title=f"p99 latency over 2s on pool-{index}", alert_type="latency_spike",
            service=f"pool-{index}", model=f"model-{index % 7}", severity=SEVERITIES[index % len(SEVERITIES)],
            labels={"env": "prod", "region": f"r{index % 3}"},
        ).SerializeToString()
    )  # fmt: skip


_NEW_FIXED = res.Alert(
    source=res.ALERT_SOURCE_API, title="error rate up", alert_type="error_rate", model="gpt-4o",
    severity=common_pb2.SEVERITY_HIGH, labels={"env": "prod"},
).SerializeToString()  # fmt: skip
_RUN = uuid.uuid4().hex[:6]
_SERVICE_TAG = bytes([res.Alert.DESCRIPTOR.fields_by_name["service"].number << 3 | 2])  # length-delimited


def new_alert(worker: int, number: int) -> bytes:
    """A never-seen alert (its own service): the fixed fields encoded once, plus `service`."""
    service = f"new-{worker}-{number}-{_RUN}".encode()
    payload = _NEW_FIXED + _SERVICE_TAG + varint(len(service)) + service
    return _field_1(payload)


def client(address: str, seconds: float, concurrency: int, rate: float, batch: int, pool: int, repeat: float,
           worker: int, results: mp.Queue) -> None:  # fmt: skip
    """One load process: `concurrency` callers; `rate` calls/s in total for this process (0 = open)."""
    rng = random.Random(worker * 7919 + int(rate))
    pooled = [pool_alert(i) for i in range(pool)]

    async def run() -> tuple[int, int, list[float], int, dict[int, int]]:
        channel = create_channel(address, traced=False)
        call = channel.unary_unary(REPORT_PATH, response_deserializer=api.ReportAlertsResponse.FromString)
        latencies: list[float] = []
        reported = repeats = errors = 0
        outcomes: Counter[int] = Counter()
        deadline = time.perf_counter() + seconds
        interval = concurrency / rate if rate else 0.0

        async def caller(index: int) -> None:
            nonlocal reported, repeats, errors
            n = 0
            next_at = time.perf_counter() + (interval * index / concurrency if interval else 0)
            while time.perf_counter() < deadline:
                if interval:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                parts, pooled_in_call = [], 0
                for _ in range(batch):
                    if rng.random() < repeat:
                        parts.append(pooled[rng.randrange(pool)])
                        pooled_in_call += 1
                    else:
                        parts.append(new_alert(worker * 1000 + index, n))
                        n += 1
                started = time.perf_counter()
                try:
                    response = await call(b"".join(parts), timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                reported += batch
                repeats += pooled_in_call
                outcomes.update(r.outcome for r in response.results)

        await asyncio.gather(*(caller(i) for i in range(concurrency)))
        await channel.close()
        return reported, repeats, latencies, errors, dict(outcomes)

    results.put(asyncio.run(run()))


def load(address: str, *, seconds: float, processes: int, concurrency: int, batch: int, pool: int,
         repeat: float, rate: float = 0.0) -> dict[str, float]:  # fmt: skip
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    workers = [
        ctx.Process(
            target=client,
            args=(address, seconds, concurrency, rate / processes, batch, pool, repeat, w, results),
        )
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = np.array([x for r in collected for x in r[2]]) * 1000
    outcomes: Counter[int] = Counter()
    for r in collected:
        outcomes.update(r[4])
    reported = sum(r[0] for r in collected)
    return {
        "reported": reported,
        "repeats": sum(r[1] for r in collected),
        "per_s": reported / seconds,
        "calls_per_s": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else float("nan"),
        "errors": sum(r[3] for r in collected),
        "new_incident": outcomes[api.ALERT_OUTCOME_NEW_INCIDENT],
        "deduplicated": outcomes[api.ALERT_OUTCOME_DEDUPLICATED],
    }


async def stats(address: str) -> res.IncidentStats:
    channel = create_channel(address, traced=False)
    try:
        stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
        response = await stub.GetStats(api.GetStatsRequest(), timeout=60)
        return response.stats
    finally:
        await channel.close()


async def count_incidents(address: str) -> int:
    channel = create_channel(address, traced=False)
    try:
        stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
        request, total = api.ListIncidentsRequest(page_size=500), 0
        while True:
            response = await stub.ListIncidents(request, timeout=60)
            total += len(response.incidents)
            if not response.next_page_token:
                return total
            request.page_token = response.next_page_token
    finally:
        await channel.close()


async def report_pool(address: str, pool: int) -> None:
    """Make every pool alert active before the measured phases."""
    channel = create_channel(address, traced=False)
    try:
        call = channel.unary_unary(REPORT_PATH, response_deserializer=api.ReportAlertsResponse.FromString)
        for start in range(0, pool, 100):
            await call(b"".join(pool_alert(i) for i in range(start, min(pool, start + 100))), timeout=60)
    finally:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=16, help="callers per client process")
    parser.add_argument("--batch", type=int, default=BATCH, help="alerts per ReportAlerts call")
    parser.add_argument("--no-single", action="store_true", help="skip the 1-alert-per-call phases")
    parser.add_argument("--pool", type=int, default=200, help="distinct active alerts that repeat")
    parser.add_argument("--repeat", type=float, default=0.9, help="share of reports repeating a pool alert")
    args = parser.parse_args()

    with bench_stores("bench_alerts") as stores:
        run_phases(args, stores)


def measure(address: str, *, seconds: float, **common: Any) -> list[dict[str, float]]:
    """A warm-up (connections, caches, plan caches), the open-loop peak, then half the peak call rate."""
    warm_up = load(address, seconds=2, **common)
    peak = load(address, seconds=seconds, **common)
    half = load(address, seconds=seconds, rate=peak["calls_per_s"] / 2, **common)
    return [warm_up, peak, half]


def run_phases(args: argparse.Namespace, stores: BenchStores) -> None:
    """Start storage and incident-manager on `stores`, run the phases, print the table and the JSON line."""
    work, dsn, redis_url, database = stores.work, stores.dsn, stores.redis_url, stores.database
    storage_port, manager_port = free_port(), free_port()
    base_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SENTINEL_POSTGRES_DSN": dsn,
                "SENTINEL_REDIS_URL": redis_url}  # fmt: skip
    storage = start_service(
        "sentinel.storage",
        {**base_env, "SENTINEL_PORT": str(storage_port), "SENTINEL_REDIS_NAMESPACE": f"bench-{database}"},
        work / "storage.log",
    )
    manager = start_service(
        "sentinel.incident_manager",
        {**base_env, "SENTINEL_PORT": str(manager_port), "SENTINEL_HTTP_PORT": str(free_port()),
         "SENTINEL_STORAGE_ADDR": f"127.0.0.1:{storage_port}",
         "SENTINEL_REDIS_NAMESPACE": f"bench-{database}:im"},
        work / "incident-manager.log",
    )  # fmt: skip
    address = f"127.0.0.1:{manager_port}"
    common = {"processes": args.processes, "concurrency": args.concurrency, "pool": args.pool,
              "repeat": args.repeat}  # fmt: skip
    batches = [args.batch] if args.no_single or args.batch == 1 else [args.batch, 1]
    phases: dict[int, list[dict[str, float]]] = {}
    try:
        asyncio.run(wait_serving(address))
        asyncio.run(report_pool(address, args.pool))
        with RssSampler({"incident-manager": manager.pid, "storage": storage.pid}) as rss:
            before = asyncio.run(stats(address))
            for batch in batches:
                phases[batch] = measure(address, seconds=args.seconds, batch=batch, **common)
            after = asyncio.run(stats(address))
        listed = asyncio.run(count_incidents(address))
    finally:
        for process in (manager, storage):
            process.send_signal(signal.SIGTERM)
            process.wait(60)

    # Every alert sent after `before` counts, warm-ups included: the server's figures cover them all.
    sent = [phase for trio in phases.values() for phase in trio]
    reported = sum(p["reported"] for p in sent)
    repeats = sum(p["repeats"] for p in sent)
    incidents = after.incidents_created - before.incidents_created
    received = after.alerts_received - before.alerts_received
    deduplicated = after.alerts_deduplicated - before.alerts_deduplicated
    _, peak, half = phases[args.batch]
    noise_reduction = 1 - incidents / reported if reported else float("nan")
    true_share = repeats / reported if reported else float("nan")
    figures: dict[str, Any] = {
        "alerts_per_s": round(peak["per_s"]),
        "p99_ms": round(half["p99_ms"], 2),
        "noise_reduction": round(noise_reduction, 4),
        "incidents": incidents,
        "alerts_per_call": args.batch,
        "true_duplicate_share": round(true_share, 4),
    }
    if 1 in phases and args.batch != 1:
        _, single_peak, single_half = phases[1]
        figures["alerts_per_s_1_per_call"] = round(single_peak["per_s"])
        figures["p99_ms_1_per_call"] = round(single_half["p99_ms"], 2)
    print(f"\nbench-alerts: {args.processes} client processes x {args.concurrency} callers, pool of {args.pool} "
          f"active alerts repeated with p={args.repeat}, {args.seconds:.0f} s per phase, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    for batch, (_, peak_b, half_b) in phases.items():
        for name, phase in (
            (f"{batch} alert(s)/call, peak", peak_b),
            (f"{batch} alert(s)/call, half rate", half_b),
        ):
            print(f"  {name:<28} {phase['per_s']:>8,.0f} alerts/s  p50 {phase['p50_ms']:6.1f} ms  "
                  f"p99 {phase['p99_ms']:6.1f} ms  {phase['errors']:.0f} errors  "
                  f"{phase['new_incident']:.0f} new incidents, {phase['deduplicated']:.0f} deduplicated")  # fmt: skip
    print(f"  alerts reported {reported:,.0f} with warm-ups (server counted {received:,}, {deduplicated:,} "
          f"deduplicated); incidents created {incidents:,} ({listed:,} listed in total, pool included)")  # fmt: skip
    print(f"  noise reduction {noise_reduction:.4f} vs true duplicate share {true_share:.4f} "
          f"(difference {noise_reduction - true_share:+.4f})")  # fmt: skip
    print(
        f"  peak RSS: incident-manager {rss.peak['incident-manager']:.0f} MB, storage {rss.peak['storage']:.0f} MB"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
