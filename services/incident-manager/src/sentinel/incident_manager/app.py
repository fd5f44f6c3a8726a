"""Composition root of the incident manager."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from sentinel.api.incident.v1 import incident_service_pb2_grpc
from sentinel.incident_manager.adapters.dedup import InProcessDedupLock, RedisDedupLock
from sentinel.incident_manager.adapters.feed import InProcessFeed
from sentinel.incident_manager.adapters.redis_feed import RedisStreamFeed
from sentinel.incident_manager.adapters.storage_client import GrpcIncidentStore
from sentinel.incident_manager.grpc.servicer import SERVICE, IncidentServicer
from sentinel.incident_manager.http.server import HttpReceiver, create_app
from sentinel.incident_manager.service import IncidentService
from sentinel.incident_manager.settings import IncidentManagerSettings
from sentinel.runtime.channels import create_channel
from sentinel.runtime.clock import Clock, SystemClock
from sentinel.runtime.keys import KeyRing
from sentinel.runtime.peers import wait_until_serving
from sentinel.runtime.server import Server, ServiceRegistration

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncidentManager:
    """The wired service: the gRPC server (whose hooks also run `http`) and the HTTP receivers."""

    server: Server
    http: HttpReceiver
    service: IncidentService


def build_server(settings: IncidentManagerSettings, *, clock: Clock | None = None) -> Server:
    """Wire the incident manager (see `build`); the HTTP receivers start and stop with the server."""
    return build(settings, clock=clock).server


def build(settings: IncidentManagerSettings, *, clock: Clock | None = None) -> IncidentManager:
    """Wire the incident manager: storage client, dedup lock, change feed, sweeper, servicer, HTTP."""
    clock = clock or SystemClock()
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None
    storage_channel = create_channel(settings.storage_addr, max_message_mb=settings.max_message_mb)
    redis_lock = (
        RedisDedupLock(aioredis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
        if settings.redis_url
        else None
    )
    # Watchers of every replica see every replica's changes only through Redis.
    redis_feed = (
        RedisStreamFeed(
            aioredis.Redis.from_url(settings.redis_url),
            namespace=settings.redis_namespace,
            max_len=settings.watch_replay_size,
            retention_s=settings.watch_retention_s,
        )
        if settings.redis_url
        else None
    )
    service = IncidentService(
        store=GrpcIncidentStore(
            storage_channel, service_key=service_key, deadline_s=settings.storage_deadline_s
        ),
        dedup=redis_lock or InProcessDedupLock(clock),
        feed=redis_feed or InProcessFeed(replay_size=settings.watch_replay_size),
        clock=clock,
        policy=settings.policy(),
        limits=settings.limits(),
        dedup_ttl_s=settings.dedup_ttl_s,
        report_concurrency=settings.report_concurrency,
    )
    # RPCs not built yet are installed by @pending_rpcs, which mypy cannot see.
    servicer = IncidentServicer(service, heartbeat_s=settings.watch_heartbeat_s)  # type: ignore[abstract]
    sweeper: list[asyncio.Task[None]] = []
    http = HttpReceiver(
        create_app(
            service,
            keys=KeyRing.from_config(settings.api_keys, settings.api_keys_file),
            clock=clock,
            max_body_bytes=settings.http_max_body_kb * 1024,
            max_in_flight=settings.http_max_in_flight,
        ),
        host=settings.host,
        port=settings.http_port,
    )

    async def start() -> None:
        await wait_until_serving(
            storage_channel,
            peer=f"storage at {settings.storage_addr}",
            timeout_s=settings.dependency_timeout_s,
        )
        if redis_lock is not None:
            await redis_lock.ping()
            logger.info("dedup claims in Redis (namespace %s)", settings.redis_namespace)
        else:
            logger.warning(
                "SENTINEL_REDIS_URL is unset: dedup claims and the watch feed are in process, "
                "correct for one replica only"
            )
        if redis_feed is not None:
            await redis_feed.start()
        sweeper.append(asyncio.create_task(service.run_sweeper(settings.sweep_interval_s)))
        await http.start()

    async def close() -> None:
        await http.stop()
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if redis_feed is not None:
            await redis_feed.close()
        await storage_channel.close()
        if redis_lock is not None:
            await redis_lock.close()

    server = Server(
        name="incident-manager",
        settings=settings,
        services=[
            ServiceRegistration(
                SERVICE.full_name,
                lambda server: incident_service_pb2_grpc.add_IncidentServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        on_startup=[start],
        on_shutdown=[close],
    )
    return IncidentManager(server, http, service)
